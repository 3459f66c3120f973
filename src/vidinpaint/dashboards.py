"""Per-clip results as a wandb table next to a run's scalar metrics.

One row per (clip, method): ``CLIP_COLUMNS``, the thumbnail being the middle frame of the clip
as a panel (the input with its holes grey, then the output and the target when there is one).
Logged by ``vidinpaint-eval`` (with ``logger=wandb``) and by experiments/iccv19_ablation.py,
offline unless ``WANDB_MODE=online`` or an API key is set (``runs.wandb_offline``); an offline
run keeps the table as JSON under ``wandb/offline-run-*/files/media/table/``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import wandb
from torch import Tensor

CLIP_COLUMNS = ("clip", "method", "psnr_hole", "ssim", "ewarp", "seconds", "thumbnail")
HOLE_GREY = 0.5


def thumbnail(video: Tensor, mask: Tensor, *outputs: Tensor) -> np.ndarray:
    """Middle frame panel, uint8 (H, W * (1 + len(outputs)), 3): ``video`` with the holes grey,
    then each of ``outputs``. video, outputs: (T, 3, H, W) in [0, 1]; mask: (T, 1, H, W)."""
    middle = video.shape[0] // 2
    shown = torch.where(
        mask[middle].bool(), torch.full_like(video[middle], HOLE_GREY), video[middle]
    )
    frames = [shown, *(out[middle] for out in outputs)]
    panel = torch.cat([f.detach().float().cpu().clamp(0, 1) for f in frames], dim=-1)
    return (panel * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def clip_row(
    clip: str, method: str, scores: dict[str, float], seconds: float, thumb: np.ndarray
) -> dict[str, Any]:
    """One table row; scores missing from ``scores`` (e.g. ``ewarp`` of one frame) are NaN."""
    values = {k: float(scores.get(k, float("nan"))) for k in ("psnr_hole", "ssim", "ewarp")}
    return {"clip": clip, "method": method, **values, "seconds": float(seconds), "thumbnail": thumb}


def clip_table(rows: list[dict[str, Any]]) -> wandb.Table:
    """A ``wandb.Table`` of ``CLIP_COLUMNS`` from ``clip_row`` dicts."""
    table = wandb.Table(columns=list(CLIP_COLUMNS))
    for row in rows:
        cells = [row[c] for c in CLIP_COLUMNS[:-1]]
        table.add_data(*cells, wandb.Image(row["thumbnail"], caption=row["method"]))
    return table
