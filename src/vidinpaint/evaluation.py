"""Scores of completed clips, the same for every method, in training and in vidinpaint-eval."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidinpaint import dashboards, flow, metrics
from vidinpaint.video_io import read_video


def composite(pred: Tensor, video: Tensor, mask: Tensor) -> Tensor:
    """Known pixels of ``video`` with ``pred`` in the holes (1 = hole), clamped to [0,1]."""
    return pred.clamp(0, 1) * mask + video * (1 - mask)


@torch.no_grad()
def score_clips(
    pred: Tensor,
    video: Tensor,
    mask: Tensor,
    flow_method: str | None = None,
    raft_weights: str | None = None,
) -> dict[str, Tensor]:
    """AAAI'19 / ICCV'19 metrics of completed clips.

    Args: pred, video ``B,T,3,H,W`` in [0,1]; mask ``B,T,1,H,W`` (1 = hole).
    Returns: ``l1_hole`` ([0,255], on the raw prediction as in Table 2), ``psnr`` and ``ssim`` on
    the composited frames, and ``ewarp`` (flow of the target video) when ``flow_method`` is set.
    """
    pred, video, mask = pred.float(), video.float(), mask.float()
    done = composite(pred, video, mask)
    scores = {
        "l1_hole": metrics.l1_hole(pred.clamp(0, 1), video, mask),
        "psnr": metrics.psnr(done, video),
        "ssim": metrics.ssim(done, video),
    }
    if flow_method and video.shape[1] > 1:
        errors = clip_ewarps(done, video, flow_method, raft_weights)
        scores["ewarp"] = torch.tensor(sum(errors) / len(errors))
    return scores


@torch.no_grad()
def clip_ewarps(
    done: Tensor, video: Tensor, flow_method: str = "dis", raft_weights: str | None = None
) -> list[float]:
    """Flow warping error of each composited clip ``done`` (``B,T,3,H,W``, T > 1) along the
    flow of its target clip in ``video`` (``flow_method``: dis or raft)."""
    errors = []
    for clip_done, clip_target in zip(done.float().cpu(), video.float().cpu(), strict=True):
        fw = flow.estimate_flow(clip_target[:-1], clip_target[1:], flow_method, raft_weights)
        bw = flow.estimate_flow(clip_target[1:], clip_target[:-1], flow_method, raft_weights)
        errors.append(metrics.ewarp(clip_done, fw, flow.forward_backward_valid(fw, bw)))
    return errors


@torch.no_grad()
def clip_rows(
    pred: Tensor,
    video: Tensor,
    mask: Tensor,
    names: list[str],
    method: str,
    seconds: float,
    ewarps: list[float] | None = None,
) -> list[dict[str, Any]]:
    """One dashboard row per clip (``dashboards.clip_row``): hole PSNR and SSIM of the
    composited clip, its ``ewarps`` entry (None: not scored), the ``seconds`` it took and a
    thumbnail. pred, video ``B,T,3,H,W`` in [0,1]; mask ``B,T,1,H,W``; names: B clip names."""
    rows = []
    for index, name in enumerate(names):
        target, holes = video[index].float().cpu(), mask[index].float().cpu()
        done = composite(pred[index].float().cpu(), target, holes)
        scores = {
            "psnr_hole": float(metrics.psnr_masked(done, target, holes)),
            "ssim": float(metrics.ssim(done[None], target[None])),
        }
        if ewarps is not None:
            scores["ewarp"] = ewarps[index]
        thumb = dashboards.thumbnail(target, holes, done, target)
        rows.append(dashboards.clip_row(name, method, scores, seconds, thumb))
    return rows


def clip_name(path: str, start: int) -> str:
    """``<file name>@<first frame>``: a dataset clip's name in tables."""
    return f"{Path(path).name}@{int(start)}"


def hole_psnr_of_video(output: str | os.PathLike, truth: str | os.PathLike, holes: Tensor) -> float:
    """PSNR (dB) over the holes of the video file ``output`` against the video ``truth``.

    Both are decoded (uint8 ``T,H,W,3`` -> [0, 1]) and must have the same frames and size;
    holes: ``T,1,H,W`` at that size, 1 = hole. For a mask composed over a real clip, ``truth``
    is the clip itself (what the mask covers is known).
    """
    result, _ = read_video(output)
    target, _ = read_video(truth)
    if target.shape != result.shape:
        raise ValueError(
            f"ground truth {truth} is {tuple(target.shape[:3])} (frames, H, W), "
            f"the output {tuple(result.shape[:3])}"
        )
    pred, target = (f.permute(0, 3, 1, 2).float() / 255 for f in (result, target))
    return float(metrics.psnr_masked(pred, target, holes.float()))
