"""DIP-Vid-Flow's quality against iterations, with the classic fills as lines.

One fit per (clip, seed) of the paper's shape (windows of 5 frames, 100 iterations each, drawn
as the code's epoch, the middle window last) run for ``iterations`` iterations in one epoch;
its network is scored at every count of ``checkpoints`` (the same fit, not separate fits):
hole PSNR, SSIM and flow warping error of the composited output. ``telea`` and ``propagate``
are scored once per clip. Clips, frames and size as ``conf/experiment/iccv19/ablation.yaml``:

    python experiments/iccv19_iterations.py                  # the committed table
    python experiments/iccv19_iterations.py seeds=[1] iterations=2000 checkpoints=[500,1000,2000]

Options (besides any override of the ablation config): ``seeds``, ``clips`` (indices into
``benchmark.clips``), ``iterations``, ``checkpoints``, ``jobs`` (fits run at once, one process
and one thread each). Writes ``experiments/results/iccv19_iterations.{md,json}`` after every
fit and the figure ``iccv19_iterations.png`` at the end; the slope of the last two
checkpoints is extrapolated (log-linear in iterations) to where it would reach ``propagate``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import hydra
import numpy as np
import torch
import yaml
from omegaconf import OmegaConf

from iccv19_ablation import (
    ROOT,
    clip_mask,
    compose_config,
    load_clip,
    run_one,
    score,
    truth_flows,
    write_atomic,
)
from vidinpaint.models.internal import SIZE_MULTIPLE
from vidinpaint.nets.skipnet import make_noise

log = logging.getLogger("iccv19_iterations")
RESULTS = ROOT / "experiments" / "results" / "iccv19_iterations"
DEFAULTS = {
    "seeds": [1, 2],
    "clips": [0, 2],
    "iterations": 10000,
    "checkpoints": [500, 1000, 2000, 5000, 10000],
    "jobs": 2,
}
SCORES = ("psnr_hole", "ssim", "ewarp")


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    """This script's options (``DEFAULTS``) and the config overrides."""
    options, overrides = dict(DEFAULTS), []
    for item in argv:
        key, _, value = item.partition("=")
        if key in options:
            options[key] = yaml.safe_load(value)
        else:
            overrides.append(item)
    for key in ("seeds", "clips", "checkpoints"):
        if not isinstance(options[key], list):
            options[key] = [options[key]]
    if max(options["checkpoints"]) > options["iterations"]:
        raise ValueError(f"checkpoints {options['checkpoints']} beyond iterations")
    return options, overrides


def fit_config(overrides: list[str], seed: int, iterations: int) -> dict:
    """DIP-Vid-Flow for ``iterations`` iterations: one epoch of iterations / 100 windows."""
    windows = iterations // 100
    if windows * 100 != iterations or windows < 2:
        raise ValueError(f"iterations must be a multiple of 100, >= 200, got {iterations}")
    cfg = compose_config(
        [
            *overrides,
            "method=dip_vid_flow",
            f"seed={seed}",
            "schedule.il_epochs=1",
            "schedule.il_iters_per_batch=100",
            f"schedule.il_batches_per_epoch={windows - 1}",  # + the middle window
        ]
    )
    return {
        key: OmegaConf.to_container(cfg[key], resolve=True)
        if OmegaConf.is_config(cfg[key])
        else cfg[key]
        for key in ("model", "benchmark", "resolution", "mask_coverage")
    }


def one_fit(task: dict) -> dict:
    """Fits one (clip, seed) and scores its network at every checkpoint (worker process)."""
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = OmegaConf.create(task["config"])
    bench = cfg.benchmark
    size = tuple(int(s) for s in cfg.resolution)
    samples = Path(bench.samples_dir)
    video = load_clip(samples / task["clip"], bench.frames, size)
    mask = clip_mask(task["mask"], samples, bench.frames, size, bench.box, cfg.mask_coverage)
    system = hydra.utils.instantiate(cfg.model)
    states: dict[int, tuple[float, dict]] = {}
    start = time.perf_counter()

    def keep(state: dict) -> None:
        if state["iteration"] in task["checkpoints"]:
            net = {k: v.clone() for k, v in state["net"].items()}
            states[state["iteration"]] = (time.perf_counter() - start, net)

    system.fit_video(video, mask, progress=False, on_state=keep, state_every=100)
    seconds = time.perf_counter() - start
    height, width = video.shape[-2:]
    pad_h, pad_w = -height % SIZE_MULTIPLE, -width % SIZE_MULTIPLE
    noise = make_noise(
        video.shape[0], height + pad_h, width + pad_w, seed=system.fit_options.noise_seed
    )
    batch_frames = min(system.fit_options.batch_frames, video.shape[0])
    flows = truth_flows(video)
    points = []
    for iteration in sorted(states):
        elapsed, net = states[iteration]
        system.net.load_state_dict(net)
        raw = system.generate(noise, batch_frames, torch.device("cpu"))[..., :height, :width]
        point = {"iterations": iteration, "seconds": elapsed}
        points.append(point | score(raw, video, mask, flows))
    return {"clip": task["clip"], "seed": task["seed"], "seconds": seconds, "points": points}


