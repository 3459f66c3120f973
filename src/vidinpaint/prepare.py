"""vidinpaint-prepare: index a dataset once and cache the index (and optionally the clips).

vidinpaint-prepare data=faceforensics data.root=/data/ff prepare.cache_clips=true
vidinpaint-prepare data=faceforensics data.root=/data/ff prepare.format=litdata  # cluster chunks
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from vidinpaint import CONF_DIR, checks, errors
from vidinpaint.data.litdata import check_no_chunks, write_litdata

COMMAND = "vidinpaint-prepare"


@hydra.main(config_path=CONF_DIR, config_name="prepare", version_base="1.3")
@errors.one_line_errors(COMMAND)
def hydra_main(cfg: DictConfig) -> None:
    checks.check_clip_shape({}, cfg.data.size, cfg.data.clip_len)
    checks.check_loader(cfg.data)
    errors.check_choice("prepare.format", cfg.prepare.format, ("index", "litdata"))
    datamodule = hydra.utils.instantiate(cfg.data)
    output = cfg.prepare.output_dir or str(
        datamodule.cache_dir / datamodule.index_path.stem.replace("index-", "litdata-", 1)
    )
    if cfg.prepare.format == "litdata":
        check_no_chunks(output)  # before the work
    index = datamodule.write_index(with_clips=cfg.prepare.cache_clips)
    print(f"index: {datamodule.index_path}\n{json.dumps(index.summary())}")
    if cfg.prepare.format == "litdata":
        counts = write_litdata(
            index,
            output,
            chunk_bytes=cfg.prepare.chunk_bytes,
            chunk_clips=cfg.prepare.chunk_clips,
            num_workers=cfg.prepare.num_workers,
            compression=cfg.prepare.compression,
        )
        print(f"litdata: {output} (stream with data=litdata data.input_dir={output})")
        print(json.dumps(counts))


def main() -> None:
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
