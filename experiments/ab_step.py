"""Training-iteration variants timed in turn in one process (A B C A B C ...), for CPU choices.

    python experiments/ab_step.py model=combcn --variants 'precision=fp32' \
        'precision=bf16 channels_last=true' --rounds 5

Each variant is a set of ``vidinpaint-bench train`` overrides on top of the shared ones; each
gets its own system and synthetic batch (``training.build_system``, ``training.make_step``) and one
untimed warm-up iteration. Then the variants run one iteration each per round, so a machine
whose speed drifts (other processes) slows them alike. Prints the median ms/iteration of each
variant and the median of its per-round ratio to the first variant.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from vidinpaint import CONF_DIR
from vidinpaint.bench import training


def build(overrides: list[str]):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("bench", overrides=["device=cpu", *overrides])
    cfg.paths.output_dir = str(Path("outputs/ab_step").resolve())
    torch.manual_seed(cfg.seed)
    system = training.build_system(cfg, compile=False)
    step, _ = training.make_step(cfg, system, torch.device("cpu"))
    step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="overrides shared by every variant")
    parser.add_argument("--variants", nargs="+", required=True, help="'key=value key=value'")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")
        warnings.filterwarnings("ignore", message=".*self.trainer.*")
        steps = [build([*args.overrides, *v.split()]) for v in args.variants]
        times: list[list[float]] = [[] for _ in steps]
        for _ in range(args.rounds):
            for step, record in zip(steps, times):
                begin = time.perf_counter()
                step()
                record.append(time.perf_counter() - begin)
    print(
        f"{' '.join(args.overrides)}; {args.rounds} rounds; torch threads {torch.get_num_threads()}"
    )
    print("| variant | ms/iter median (min-max) | speed-up over the first (median of rounds) |")
    print("|---|---:|---:|")
    for variant, record in zip(args.variants, times):
        ratio = statistics.median(a / b for a, b in zip(times[0], record))
        print(
            f"| {variant} | {1e3 * statistics.median(record):,.0f} "
            f"({1e3 * min(record):,.0f}-{1e3 * max(record):,.0f}) | {ratio:.2f}x |"
        )


if __name__ == "__main__":
    main()