def baselines(overrides: list[str], clip: dict) -> dict[str, dict]:
    """``telea`` and ``propagate`` scores on one clip."""
    rows = {}
    for method in ("telea", "propagate"):
        cfg = compose_config([*overrides, f"method={method}"])
        bench = cfg.benchmark
        size = tuple(int(s) for s in cfg.resolution)
        samples = Path(bench.samples_dir)
        video = load_clip(samples / clip["clip"], bench.frames, size)
        mask = clip_mask(clip["mask"], samples, bench.frames, size, bench.box, cfg.mask_coverage)
        row, _ = run_one(cfg, video, mask)
        rows[method] = {k: row[k] for k in (*SCORES, "seconds")}
    return rows


def crossing(points: list[dict], target: float) -> float | None:
    """Iterations where the log-linear extension of the last two points reaches ``target``
    (None: not rising)."""
    (i0, p0), (i1, p1) = [(p["iterations"], p["psnr_hole"]) for p in points[-2:]]
    slope = (p1 - p0) / (math.log10(i1) - math.log10(i0))
    if slope <= 0:
        return None
    return 10 ** (math.log10(i1) + (target - p1) / slope)


def summary(record: dict) -> list[dict]:
    """Per clip and checkpoint: mean and spread over seeds of every score."""
    rows = []
    for clip in record["clips"]:
        fits = [f for f in record["fits"] if f["clip"] == clip["clip"]]
        if not fits:
            continue
        for index, point in enumerate(fits[0]["points"]):
            row = {"clip": clip["clip"], "iterations": point["iterations"], "seeds": len(fits)}
            for key in (*SCORES, "seconds"):
                values = [f["points"][index][key] for f in fits]
                row[key] = (float(np.mean(values)), float(np.std(values)))
            rows.append(row)
    return rows


