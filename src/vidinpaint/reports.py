"""Reports of the two-stage AAAI'19 recipes (3DCN pre-training, then CombCN/2DCN with that
3DCN): running their stages, and their Table 2, ablation tables and loss curves.

Each stage is one Hydra multirun of ``vidinpaint-train`` over a ``conf/sweep/`` grid, so any
launcher works (``hydra/launcher=submitit_slurm`` runs one job per grid cell). Afterwards the
runs' ``metrics.json`` are laid out like Table 2 (mean ± std over the seeds of a seeded sweep;
each run stays one seed), with the paper's numbers beside ours only on the paper's datasets,
and their loss curves are plotted like Fig. 5.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from vidinpaint import CONF_DIR

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


def quote_seeds(override: str) -> str:
    """``seeds=1,2,3`` -> ``seeds="1,2,3"``: a multirun would sweep a bare comma list."""
    key, _, value = override.partition("=")
    if key == "seeds" and "," in value and not value.startswith(("'", '"')):
        return f'seeds="{value}"'
    return override


def run_stages(sweep: str, overrides: list[str], sweep_dir: Path, jobs: int = 1) -> None:
    """Runs the ``pretrain`` then the ``joint`` multirun of ``conf/sweep/<sweep>.yaml``.

    ``jobs`` > 1: each stage's seeds are split into that many groups, each run by its own
    process at once (round robin: seeds 1,2,3 with 2 jobs -> 1,3 and 2), with the machine's
    cores shared out as their thread count unless ``OMP_NUM_THREADS`` is set; each process
    writes its output to ``<sweep_dir>/logs/<stage>_seeds_<group>.log`` (a failing one's last
    lines are printed).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if not any(o.split("=")[0] in ("logger", "+logger") for o in overrides):
        overrides = [*overrides, "logger=[csv,wandb]"]
    groups = seed_groups(sweep, overrides, jobs)
    env = dict(os.environ)
    if len(groups) > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // len(groups)))
    for stage in ("pretrain", "joint"):
        commands = [
            [
                sys.executable,
                "-m",
                "vidinpaint.train",
                f"sweep={sweep}",
                f"stage={stage}",
                f"hydra.sweep.dir={sweep_dir}",
                # seeds=1,2,3 is the sweep's list of run seeds, not a sweep over the key itself
                *(quote_seeds(o) for o in overrides if not o.startswith("seeds=")),
                *([quote_seeds(f"seeds={group}")] if group is not None else []),
            ]
            for group in groups
        ]
        for cmd in commands:
            log.info("stage %s: %s", stage, " ".join(cmd))
        if len(commands) == 1:
            subprocess.run(commands[0], env=env, check=True)
            continue
        logs = [job_log(sweep_dir, stage, group) for group in groups]
        log.info(
            "stage %s: %d processes at once, their output in %s", stage, len(logs), logs[0].parent
        )
        running = []
        for cmd, path in zip(commands, logs):
            with path.open("w") as out:
                running.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
        failed = []
        for cmd, path, proc in zip(commands, logs, running):
            if proc.wait() == 0:
                log.info("stage %s: %s done", stage, path.stem)
                continue
            tail = path.read_text(errors="replace").splitlines()[-20:]
            log.error("stage %s failed, the end of %s:\n%s", stage, path, "\n".join(tail))
            failed.append(cmd)
        if failed:
            raise subprocess.CalledProcessError(1, failed[0])


def job_log(sweep_dir: Path, stage: str, group: str | None) -> Path:
    """``<sweep_dir>/logs/<stage>_seeds_<group>.log`` (commas as dashes), its folder made."""
    path = sweep_dir / "logs" / f"{stage}_seeds_{str(group).replace(',', '-')}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def seed_groups(sweep: str, overrides: list[str], jobs: int) -> list[str | None]:
    """The sweep's seeds (``seeds=`` of ``overrides``, else of ``conf/sweep/<sweep>.yaml``)
    in ``jobs`` round-robin groups, each a comma list; ``[None]`` (the sweep's own seeds,
    one process) for one job or a sweep without seeds."""
    given = next((o.split("=", 1)[1] for o in overrides if o.startswith("seeds=")), None)
    if jobs == 1:
        return [given]
    if given is None:
        given = OmegaConf.load(Path(CONF_DIR) / "sweep" / f"{sweep}.yaml").get("seeds")
    if given is None:
        return [None]
    seeds = [s.strip() for s in str(given).strip("'\"").split(",") if s.strip()]
    return [",".join(seeds[i::jobs]) for i in range(min(jobs, len(seeds)))]


