"""vidinpaint-bench: data throughput and training-step speed, memory, FLOPs and MFU.

vidinpaint-bench data                                  # clips/s: DataModule vs raw decord
vidinpaint-bench data data_bench.num_clips=64 data.clip_len=16
vidinpaint-bench train model=combcn                    # one 32x128x128 sample per step
vidinpaint-bench train model=cn3d device=cuda precision=bf16 channels_last=true compile=true
vidinpaint-bench train model=dip_vid_flow iters=20 out=bench_il.json

The first word picks the mode (``data`` or ``train``): Hydra takes no positional arguments,
so :func:`main` turns a leading ``data``/``train`` into the override ``mode=...`` (writing
``mode=train`` works too). Every run prints a table and writes ``bench.json`` into its Hydra
output folder, and also to ``out=PATH`` when given. Settings: ``conf/bench.yaml``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from vidinpaint import CONF_DIR, checks, errors
from vidinpaint.bench.common import console, print_table, write_results
from vidinpaint.bench.throughput import DATA_COLUMNS, bench_data
from vidinpaint.bench.training import TRAIN_COLUMNS, bench_train
from vidinpaint.errors import check_choice
from vidinpaint.models import speed

log = logging.getLogger(__name__)

COMMAND = "vidinpaint-bench"
MODES = ("data", "train")


def run(cfg: DictConfig) -> dict[str, Any]:
    """Runs the bench ``cfg.mode``, prints its table, writes the JSON; returns the result."""
    if cfg.mode == "train":
        record = bench_train(cfg)
        row = {**record, "size": "x".join(map(str, record["size"]))}
        print_table(f"vidinpaint-bench train ({record['device_name']})", [row], TRAIN_COLUMNS)
        if record["notes"]:
            console().print(record["notes"])
        result = record
    elif cfg.mode == "data":
        result = bench_data(cfg)
        rows = [
            {**row, "workers": "in-process" if row["workers"] is None else row["workers"]}
            for row in result["rows"]
        ]
        print_table(
            f"vidinpaint-bench data (clip_len {cfg.data.clip_len}, {result['device_name']})",
            rows,
            DATA_COLUMNS,
        )
        for key, target in result["targets"].items():
            verdict = "met" if target["met"] else "NOT met"
            console().print(
                f"{key}: {target['value']:.3g} (target >= {target['target']}) {verdict}"
            )
    else:
        check_choice("mode", cfg.mode, MODES)
    for path in write_results(cfg, result):
        log.info("wrote %s", path)
    return result


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="bench")
@errors.one_line_errors(COMMAND)
def hydra_main(cfg: DictConfig) -> None:
    if cfg.get("out"):
        checks.check_writable_folder(cfg.out, "out=")
    log.info(speed.keep_freed_memory())
    run(cfg)


def main() -> None:
    """``vidinpaint-bench [data|train] [overrides...]``: a leading mode word becomes
    ``mode=<word>`` before Hydra parses the command line."""
    if len(sys.argv) > 1 and sys.argv[1] in MODES:
        sys.argv = [sys.argv[0], f"mode={sys.argv[1]}", *sys.argv[2:]]
    errors.run_command(COMMAND, hydra_main)
