"""The quickstart's CombCN under other protocol options, with each seed's pre-trained 3DCN.

    python experiments/aaai19_quickstart_options.py outputs/quickstart/<time>
    python experiments/aaai19_quickstart_options.py outputs/quickstart/<time> --seeds 1 \\
        --only guide_zero

Re-runs the joint stage of a finished `make train` (sweep=quickstart, same seeds) for CombCN
with one option changed per variant (guidance initialisation and paste, weight decay 1e-4 and
1e-2 on the convolution kernels), then writes experiments/results/aaai19_quickstart_options.md:
l1_hole mean ± std over seeds beside the quickstart's own CombCN and 2DCN.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from vidinpaint import reports

# variant -> vidinpaint-train overrides (the quickstart's CombCN: weight_decay 0, raw 3DCN
# frame, default guidance initialisation)
VARIANTS = {
    "guide_zero": ["model.guide_init=zero"],
    "guide_paste_known": ["model.guide_paste_known=true"],
    "weight_decay_1e-4": ["model.weight_decay=1e-4"],
    "weight_decay_1e-2": ["model.weight_decay=1e-2"],
}


def options_dir(quickstart_dir: Path) -> Path:
    """Beside the quickstart's folder, so that its own table never collects these runs."""
    return quickstart_dir.with_name(f"{quickstart_dir.name}_options")


def run_variant(quickstart_dir: Path, name: str, seeds: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "vidinpaint.train",
        "sweep=quickstart",
        "stage=joint",
        "model=combcn",
        f"seeds={seeds}",
        f"hydra.sweep.dir={options_dir(quickstart_dir) / name}",
        f"pretrain_dir={quickstart_dir}/seed_${{seed}}",
        "logger=csv",
        "num_samples=0",
        *VARIANTS[name],
    ]
    logging.info("%s: %s", name, " ".join(cmd))
    subprocess.run(cmd, check=True)


def l1_cell(runs: dict[str, dict], method: str) -> str:
    values = [m["val/l1_hole"] for name, m in runs.items() if reports.run_key(name)[1] == method]
    if not values:
        return "-"
    stats = reports.aggregate(values)
    return f"{stats['mean']:.2f} ± {stats['std']:.2f} ({len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("quickstart_dir", type=Path, help="a finished sweep=quickstart folder")
    parser.add_argument("--only", choices=sorted(VARIANTS), help="run this variant alone")
    parser.add_argument("--seeds", help="e.g. 1 or 1,2 (default: every seed of the quickstart)")
    parser.add_argument("--collect-only", action="store_true", help="only write the table")
    parser.add_argument("--results", type=Path, default=Path("experiments/results"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quickstart_dir = args.quickstart_dir.resolve()
    base = reports.collect_runs(quickstart_dir)
    seeds = args.seeds or ",".join(
        str(s) for s in sorted({reports.run_seed(k, m) for k, m in base.items()})
    )
    chosen = {int(s) for s in seeds.split(",")}
    base = {k: m for k, m in base.items() if reports.run_seed(k, m) in chosen}
    if not args.collect_only:
        for name in [args.only] if args.only else VARIANTS:
            run_variant(quickstart_dir, name, seeds)
    lines = [
        "| CombCN variant | overrides | l1_hole [0,255] |",
        "|---|---|---|",
        f"| quickstart CombCN | (none) | {l1_cell(base, 'combcn')} |",
        f"| quickstart 2DCN | (none) | {l1_cell(base, 'cn2d')} |",
    ]
    for name, overrides in VARIANTS.items():
        folder = options_dir(quickstart_dir) / name
        if folder.is_dir():
            runs = reports.collect_runs(folder)
            lines.append(f"| {name} | `{' '.join(overrides)}` | {l1_cell(runs, 'combcn')} |")
    table = "\n".join(lines)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "aaai19_quickstart_options.md").write_text(
        "# Quickstart CombCN under other protocol options (smoke test on the synthetic quickstart "
        "videos)\n\n"
        f"command: `python experiments/aaai19_quickstart_options.py {args.quickstart_dir}` "
        f"after `make train`; seeds {seeds}, each with its own pre-trained 3DCN\n\n"
        "Cells: mean ± sample std over seeds (number of runs), validation l1_hole.\n\n"
        f"{table}\n"
    )
    print(table)


if __name__ == "__main__":
    main()
