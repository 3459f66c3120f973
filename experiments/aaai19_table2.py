"""Table 2 (top) of AAAI'19, or the quickstart's seeded mini Table 2, from one command.

    python experiments/aaai19_table2.py data.root=/data  [any vidinpaint-train override]
    python experiments/aaai19_table2.py sweep=quickstart          # what `make train` runs
    python experiments/aaai19_table2.py sweep=quickstart --jobs 3 # the seeds at once
    python experiments/aaai19_table2.py sweep=quickstart seeds=1,2,3,4,5

Runs 3DCN pre-training, then CombCN (joint, with that 3DCN) and 2DCN, once per seed, as two
Hydra multiruns (so hydra/launcher=submitit_slurm runs every cell as a cluster job), then writes
experiments/results/aaai19_table2.md (quickstart: table2.json/.md in its output folder) and a
Fig. 5-style plot of the loss curves. Every 3DCN value is the 3DCN of the joint CombCN run,
scored as eq. (1) at H/r (the up-sampled score is the extra `3DCN up` column).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from vidinpaint import reports
from vidinpaint.runs import write_json

ROWS = (("cn3d", "3DCN (joint run, eq. 1 at H/r)"), ("cn2d", "2DCN"), ("combcn", "CombCN"))


def _data_label(sweep_dir: Path) -> str:
    """The data the sweep's runs used, e.g. ``synthetic shimmer`` (from a run's config)."""
    config = next(sweep_dir.glob("seed_*/*/.hydra/config.yaml"), None)
    if config is None:
        return "synthetic"
    data = OmegaConf.load(config).data
    return " ".join(str(v) for v in (data.name, data.get("adapter", {}).get("scene")) if v)


def print_mini_table2(table: dict, title: str) -> None:
    """The seeded mini Table 2: mean ± std over seeds, and whether the paper's ordering holds."""
    show = Table(title=title)
    for column in ("method", "l1_hole [0,255]", "PSNR", "SSIM"):
        show.add_column(column, justify="right")
    for method, label in ROWS:
        m = table[method]
        show.add_row(
            label,
            f"{m['l1_hole']:.2f} ± {m['l1_hole_std']:.2f}",
            f"{m['psnr']:.2f} ± {m['psnr_std']:.2f}",
            f"{m['ssim']:.4f} ± {m['ssim_std']:.4f}",
        )
    cn3d = table["cn3d"]
    show.add_row("3DCN up-sampled", f"{cn3d['l1_hole_up']:.2f} ± {cn3d['l1_hole_up_std']:.2f}")
    if "fill" in table:
        fill = table["fill"]
        show.add_row("mean-pixel fill", f"{fill['l1_hole']:.2f} ± {fill['l1_hole_std']:.2f}")
    console = Console()
    console.print(show)
    check = reports.ordering_check(table)
    console.print(
        f"{table['seeds']} seeds (mean ± sample std). Paper ordering CombCN < 2DCN < 3DCN: "
        f"{'holds' if check['ordering'] else 'does NOT hold'}; 2DCN - CombCN = {check['gap']:.2f}"
        f" = {check['gap_in_std']:.1f} x the larger std "
        f"({'>=' if check['gap_in_std'] >= 2 else '<'} 2)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("overrides", nargs="*", help="vidinpaint-train overrides (sweep=...)")
    parser.add_argument("--sweep-dir", type=Path, help="output folder (default: a new one)")
    parser.add_argument("--results", type=Path, default=Path("experiments/results"))
    parser.add_argument(
        "--collect-only", action="store_true", help="tabulate the runs under --sweep-dir"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="seeds trained at once, each group in its own process (the cores shared out)",
    )
    args = parser.parse_intermixed_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sweep = next(
        (o.split("=", 1)[1] for o in args.overrides if o.startswith("sweep=")), "aaai19_table2"
    )
    overrides = [o for o in args.overrides if not o.startswith("sweep=")]
    sweep_dir = (args.sweep_dir or reports.default_sweep_dir(sweep)).resolve()
    if not args.collect_only:
        reports.run_stages(sweep, overrides, sweep_dir, args.jobs)
    runs = reports.collect_runs(sweep_dir)
    reports.plot_curves(sweep_dir, runs, sweep_dir / "curves.png")
    if sweep == "quickstart":
        table = reports.mini_table2(runs)
        table["ordering"] = reports.ordering_check(table)
        write_json(sweep_dir / "table2.json", table)
        (sweep_dir / "table2.md").write_text(reports.table2_markdown(runs) + "\n")
        title = f"mini Table 2 ({_data_label(sweep_dir)} validation set) - {sweep_dir}"
        print_mini_table2(table, title)
        return
    markdown = reports.table2_markdown(runs)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "aaai19_table2.md").write_text(
        f"# AAAI'19 Table 2 (top): l1 hole error [0,255]\n\nruns: `{sweep_dir}`\n\n"
        "3DCN: the 3DCN of each joint CombCN run, eq. (1) at H/r (the paper's unit); "
        "3DCN up: the same output up-sampled bilinearly to H x W.\n\n"
        f"{markdown}\n\n![curves](aaai19_table2_curves.png)\n"
    )
    reports.plot_curves(sweep_dir, runs, args.results / "aaai19_table2_curves.png")
    print(markdown)


if __name__ == "__main__":
    main()
