"""ICCV'19 ablation on composed clips: DIP, DIP-Vid, DIP-Vid-3DCN, DIP-Vid-Flow.

Real clips get a known box mask (static or moving), so the covered background is the ground
truth. Every method of ``conf/sweep/iccv19_ablation.yaml`` inpaints every clip under every
schedule of ``benchmark.schedules``; scores: PSNR in the hole, SSIM of the frames, PSNR of the
raw network output on the known region (``psnr_known``), flow warping error (``ewarp``, flow
of the ground truth), wall time. Settings: ``conf/experiment/iccv19/ablation.yaml``; any
Hydra-style override of ``conf/inpaint.yaml`` is accepted:

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
from pathlib import Path

import hydra
import numpy as np
import torch
import wandb
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

import vidinpaint.runs  # noqa: F401  (registers the config resolvers)
from vidinpaint import dashboards, flow, metrics, runs
from vidinpaint.inpaint import resize_frames
from vidinpaint.video_io import read_video

log = logging.getLogger("iccv19_ablation")
ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
COLUMNS = ("psnr_hole", "ssim", "psnr_known", "ewarp", "iterations", "seconds")


def compose_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("inpaint", overrides=["experiment=iccv19/ablation", *overrides])


def sweep_methods() -> list[str]:
    sweep = OmegaConf.load(CONF_DIR / "sweep" / "iccv19_ablation.yaml")
    return [m.strip() for m in str(sweep.hydra.sweeper.params.method).split(",")]


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


def run_one(
    cfg: DictConfig, video: torch.Tensor, mask: torch.Tensor
) -> tuple[dict[str, float], torch.Tensor]:
    """Scores of one fit and its composited output (T,3,H,W)."""
    system = hydra.utils.instantiate(cfg.model)
    start = time.perf_counter()
    raw = system.fit_video(video, mask, progress=False)
    seconds = time.perf_counter() - start
    row = score(raw, video, mask)
    row.update(iterations=len(system.recon_history), seconds=seconds)
    return row, raw.clamp(0, 1) * mask + video * (1 - mask)


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
        "DIS, lower = steadier); `seconds`: wall time of the fit on the 2-core build",
        "machine's CPU, shared with other jobs (compare within a table only).",
        "",
        f"Clips: {', '.join(bench['clips'])}; first {bench['frames']} frames at "
        f"{record['resolution'][0]}x{record['resolution'][1]}; mask {bench['mask']} "
        f"({bench['box']} of H and W). Perceptual loss off (`model.perceptual_weight=0`: no "
        "VGG16 weights on the build machine); `model.pad_mode=replicate` (64-pixel frames at "
        "the deepest level).",
        "",
        "Command (from the repository root):",
        "",
        "```",
        record["command"],
        "```",
        "",
    ]
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
                f"{row['psnr_known']:.2f}",
                f"{row['ewarp'] * 1e3:.3f}",
                str(row["iterations"]),
                f"{row['seconds']:.0f}",
            ]
            lines.append(f"| {row['clip']} | {row['method']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += quality_cost(record)
    return "\n".join(lines)


def quality_cost(record: dict) -> list[str]:
    """Hole PSNR of the first schedule against each longer one, per clip and method."""
    names = list(record["schedules"])
    if len(names) < 2:
        return []
    first = names[0]
    by_key = {(r["schedule"], r["clip"], r["method"]): r for r in record["rows"]}
    lines = [
        f"## quality cost of `{first}`",
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
    clips = {
        c: load_clip(Path(bench["samples_dir"]) / c, bench["frames"], size) for c in bench["clips"]
    }
    for name in bench["schedules"]:
        extra = bench["variants"].get(name, [f"schedule={name}"])
        for method in sweep_methods():
            cfg = compose_config([*overrides, f"method={method}", *extra])
            record["schedules"][name] = OmegaConf.to_container(cfg.schedule)
            for clip, video in clips.items():
                mask = box_mask(video.shape[0], *size, bench["mask"], bench["box"])
                log.info("%s / %s / %s", name, method, clip)
                scores, done = run_one(cfg, video, mask)
                row = {"schedule": name, "method": method, "clip": clip, **scores}
                thumbnails.append(dashboards.thumbnail(video, mask, done, video))
                log.info("%s", row)
                record["rows"].append(row)
                write_results(results, record)  # after every row: a stopped run keeps its rows
    log.info("wrote %s.{md,json}", results)
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