def collect_runs(sweep_dir: Path) -> dict[str, dict]:
    """``{run sub-folder: metrics.json}`` of every run below ``sweep_dir``."""
    runs = {}
    for path in sorted(sweep_dir.rglob("metrics.json")):
        runs[str(path.parent.relative_to(sweep_dir))] = json.loads(path.read_text())
    if not runs:
        raise FileNotFoundError(f"no metrics.json below {sweep_dir}: did the runs finish?")
    return runs


def run_key(name: str) -> tuple[str, str]:
    """``seed_1/aaai19/vw300_v1_combcn`` -> (``vw300_v1``, ``combcn``); ``cn3d`` -> (``""``,
    ``cn3d``). The seed folder of a seeded sweep is dropped (see :func:`run_seed`)."""
    stem = name.rsplit("/", 1)[-1]
    prefix, _, method = stem.rpartition("_")
    return prefix, method


def run_seed(name: str, metrics: dict) -> int | None:
    """The run's seed: ``metrics.json``'s ``seed``, else its ``seed_<n>/`` folder."""
    if "seed" in metrics:
        return int(metrics["seed"])
    first = name.split("/", 1)[0]
    return int(first[5:]) if first.startswith("seed_") and first[5:].isdigit() else None


def aggregate(values: list[float]) -> dict[str, float | list[float]]:
    """Mean, sample standard deviation (ddof=1; 0 for one value) and the values themselves."""
    if not values:
        raise ValueError("no values to aggregate")
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return {"mean": mean, "std": var**0.5, "seeds": list(values)}


def _seeded_cell(values: list[float], key: str) -> dict[str, float | list[float]]:
    stats = aggregate(values)
    return {key: stats["mean"], f"{key}_std": stats["std"], f"{key}_seeds": stats["seeds"]}


# Table 2 cell -> the run (method) and metrics it is read from (prefixed with the split, e.g.
# ``val/``). The 3DCN column is the 3DCN of the joint CombCN run, scored as the paper scores it
# (eq. (1) at H/r); ``l1_hole_up`` is the same 3DCN up-sampled to H x W, ``l1_hole_pretrain``
# the pre-trained 3DCN before joint training.
TABLE2_SOURCES = {
    "cn3d": (
        "combcn",
        {
            "l1_hole": "l1_hole_3dcn_low",
            "l1_hole_up": "l1_hole_3dcn",
            "psnr": "psnr_3dcn",
            "ssim": "ssim_3dcn",
        },
    ),
    "cn2d": ("cn2d", {"l1_hole": "l1_hole", "psnr": "psnr", "ssim": "ssim"}),
    "combcn": ("combcn", {"l1_hole": "l1_hole", "psnr": "psnr", "ssim": "ssim"}),
}


def _in_seed_order(seeded: dict[int | None, dict]) -> list[dict]:
    return [seeded[s] for s in sorted(seeded, key=lambda s: (s is None, s or 0))]


def mini_table2(runs: dict[str, dict], split: str = "val") -> dict:
    """The quickstart's seeded mini Table 2 from one dataset's runs (one per method and seed):
    ``{method: {l1_hole, l1_hole_std, l1_hole_seeds, psnr, ..., run}, "seeds": n}``; means and
    sample stds over seeds, per-seed values in seed order. ``split``: the metrics' prefix (``val``
    for training runs, ``all`` for ``vidinpaint-eval split=all`` of their checkpoints)."""
    by_method: dict[str, dict[int | None, dict]] = {}
    for name, m in runs.items():
        by_method.setdefault(run_key(name)[1], {})[run_seed(name, m)] = m
    table: dict = {}
    for method, (source, keys) in TABLE2_SOURCES.items():
        seeded = by_method.get(source)
        if not seeded:
            raise ValueError(f"no {source} run for the {method} row among {sorted(runs)}")
        ordered = _in_seed_order(seeded)
        row: dict = {"run": source}
        for key, metric in keys.items():
            name = f"{split}/{metric}"
            values = [m[name] for m in ordered if name in m]
            if not values:
                raise ValueError(f"no {name} in the {source} runs (is {split!r} their split?)")
            row.update(_seeded_cell(values, key))
        table[method] = row
    if "cn3d" in by_method:
        pretrain = [m[f"{split}/l1_hole_3dcn_low"] for m in _in_seed_order(by_method["cn3d"])]
        table["cn3d"].update(_seeded_cell(pretrain, "l1_hole_pretrain"))
    fill_key = f"{split}/l1_hole_fill"
    fill = [m[fill_key] for m in _in_seed_order(by_method["cn2d"]) if fill_key in m]
    if fill:  # the simplest baseline: holes left at the mean pixel (the networks' input)
        table["fill"] = {"run": "cn2d", **_seeded_cell(fill, "l1_hole")}
    counts = {len(by_method[source]) for source, _ in TABLE2_SOURCES.values()}
    if len(counts) != 1:
        raise ValueError(f"methods were run with different numbers of seeds: {sorted(counts)}")
    table["seeds"] = counts.pop()
    return table


