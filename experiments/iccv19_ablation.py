"""ICCV'19 ablation on composed clips: the classic baselines (telea, propagate) and their
variants, DIP, DIP-Vid, DIP-Vid-3DCN and DIP-Vid-Flow.

Real clips get a known mask (a box, static or moving, or the object masks of another video),
so the covered content is the ground truth. Under every schedule of ``benchmark.schedules``
the methods of ``benchmark.methods`` (default: the baselines and every method of
``conf/sweep/iccv19_ablation.yaml``) inpaint every clip; scores: PSNR in the hole, SSIM of
the frames, PSNR of the raw output on the known region (``psnr_known``), flow warping error
(``ewarp``, flow of the ground truth), wall time. Settings:
``conf/experiment/iccv19/ablation.yaml``; any Hydra-style override of ``conf/inpaint.yaml``
is accepted:

    python experiments/iccv19_ablation.py
    python experiments/iccv19_ablation.py benchmark.frames=12 resolution=[128,256]

Writes ``<benchmark.results>.md`` (tables + the exact command) and ``.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from inspect import signature
from pathlib import Path

import hydra
import numpy as np
import torch
import wandb
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

import vidinpaint.runs  # noqa: F401  (registers the config resolvers)
from vidinpaint import dashboards, flow, metrics, runs
from vidinpaint.inference import resize_frames, resize_holes
from vidinpaint.models import CLASSIC, names
from vidinpaint.models.classic import ClassicSystem
from vidinpaint.models.internal import SIZE_MULTIPLE, InternalLearningSystem
from vidinpaint.nets.skipnet import make_noise
from vidinpaint.video_io import read_masks, read_video

log = logging.getLogger("iccv19_ablation")
ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
COLUMNS = ("psnr_hole", "ssim", "psnr_known", "ewarp", "iterations", "seconds")


def compose_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("inpaint", overrides=["experiment=iccv19/ablation", *overrides])


BASELINES = ["telea", "propagate"]


def sweep_methods() -> list[str]:
    sweep = OmegaConf.load(CONF_DIR / "sweep" / "iccv19_ablation.yaml")
    return [m.strip() for m in str(sweep.hydra.sweeper.params.method).split(",")]


def clip_mask(
    kind: str,
    samples_dir: Path,
    num_frames: int,
    size: tuple[int, int],
    box: float,
    coverage: float | str = "any",
) -> torch.Tensor:
    """(T,1,H,W) float: ``box_static``/``box_moving`` or a mask folder/video under
    ``samples_dir`` (its first ``num_frames`` masks, resized to ``size`` with ``coverage``:
    ``resize_holes``, the command's ``mask_coverage``)."""
    if kind in ("box_static", "box_moving"):
        return box_mask(num_frames, *size, kind, box)
    holes = read_masks(samples_dir / kind)
    if holes.shape[0] < num_frames:
        raise ValueError(f"{kind} has {holes.shape[0]} masks, benchmark.frames={num_frames}")
    return resize_holes(holes[:num_frames], size, coverage)


def box_mask(num_frames: int, height: int, width: int, kind: str, box: float) -> torch.Tensor:
    """(T,1,H,W) float: a box of ``box`` x (H, W), centred (static) or moving left to right."""
    if kind not in ("box_static", "box_moving"):
        raise ValueError(f"benchmark.mask must be box_static or box_moving, got {kind!r}")
    bh, bw = round(box * height), round(box * width)
    top = (height - bh) // 2
    mask = torch.zeros(num_frames, 1, height, width)
    for t in range(num_frames):
        if kind == "box_static":
            left = (width - bw) // 2
        else:
            left = round(t * (width - bw) / max(num_frames - 1, 1))
        mask[t, :, top : top + bh, left : left + bw] = 1
    return mask


def load_clip(path: Path, num_frames: int, size: tuple[int, int]) -> torch.Tensor:
    """First ``num_frames`` frames of a video at ``size``: (T,3,H,W) in [0,1]."""
    frames, _ = read_video(path)
    if frames.shape[0] < num_frames:
        raise ValueError(f"{path} has {frames.shape[0]} frames, benchmark.frames={num_frames}")
    return resize_frames(frames[:num_frames], size)


def score(raw: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Scores of one clip; ``raw`` is the network output before pasting the known pixels."""
    done = raw.clamp(0, 1) * mask + target * (1 - mask)
    fw = flow.estimate_flow(target[:-1], target[1:])
    bw = flow.estimate_flow(target[1:], target[:-1])
    return {
        "psnr_hole": float(metrics.psnr_masked(done, target, mask)),
        "ssim": float(metrics.ssim(done[None], target[None])),
        "psnr_known": float(metrics.psnr_masked(raw.clamp(0, 1), target, 1 - mask)),
        "ewarp": metrics.ewarp(done, fw, flow.forward_backward_valid(fw, bw)),
    }


class FitRecorder:
    """An ``on_state`` callback keeping the network of every fit state handed to it and the
    wall seconds since ``start`` (in memory: the curve is of the very fit that is timed)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.states: list[tuple[float, dict]] = []

    def __call__(self, state: dict) -> None:
        # on the CPU the state's tensors are the live weights
        net = {k: v.clone() for k, v in state["net"].items()}
        self.states.append((time.perf_counter() - self.start, net))


def checkpoint_psnrs(
    system: InternalLearningSystem, video: torch.Tensor, mask: torch.Tensor, states: list
) -> list[float]:
    """Hole PSNR of the output each recorded network generates (as ``fit_video``'s last
    step does: one chunk, the same noise)."""
    height, width = video.shape[-2:]
    pad = (0, -width % SIZE_MULTIPLE, 0, -height % SIZE_MULTIPLE)
    noise = make_noise(
        video.shape[0], height + pad[3], width + pad[1], seed=system.fit_options.noise_seed
    )
    batch_frames = min(system.fit_options.batch_frames, video.shape[0])
    psnrs = []
    for _, net in states:
        system.net.load_state_dict(net)
        raw = system.generate(noise, batch_frames, torch.device("cpu"))
        done = raw[..., :height, :width].clamp(0, 1) * mask + video * (1 - mask)
        psnrs.append(float(metrics.psnr_masked(done, video, mask)))
    return psnrs


def run_one(
    cfg: DictConfig, video: torch.Tensor, mask: torch.Tensor, curve_every: int = 0
) -> tuple[dict[str, float], torch.Tensor]:
    """Scores of one fit and its composited output (T,3,H,W). ``curve_every`` > 0: also
    ``curve``, [seconds, psnr_hole] of the fit's network every that many iterations (not
    for DIP, whose networks are per frame; baselines: their one point)."""
    model = cfg.model
    if model.method in names(CLASSIC):  # the experiment's model.* settings are for the others
        model = OmegaConf.masked_copy(model, ["_target_", *signature(ClassicSystem).parameters])
    system = hydra.utils.instantiate(model)
    recorder = None
    if curve_every and isinstance(system, InternalLearningSystem) and system.method != "dip":
        recorder = FitRecorder()
    start = time.perf_counter()
    if recorder is None:
        raw = system.fit_video(video, mask, progress=False)
    else:
        raw = system.fit_video(
            video, mask, progress=False, on_state=recorder, state_every=curve_every
        )
    seconds = time.perf_counter() - start
    row = score(raw, video, mask)
    row.update(iterations=len(system.recon_history), seconds=seconds)
    if recorder is not None:
        psnrs = checkpoint_psnrs(system, video, mask, recorder.states)
        row["curve"] = [[t, p] for (t, _), p in zip(recorder.states, psnrs)]
    elif curve_every:
        row["curve"] = [[seconds, row["psnr_hole"]]]
    return row, raw.clamp(0, 1) * mask + video * (1 - mask)


def plot_quality_per_minute(record: dict, path: Path) -> None:
    """Hole PSNR against wall seconds of every (schedule, method) with a ``curve``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    curves = [row for row in record["rows"] if "curve" in row]
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(curves), 1)))
    for row, colour in zip(curves, colours):
        seconds, psnr = zip(*row["curve"])
        style = "o" if len(seconds) == 1 else ".-"
        label = f"{row['method']} ({row['schedule']})"
        ax.plot(seconds, psnr, style, color=colour, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("wall seconds of the fit (build machine CPU, one thread)")
    ax.set_ylabel("hole PSNR (dB)")
    ax.set_title(f"quality per minute: {record['benchmark']['curve_clip']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def markdown(record: dict) -> str:
    bench = record["benchmark"]
    lines = [
        "# ICCV'19 internal learning: ablation on composed clips",
        "",
        "Real clips with a known box mask over them (the covered background is the ground",
        "truth); each method trains on the masked clip only. `psnr_hole`: PSNR (dB) over the",
        "hole pixels of the composited output; `ssim`: SSIM of the composited frames;",
        "`psnr_known`: PSNR of the raw network output on the known pixels (how well the video",
        "is fitted); `ewarp`: flow warping error of the output (x1e3, flow of the ground truth,",
        "DIS, lower = steadier); `seconds`: wall time of the fit on the build machine's",
        "CPU (compare within a table only).",
        "",
        "Clips (mask): "
        + "; ".join(f"{c['clip']} ({c['mask']})" for c in bench["clips"])
        + f"; first {bench['frames']} frames at "
        f"{record['resolution'][0]}x{record['resolution'][1]}; boxes are {bench['box']} of H "
        "and W; a mask folder is another video's object masks laid over the clip. "
        "Perceptual loss off (`model.loss.perceptual=0`, the default: no "
        "VGG16 weights on the build machine); `model.pad_mode=replicate` (64-pixel frames at "
        "the deepest level).",
        "",
        "Methods: `telea` (OpenCV per frame) and `propagate` (flow-guided propagation, 4",
        "passes, one sweep each way) are the classic baselines, no learning (`psnr_known` -:",
        "they leave known",
        "pixels as they are); dip, dip_vid, dip_vid_3dcn, dip_vid_flow are the paper's methods",
        "under the schedule of their table.",
        "Each variant's overrides are in its heading (conf/experiment/iccv19/ablation.yaml",
        f"explains them). Quality per minute on {bench['curve_clip']}:",
        f"`{Path(bench['results']).name}_quality.png`.",
        "",
        "Command (from the repository root):",
        "",
        "```",
        record["command"],
        "```",
        "",
        *record.get("notes", []),
    ]
    size = "x".join(str(s) for s in record["resolution"])
    for name in record["schedules"]:
        schedule = record["schedules"][name]
        overrides = " ".join(bench["variants"].get(name, [f"schedule={name}"]))
        lines += [
            f"## schedule `{name}` ({overrides})",
            "",
            f"il_epochs={schedule['il_epochs']}, il_iters_per_batch="
            f"{schedule['il_iters_per_batch']}, il_batches_per_epoch="
            f"{schedule['il_batches_per_epoch']}, dip_iters={schedule['dip_iters']}, "
            f"dip_check_every={schedule['dip_check_every']}",
            "",
            "| clip | method | " + " | ".join(COLUMNS) + " |",
            "|---|---|" + "---:|" * len(COLUMNS),
        ]
        for row in record["rows"]:
            if row["schedule"] != name:
                continue
            cells = [
                f"{row['psnr_hole']:.2f}",
                f"{row['ssim']:.4f}",
                "-" if row["method"] in names(CLASSIC) else f"{row['psnr_known']:.2f}",
                f"{row['ewarp'] * 1e3:.3f}",
                str(row["iterations"]),
                f"{row['seconds']:.0f}",
            ]
            clip = f"{row['clip']} ({size})"
            lines.append(f"| {clip} | {row['method']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += quality_cost(record)
    return "\n".join(lines)


def quality_cost(record: dict) -> list[str]:
    """Hole PSNR of a clip and method under each schedule (the first schedule's rows)."""
    names = list(record["schedules"])
    if len(names) < 2:
        return []
    first = names[0]
    by_key = {(r["schedule"], r["clip"], r["method"]): r for r in record["rows"]}
    lines = [
        "## hole PSNR per schedule",
        "",
        "| clip | method | " + " | ".join(f"psnr_hole {n}" for n in names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for schedule, clip, method in by_key:
        if schedule != first:
            continue
        cells = [by_key.get((n, clip, method), {}).get("psnr_hole") for n in names]
        text = ["-" if c is None else f"{c:.2f}" for c in cells]
        lines.append(f"| {clip} | {method} | " + " | ".join(text) + " |")
    return [*lines, ""]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(overrides: list[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    base = compose_config(overrides)
    bench = OmegaConf.to_container(base.benchmark, resolve=True)
    size = tuple(int(s) for s in base.resolution)
    record = {
        "command": " ".join(["python experiments/iccv19_ablation.py", *overrides]),
        "benchmark": bench,
        "resolution": list(size),
        "schedules": {},
        "rows": [],
    }
    thumbnails: list[np.ndarray] = []  # one per row, for the dashboard
    results = Path(bench["results"])
    results = results if results.is_absolute() else ROOT / results
    samples = Path(bench["samples_dir"])
    clips = {
        c["clip"]: (
            load_clip(samples / c["clip"], bench["frames"], size),
            clip_mask(c["mask"], samples, bench["frames"], size, bench["box"], base.mask_coverage),
        )
        for c in bench["clips"]
    }
    for name in bench["schedules"]:
        extra = bench["variants"].get(name, [f"schedule={name}"])
        for method in bench["methods"].get(name, [*BASELINES, *sweep_methods()]):
            cfg = compose_config([*overrides, f"method={method}", *extra])
            record["schedules"][name] = OmegaConf.to_container(cfg.schedule)
            for clip, (video, mask) in clips.items():
                log.info("%s / %s / %s", name, method, clip)
                curve_every = bench["curve_every"] if clip == bench["curve_clip"] else 0
                scores, done = run_one(cfg, video, mask, curve_every)
                row = {"schedule": name, "method": method, "clip": clip, **scores}
                thumbnails.append(dashboards.thumbnail(video, mask, done, video))
                log.info("%s", row)
                record["rows"].append(row)
                write_results(results, record)  # after every row: a stopped run keeps its rows
    log.info("wrote %s.{md,json}", results)
    if bench["curve_clip"]:
        plot_quality_per_minute(record, results.with_name(f"{results.name}_quality.png"))
    if bench.get("wandb_dir"):
        log_dashboard(record, thumbnails, Path(bench["wandb_dir"]))
    return record


def log_dashboard(record: dict, thumbnails: list[np.ndarray], wandb_dir: Path) -> None:
    """One wandb run (offline unless ``WANDB_MODE=online`` or an API key is set) with, per
    schedule, the table ``<schedule>/clips`` of every row (dashboards.py; ``thumbnails[i]``
    for ``record["rows"][i]``) and each method's mean ``<schedule>/<method>/<score>``."""
    wandb_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project="vidinpaint",
        name="iccv19_ablation",
        group="iccv19_ablation",
        dir=str(wandb_dir),
        mode="offline" if runs.wandb_offline() else "online",
        config={"command": record["command"], "benchmark": record["benchmark"]},
    )
    for schedule in record["schedules"]:
        picked = [(r, t) for r, t in zip(record["rows"], thumbnails) if r["schedule"] == schedule]
        rows = [dashboards.clip_row(r["clip"], r["method"], r, r["seconds"], t) for r, t in picked]
        means = {}
        for method in dict.fromkeys(row["method"] for row in rows):
            mine = [row for row in rows if row["method"] == method]
            for key in ("psnr_hole", "ssim", "ewarp", "seconds"):
                means[f"{schedule}/{method}/{key}"] = sum(row[key] for row in mine) / len(mine)
        run.log({**means, f"{schedule}/clips": dashboards.clip_table(rows)})
    run.finish()


def write_results(results: Path, record: dict) -> None:
    write_atomic(results.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    write_atomic(results.with_suffix(".md"), markdown(record))


if __name__ == "__main__":
    main(sys.argv[1:])
