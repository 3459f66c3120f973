"""Table 2 (top) of AAAI'19, or the quickstart's mini Table 2, from one command.

    python experiments/aaai19_table2.py data.root=/data  [any vidinpaint-train override]
    python experiments/aaai19_table2.py sweep=quickstart          # what `make train` runs

Runs 3DCN pre-training, then CombCN (joint, with that 3DCN) and 2DCN, as two Hydra multiruns
(so hydra/launcher=submitit_slurm runs every cell as a cluster job), then writes
experiments/results/aaai19_table2.md (quickstart: table2.json/.md in its output folder) and a
Fig. 5-style plot of the loss curves.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vidinpaint import recipes
from vidinpaint.runs import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("overrides", nargs="*", help="vidinpaint-train overrides (sweep=...)")
    parser.add_argument("--sweep-dir", type=Path, help="output folder (default: a new one)")
    parser.add_argument("--results", type=Path, default=Path("experiments/results"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sweep = next(
        (o.split("=", 1)[1] for o in args.overrides if o.startswith("sweep=")), "aaai19_table2"
    )
    overrides = [o for o in args.overrides if not o.startswith("sweep=")]
    sweep_dir = (args.sweep_dir or recipes.default_sweep_dir(sweep)).resolve()
    recipes.run_stages(sweep, overrides, sweep_dir)
    runs = recipes.collect_runs(sweep_dir)
    recipes.plot_curves(sweep_dir, runs, sweep_dir / "curves.png")
    if sweep == "quickstart":
        table = recipes.mini_table2(runs)
        write_json(sweep_dir / "table2.json", table)
        show = Table(title=f"mini Table 2 (synthetic validation set) - {sweep_dir}")
        for column in ("method", "l1_hole [0,255]", "PSNR", "SSIM"):
            show.add_column(column, justify="right")
        for method in ("cn3d", "cn2d", "combcn"):
            m = table[method]
            show.add_row(method, f"{m['l1_hole']:.2f}", f"{m['psnr']:.2f}", f"{m['ssim']:.4f}")
        Console().print(show)
        return
    markdown = recipes.table2_markdown(runs)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "aaai19_table2.md").write_text(
        f"# AAAI'19 Table 2 (top): l1 hole error [0,255]\n\nruns: `{sweep_dir}`\n\n{markdown}\n"
        f"\n![curves](aaai19_table2_curves.png)\n"
    )
    recipes.plot_curves(sweep_dir, runs, args.results / "aaai19_table2_curves.png")
    print(markdown)


if __name__ == "__main__":
    main()