def ordering_check(table: dict) -> dict[str, float | bool]:
    """Does a seeded mini Table 2 show the paper's ordering CombCN < 2DCN < 3DCN (means of
    l1_hole), and by how many of the larger of the two standard deviations does CombCN beat
    the 2DCN (``gap_in_std``; inf when both stds are 0)?"""
    cn3d, cn2d, combcn = (table[m]["l1_hole"] for m in ("cn3d", "cn2d", "combcn"))
    gap = cn2d - combcn
    spread = max(table["cn2d"]["l1_hole_std"], table["combcn"]["l1_hole_std"])
    return {
        "ordering": combcn < cn2d < cn3d,
        "gap": gap,
        "gap_in_std": gap / spread if spread > 0 else float("inf"),
    }


def _cell(values: list[float]) -> str:
    """``mean`` for one seed, ``mean ± std (n)`` for several."""
    if not values:
        return "-"
    stats = aggregate(values)
    if len(values) == 1:
        return f"{stats['mean']:.2f}"
    return f"{stats['mean']:.2f} ± {stats['std']:.2f} ({len(values)})"


def _group(runs: dict[str, dict], method: str) -> dict[tuple[str, str], list[dict]]:
    """``{(dataset, recipe prefix): [metrics of each seed]}`` of the runs of one method."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for name, m in sorted(runs.items()):
        prefix, run_method = run_key(name)
        if run_method == method:
            groups.setdefault((m.get("dataset", "?"), prefix), []).append(m)
    return groups


def table2_markdown(runs: dict[str, dict]) -> str:
    """Table 2 (top) layout, one row per dataset: l1_hole [0,255] as mean ± std (seeds).

    Every 3DCN value comes from the joint CombCN run (eq. (1) at H/r, as the paper scores it;
    ``3DCN up`` is the same 3DCN up-sampled to H x W). The paper's numbers stand beside ours
    only for the paper's datasets; other datasets go to a smoke-test table without them.
    """
    rows: dict[str, dict[str, str]] = {}
    for method, (source, keys) in TABLE2_SOURCES.items():
        for (dataset, _), seeds in _group(runs, source).items():
            cells = rows.setdefault(dataset, {})
            l1_hole = f"val/{keys['l1_hole']}"
            cells[method] = _cell([m[l1_hole] for m in seeds if l1_hole in m])
            if method == "cn3d":
                cells["cn3d_up"] = _cell([m["val/l1_hole_3dcn"] for m in seeds])
    paper = {d: c for d, c in rows.items() if d in PAPER_TABLE2}
    smoke = {d: c for d, c in rows.items() if d not in PAPER_TABLE2}
    parts = []
    if paper:
        lines = [
            "| dataset | 3DCN ours | 3DCN paper | 3DCN up ours | 2DCN ours | 2DCN paper | "
            "CombCN ours | CombCN paper |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for dataset, c in sorted(paper.items()):
            ref = PAPER_TABLE2[dataset]
            lines.append(
                f"| {dataset} | {c.get('cn3d', '-')} | {_fmt(ref['cn3d'])} | "
                f"{c.get('cn3d_up', '-')} | {c.get('cn2d', '-')} | {_fmt(ref['cn2d'])} | "
                f"{c.get('combcn', '-')} | {_fmt(ref['combcn'])} |"
            )
        parts.append("\n".join(lines))
    if smoke:
        lines = [
            "Smoke test (not the paper's data; no paper column):\n",
            "| dataset | 3DCN | 3DCN up | 2DCN | CombCN |",
            "|---|---|---|---|---|",
        ]
        for dataset, c in sorted(smoke.items()):
            lines.append(
                f"| {dataset} | {c.get('cn3d', '-')} | {c.get('cn3d_up', '-')} | "
                f"{c.get('cn2d', '-')} | {c.get('combcn', '-')} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def ablation_column(prefix: str) -> str:
    """``vw300_v1`` -> ``v1``; ``vw300`` (the full method) -> ``full``."""
    return prefix.split("_", 1)[1] if "_" in prefix else "full"


def ablation_markdown(runs: dict[str, dict]) -> str:
    """Table 2 (bottom) layout: 3DCN (eq. (1) at H/r) and CombCN l1_hole of each joint run,
    mean ± std (seeds). The paper's numbers are beside ours only when the runs are on 300VW;
    otherwise the table is labelled a smoke test on the dataset used."""
    ours = ablation_values(runs)
    datasets = {dataset for dataset, _ in _group(runs, "combcn")}
    with_paper = datasets == {"vw300"}
    if with_paper:
        header = "| | " + " | ".join(f"{c} ours | {c} paper" for c in ABLATION_COLUMNS.values())
        width = 1 + 2 * len(ABLATION_COLUMNS)
        lines = []
    else:
        header = "| | " + " | ".join(ABLATION_COLUMNS.values())
        width = 1 + len(ABLATION_COLUMNS)
        lines = [f"Smoke test on {', '.join(sorted(datasets))} (not 300VW; no paper column):\n"]
    lines += [header + " |", "|---" * width + "|"]
    for method, label in (("cn3d", "3DCN"), ("combcn", "CombCN")):
        cells = []
        for column in ABLATION_COLUMNS:
            cells.append(_cell(ours[method].get(column, [])))
            if with_paper:
                cells.append(_fmt(PAPER_ABLATION[method][column]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation_values(runs: dict[str, dict]) -> dict[str, dict[str, list[float]]]:
    """``{"cn3d"|"combcn": {column: [l1_hole of each seed]}}`` of the joint runs; the 3DCN
    value is eq. (1) at H/r of the joint run's 3DCN."""
    ours: dict[str, dict[str, list[float]]] = {"cn3d": {}, "combcn": {}}
    for (_, prefix), seeds in _group(runs, "combcn").items():
        column = ablation_column(prefix)
        ours["combcn"][column] = [m["val/l1_hole"] for m in seeds]
        ours["cn3d"][column] = [m["val/l1_hole_3dcn_low"] for m in seeds]
    return ours


