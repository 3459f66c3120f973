"""vidinpaint-prepare: index a dataset once and cache the index (and optionally the clips).

vidinpaint-prepare data=faceforensics data.root=/data/ff prepare.cache_clips=true
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from vidinpaint import CONF_DIR, checks, errors

COMMAND = "vidinpaint-prepare"


@hydra.main(config_path=CONF_DIR, config_name="prepare", version_base="1.3")
@errors.one_line_errors(COMMAND)
def hydra_main(cfg: DictConfig) -> None:
    checks.check_clip_shape({}, cfg.data.size, cfg.data.clip_len)
    checks.check_loader(cfg.data)
    datamodule = hydra.utils.instantiate(cfg.data)
    index = datamodule.write_index(with_clips=cfg.prepare.cache_clips)
    print(f"index: {datamodule.index_path}\n{json.dumps(index.summary())}")


def main() -> None:
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
