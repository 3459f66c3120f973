"""vidinpaint-prepare: index a dataset once and cache the index (and optionally the clips).

vidinpaint-prepare data=faceforensics data.root=/data/ff prepare.cache_clips=true
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from vidinpaint import CONF_DIR


@hydra.main(config_path=CONF_DIR, config_name="prepare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    datamodule = hydra.utils.instantiate(cfg.data)
    index = datamodule.write_index(with_clips=cfg.prepare.cache_clips)
    print(f"index: {datamodule.index_path}\n{json.dumps(index.summary())}")


if __name__ == "__main__":
    main()