def ablation_orderings(runs: dict[str, dict]) -> list[str]:
    """One line per pairwise ordering of the paper's ablation table (each net: the columns in
    the paper's order; each column: CombCN below its 3DCN): whether our means agree, and
    whether the difference exceeds twice the larger standard deviation."""
    ours = ablation_values(runs)
    labels = {"cn3d": "3DCN", "combcn": "CombCN"}

    def compare(label_a: str, a: list[float], label_b: str, b: list[float]) -> str:
        sa, sb = aggregate(a), aggregate(b)
        diff = sb["mean"] - sa["mean"]
        spread = max(sa["std"], sb["std"])
        holds = "holds" if diff > 0 else "does not hold"
        margin = "beyond" if abs(diff) > 2 * spread else "within"
        return (
            f"- {label_a} < {label_b}: {holds} ({sa['mean']:.2f} vs {sb['mean']:.2f}, "
            f"difference {diff:+.2f}, {margin} 2x the larger std {spread:.2f})"
        )

    lines = []
    for net, label in labels.items():
        paper = sorted(PAPER_ABLATION[net], key=PAPER_ABLATION[net].get)
        present = [c for c in paper if c in ours[net]]
        for a, b in zip(present, present[1:], strict=False):
            lines.append(
                compare(
                    f"{label} {ABLATION_COLUMNS[a]}",
                    ours[net][a],
                    f"{label} {ABLATION_COLUMNS[b]}",
                    ours[net][b],
                )
            )
    for column in ABLATION_COLUMNS:
        if column in ours["combcn"]:
            name = ABLATION_COLUMNS[column]
            lines.append(
                compare(
                    f"CombCN {name}",
                    ours["combcn"][column],
                    f"3DCN {name}",
                    ours["cn3d"][column],
                )
            )
    return lines


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


def mean_curve(curves: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Pointwise mean of several seeds' curves over the steps they all logged."""
    steps = set.intersection(*({step for step, _ in c} for c in curves)) if curves else set()
    values = [dict(c) for c in curves]
    return [(step, sum(v[step] for v in values) / len(values)) for step in sorted(steps)]


def plot_curves(sweep_dir: Path, runs: dict[str, dict], path: Path) -> None:
    """Fig. 5 style: training and validation losses of 3DCN and CombCN of each joint run
    (mean over seeds), labelled with the dataset actually used and the recipe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped: dict[str, list[dict]] = {}
    for name, m in sorted(runs.items()):
        prefix, method = run_key(name)
        if method == "combcn":
            recipe = ablation_column(prefix) if prefix else "combcn"
            label = f"{m.get('dataset', '?')} {recipe}"
            grouped.setdefault(label, []).append(read_curves(sweep_dir / name))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for label, seeds in grouped.items():
        for ax, net in zip(axes, ("3dcn", "combcn"), strict=True):
            for split, style in (("train", "-"), ("val", "--")):
                points = mean_curve([c[key] for c in seeds if (key := f"{split}/loss_{net}") in c])
                if points:
                    steps, values = zip(*points, strict=True)
                    n = f" (mean of {len(seeds)} seeds)" if len(seeds) > 1 else ""
                    ax.plot(steps, values, style, label=f"{label} {split}{n}")
    for ax, title in zip(axes, ("3DCN loss (eq. 1)", "CombCN loss (eq. 2)"), strict=True):
        ax.set(title=title, xlabel="iteration", ylabel="masked L1 [0,1]")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def default_sweep_dir(sweep: str) -> Path:
    return Path("outputs") / sweep / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
