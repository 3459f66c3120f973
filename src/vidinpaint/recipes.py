"""Two-stage AAAI'19 recipes: 3DCN pre-training, then CombCN/2DCN with that 3DCN.

Each stage is one Hydra multirun of ``vidinpaint-train`` over a ``conf/sweep/`` grid, so any
launcher works (``hydra/launcher=submitit_slurm`` runs one job per grid cell). Afterwards the
runs' ``metrics.json`` are laid out like Table 2, with the paper's numbers beside ours, and
their loss curves are plotted like Fig. 5.
"""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

# Table 2 of the paper: l1 hole error in [0,255].
PAPER_TABLE2 = {
    "faceforensics": {"cn3d": 7.18, "cn2d": 6.77, "combcn": 6.27},
    "caltech": {"cn3d": 11.91, "cn2d": 11.16, "combcn": 9.56},
}
PAPER_ABLATION = {
    "cn3d": {"v1": 9.51, "v2": 11.56, "t1": 6.30, "t2": 9.28, "full": 4.45},
    "combcn": {"v1": 6.39, "v2": 8.13, "t1": 5.18, "t2": 6.31, "full": 4.20},
}
ABLATION_COLUMNS = {"v1": "V-1", "v2": "V-2", "t1": "T-1", "t2": "T-2", "full": "full method"}
CURVES = ("train/loss_3dcn", "train/loss_combcn", "val/loss_3dcn", "val/loss_combcn")


def run_stages(sweep: str, overrides: list[str], sweep_dir: Path) -> None:
    """Runs the ``pretrain`` then the ``joint`` multirun of ``conf/sweep/<sweep>.yaml``."""
    if not any(o.split("=")[0] in ("logger", "+logger") for o in overrides):
        overrides = [*overrides, "logger=[csv,wandb]"]
    for stage in ("pretrain", "joint"):
        cmd = [
            sys.executable,
            "-m",
            "vidinpaint.train",
            f"sweep={sweep}",
            f"stage={stage}",
            f"hydra.sweep.dir={sweep_dir}",
            *overrides,
        ]
        log.info("stage %s: %s", stage, " ".join(cmd))
        subprocess.run(cmd, check=True)


def collect_runs(sweep_dir: Path) -> dict[str, dict]:
    """``{run sub-folder: metrics.json}`` of every run below ``sweep_dir``."""
    runs = {}
    for path in sorted(sweep_dir.rglob("metrics.json")):
        runs[str(path.parent.relative_to(sweep_dir))] = json.loads(path.read_text())
    if not runs:
        raise FileNotFoundError(f"no metrics.json below {sweep_dir}: did the runs finish?")
    return runs


def run_key(name: str) -> tuple[str, str]:
    """``aaai19/vw300_v1_combcn`` -> (``vw300_v1``, ``combcn``); ``cn3d`` -> (``""``, ``cn3d``)."""
    stem = name.rsplit("/", 1)[-1]
    prefix, _, method = stem.rpartition("_")
    return prefix, method


def mini_table2(runs: dict[str, dict]) -> dict[str, dict[str, float]]:
    """``{method: {l1_hole, psnr, ssim}}`` of a single-dataset chain (the quickstart)."""
    return {
        run_key(name)[1]: {k: m[f"val/{k}"] for k in ("l1_hole", "psnr", "ssim")}
        for name, m in runs.items()
    }


def table2_markdown(runs: dict[str, dict]) -> str:
    """Table 2 (top) layout: one row per dataset, ours / paper per method."""
    rows = {}
    for name, m in runs.items():
        dataset, method = run_key(name)
        rows.setdefault(dataset or m.get("dataset", "?"), {})[method] = m["val/l1_hole"]
    lines = [
        "| dataset | 3DCN ours | 3DCN paper | 2DCN ours | 2DCN paper | CombCN ours | "
        "CombCN paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, values in sorted(rows.items()):
        cells = []
        for method in ("cn3d", "cn2d", "combcn"):
            paper = PAPER_TABLE2.get(dataset, {}).get(method)
            cells += [_fmt(values.get(method)), _fmt(paper)]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation_markdown(runs: dict[str, dict]) -> str:
    """Table 2 (bottom) layout: 3DCN and CombCN l1 after joint training per ablation."""
    ours: dict[str, dict[str, float]] = {"cn3d": {}, "combcn": {}}
    for name, m in runs.items():
        prefix, method = run_key(name)
        if method != "combcn":
            continue
        column = prefix.split("_", 1)[1] if "_" in prefix else "full"
        ours["combcn"][column] = m["val/l1_hole"]
        ours["cn3d"][column] = m["val/l1_hole_3dcn"]
    header = "| | " + " | ".join(f"{c} ours | {c} paper" for c in ABLATION_COLUMNS.values())
    lines = [header + " |", "|---" * (1 + 2 * len(ABLATION_COLUMNS)) + "|"]
    for method, label in (("cn3d", "3DCN"), ("combcn", "CombCN")):
        cells = []
        for column in ABLATION_COLUMNS:
            cells += [_fmt(ours[method].get(column)), _fmt(PAPER_ABLATION[method][column])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def read_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Loss curves ``{metric: [(step, value)]}`` from a run's CSV logger file."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for path in run_dir.glob("csv/version_*/metrics.csv"):
        with path.open() as f:
            for row in csv.DictReader(f):
                for key in CURVES:
                    if row.get(key):
                        curves.setdefault(key, []).append((int(row["step"]), float(row[key])))
    return curves


def plot_curves(sweep_dir: Path, runs: dict[str, dict], path: Path) -> None:
    """Fig. 5 style: training and validation losses of 3DCN and CombCN for each joint run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name in runs:
        if run_key(name)[1] != "combcn":
            continue
        curves = read_curves(sweep_dir / name)
        for ax, net in zip(axes, ("3dcn", "combcn"), strict=True):
            for split, style in (("train", "-"), ("val", "--")):
                points = curves.get(f"{split}/loss_{net}", [])
                if points:
                    steps, values = zip(*points, strict=True)
                    ax.plot(steps, values, style, label=f"{run_key(name)[0] or name} {split}")
    for ax, title in zip(axes, ("3DCN loss", "CombCN loss"), strict=True):
        ax.set(title=title, xlabel="iteration", ylabel="masked L1")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def default_sweep_dir(sweep: str) -> Path:
    return Path("outputs") / sweep / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
