"""Table 2 (bottom) and Fig. 5 of AAAI'19: the 300VW ablations V-1, V-2, T-1, T-2, full.

    python experiments/aaai19_ablation.py data.root=/data/300VW  [vidinpaint-train overrides]
    python experiments/aaai19_ablation.py data=synthetic schedule=fast trainer=cpu   # small

Writes experiments/results/aaai19_ablation.md (ours beside the paper's) and
experiments/results/aaai19_ablation_curves.png (training/validation losses, Fig. 5).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from vidinpaint import recipes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("overrides", nargs="*", help="vidinpaint-train overrides")
    parser.add_argument("--sweep-dir", type=Path, help="output folder (default: a new one)")
    parser.add_argument("--results", type=Path, default=Path("experiments/results"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sweep_dir = (args.sweep_dir or recipes.default_sweep_dir("aaai19_ablation")).resolve()
    recipes.run_stages("aaai19_ablation", args.overrides, sweep_dir)
    runs = recipes.collect_runs(sweep_dir)
    markdown = recipes.ablation_markdown(runs)
    args.results.mkdir(parents=True, exist_ok=True)
    curves = args.results / "aaai19_ablation_curves.png"
    recipes.plot_curves(sweep_dir, runs, curves)
    overrides = " ".join(args.overrides) or "(paper settings)"
    (args.results / "aaai19_ablation.md").write_text(
        "# AAAI'19 Table 2 (bottom): 300VW ablations, l1 hole error [0,255]\n\n"
        f"command: `python experiments/aaai19_ablation.py {overrides}`\n\n"
        f"runs: `{os.path.relpath(sweep_dir)}`\n\n"
        "The paper's numbers are 300VW after 100k joint iterations; ours are what the command "
        "above trains, on the data it names.\n\n"
        f"{markdown}\n\n![Fig. 5 curves]({curves.name})\n"
    )
    print(markdown)


if __name__ == "__main__":
    main()