def markdown(record: dict) -> str:
    size = "x".join(str(s) for s in record["resolution"])
    lines = [
        "# ICCV'19 DIP-Vid-Flow: quality against iterations",
        "",
        f"Composed clips (first {record['frames']} frames at {size}; the covered content is the "
        "ground truth, as `iccv19_ablation.md`). One fit per clip and seed of the paper's shape "
        "(5-frame windows at intervals 1 and 3, both directions, 100 iterations per window, the "
        "code's epoch with the middle window last), scored at each checkpoint of the same fit. "
        "Perceptual loss off (no VGG16 weights on the build machine); everything else as "
        "`experiment=iccv19/dip_vid_flow` (flows estimated on the mean-filled frames, "
        "`mask_coverage=0.5`) but `model.pad_mode=replicate` (64-pixel frames). Mean +- std "
        f"over seeds {record['options']['seeds']}. `ewarp` x1e3. `seconds`: wall time of the "
        "fit up to the checkpoint (one thread, two fits at once on the 2-core build machine).",
        "",
        f"Command: `{record['command']}` ({record['date']}; wall time of the whole run "
        f"{record.get('wall_seconds', float('nan')) / 60:.1f} min).",
        "",
        "| clip (mask) | iterations | psnr_hole | ssim | ewarp | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    masks = {c["clip"]: c["mask"] for c in record["clips"]}
    for row in summary(record):
        cells = [
            f"{row['psnr_hole'][0]:.2f} ± {row['psnr_hole'][1]:.2f}",
            f"{row['ssim'][0]:.4f} ± {row['ssim'][1]:.4f}",
            f"{row['ewarp'][0] * 1e3:.3f} ± {row['ewarp'][1] * 1e3:.3f}",
            f"{row['seconds'][0]:.0f}",
        ]
        lines.append(
            f"| {row['clip']} ({masks[row['clip']]}) | {row['iterations']} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "Baselines (no learning, deterministic):", ""]
    lines += ["| clip | method | psnr_hole | ssim | ewarp |", "|---|---|---:|---:|---:|"]
    for clip, methods in record["baselines"].items():
        for method, row in methods.items():
            lines.append(
                f"| {clip} | {method} | {row['psnr_hole']:.2f} | {row['ssim']:.4f} | "
                f"{row['ewarp'] * 1e3:.3f} |"
            )
    lines += ["", *trend(record), ""]
    return "\n".join(lines)


def trend(record: dict) -> list[str]:
    """Whether the mean curve still rises at the end, and where it would reach propagate."""
    lines = ["Trend (an extrapolation, not a measurement, beyond the last checkpoint):", ""]
    rows = summary(record)
    for clip, methods in record["baselines"].items():
        mine = [
            {"iterations": r["iterations"], "psnr_hole": r["psnr_hole"][0]}
            for r in rows
            if r["clip"] == clip
        ]
        if len(mine) < 2:
            continue
        gain = mine[-1]["psnr_hole"] - mine[-2]["psnr_hole"]
        target = methods["propagate"]["psnr_hole"]
        reach = crossing(mine, target)
        where = (
            "never at this slope"
            if reach is None
            else f"at about {reach:,.0f} iterations if the slope of the last two checkpoints held"
        )
        lines.append(
            f"- {clip}: {gain:+.2f} dB from {mine[-2]['iterations']} to {mine[-1]['iterations']} "
            f"iterations; propagate ({target:.2f} dB) is "
            + ("already passed" if mine[-1]["psnr_hole"] >= target else f"reached {where}")
            + "."
        )
    return lines


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clips = [c["clip"] for c in record["clips"] if c["clip"] in record["baselines"]]
    fig, axes = plt.subplots(1, len(clips), figsize=(5 * len(clips), 4), squeeze=False)
    rows = summary(record)
    for ax, clip in zip(axes[0], clips):
        mine = [r for r in rows if r["clip"] == clip]
        for fit in (f for f in record["fits"] if f["clip"] == clip):
            its = [p["iterations"] for p in fit["points"]]
            ax.plot(its, [p["psnr_hole"] for p in fit["points"]], ".", alpha=0.5, color="C0")
        its = [r["iterations"] for r in mine]
        means = np.array([r["psnr_hole"][0] for r in mine])
        spread = np.array([r["psnr_hole"][1] for r in mine])
        ax.plot(its, means, "-", color="C0", label="DIP-Vid-Flow (mean of seeds)")
        ax.fill_between(its, means - spread, means + spread, color="C0", alpha=0.2)
        for colour, method in (("C1", "propagate"), ("C2", "telea")):
            value = record["baselines"][clip][method]["psnr_hole"]
            ax.axhline(value, color=colour, linestyle="--", label=method)
        ax.set_xscale("log")
        ax.set_xlabel("iterations")
        ax.set_ylabel("hole PSNR (dB)")
        ax.set_title(clip, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: list[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options, overrides = parse(argv)
    base = compose_config(overrides)
    clips = [OmegaConf.to_container(base.benchmark.clips[i]) for i in options["clips"]]
    record = {
        "command": " ".join(["python experiments/iccv19_iterations.py", *argv]),
        "date": time.strftime("%Y-%m-%d"),
        "options": options,
        "frames": int(base.benchmark.frames),
        "resolution": list(base.resolution),
        "clips": clips,
        "baselines": {},
        "fits": [],
    }
    start = time.perf_counter()
    for clip in clips:
        record["baselines"][clip["clip"]] = baselines(overrides, clip)
    tasks = [
        {
            "clip": clip["clip"],
            "mask": clip["mask"],
            "seed": seed,
            "checkpoints": options["checkpoints"],
            "config": fit_config(overrides, seed, options["iterations"]),
        }
        for seed in options["seeds"]
        for clip in clips
    ]
    with ProcessPoolExecutor(options["jobs"], mp_context=get_context("spawn")) as pool:
        for done in as_completed([pool.submit(one_fit, task) for task in tasks]):
            fit = done.result()
            log.info("%s seed %s: %.0f s", fit["clip"], fit["seed"], fit["seconds"])
            record["fits"].append(fit)
            record["fits"].sort(key=lambda f: (f["clip"], f["seed"]))
            record["wall_seconds"] = time.perf_counter() - start
            write_atomic(RESULTS.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
            write_atomic(RESULTS.with_suffix(".md"), markdown(record))
    plot(record, RESULTS.with_suffix(".png"))
    log.info("wrote %s.{md,json,png}", RESULTS)
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
