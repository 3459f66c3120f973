"""Table 2 (bottom) and Fig. 5 of AAAI'19: the 300VW ablations V-1, V-2, T-1, T-2, full.

    python experiments/aaai19_ablation.py data.root=/data/300VW  [vidinpaint-train overrides]
    python experiments/aaai19_ablation.py --name aaai19_ablation_small seeds=1,2,3 data=synthetic \\
        data.adapter.scene=shimmer ...   # at CPU scale: the command in experiments/README.md

Writes experiments/results/<name>.md (mean ± std over the seeds; the paper's numbers beside
ours only when the runs are on 300VW, otherwise labelled a smoke test on the dataset used; a
list of which of the paper's orderings hold) and <name>_curves.png (Fig. 5 losses, mean over
seeds, legends naming the dataset).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from vidinpaint import reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("overrides", nargs="*", help="vidinpaint-train overrides")
    parser.add_argument("--sweep-dir", type=Path, help="output folder (default: a new one)")
    parser.add_argument("--results", type=Path, default=Path("experiments/results"))
    parser.add_argument("--name", default="aaai19_ablation", help="results file stem")
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="tabulate the runs under --sweep-dir (give the overrides they were run with)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sweep_dir = (args.sweep_dir or reports.default_sweep_dir("aaai19_ablation")).resolve()
    if not args.collect_only:
        reports.run_stages("aaai19_ablation", args.overrides, sweep_dir)
    runs = reports.collect_runs(sweep_dir)
    markdown = reports.ablation_markdown(runs)
    orderings = "\n".join(reports.ablation_orderings(runs))
    fills = [m["val/l1_hole_fill"] for m in runs.values() if "val/l1_hole_fill" in m]
    baseline = (
        f"Simplest baseline on the same holes, the mean-pixel fill (the networks' input): "
        f"{sum(fills) / len(fills):.2f}.\n\n"
        if fills
        else ""
    )
    datasets = sorted({m.get("dataset", "?") for m in runs.values()})
    smoke = datasets != ["vw300"]
    args.results.mkdir(parents=True, exist_ok=True)
    curves = args.results / f"{args.name}_curves.png"
    reports.plot_curves(sweep_dir, runs, curves)
    title = (
        f"AAAI'19 ablation chain, smoke test on {', '.join(datasets)} (not the paper's 300VW)"
        if smoke
        else "AAAI'19 Table 2 (bottom): 300VW ablations"
    )
    overrides = " ".join(args.overrides) or "(paper settings)"
    (args.results / f"{args.name}.md").write_text(
        f"# {title}, l1 hole error [0,255]\n\n"
        f"command: `python experiments/aaai19_ablation.py --name {args.name} {overrides}`\n\n"
        f"runs: `{os.path.relpath(sweep_dir)}`\n\n"
        "3DCN: the 3DCN of each joint run, eq. (1) at H/r (the paper's unit). Cells: mean ± "
        "sample std over seeds (number of seeds).\n\n"
        f"{markdown}\n\n{baseline}## The paper's orderings at this scale\n\n{orderings}\n\n"
        f"![Fig. 5 curves]({curves.name})\n"
    )
    print(markdown)
    print(orderings)


if __name__ == "__main__":
    main()
