"""Evaluation metrics on videos (B, T, C, H, W) in [0, 1] with hole masks (1 = hole)."""

from __future__ import annotations

import logging
import math

import kornia.metrics
import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio

from vidinpaint.flow import backward_warp

log = logging.getLogger(__name__)


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must match: got {tuple(pred.shape)} vs {tuple(target.shape)}"
        )


def _check_region(pred: Tensor, region: Tensor, name: str) -> None:
    expected = (*pred.shape[:-3], 1, *pred.shape[-2:])
    if pred.ndim < 3 or tuple(region.shape) != expected:
        raise ValueError(f"{name}: expected {expected}, got {tuple(region.shape)}")


def _flatten_frames(video: Tensor) -> Tensor:
    if video.ndim != 5:
        raise ValueError(f"expected (B,T,C,H,W) video, got {tuple(video.shape)}")
    return video.flatten(0, 1).float()


def l1_hole(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """AAAI'19 Table 2 l1 in [0, 255]: mean absolute error over hole pixels and channels.

    pred, target: (B, T, C, H, W) in [0, 1]; mask: (B, T, 1, H, W), 1 = hole.
    l1 = 255 * sum |pred - target| * M / (C * sum M), both sums over the WHOLE batch (so clips
    with larger holes weigh more). NaN when the batch has no hole pixel.
    """
    _check_pair(pred, target)
    _check_region(pred, mask, "mask")
    area = mask.float().sum() * pred.shape[-3]
    if area == 0:
        return pred.new_tensor(float("nan"))
    return 255.0 * ((pred.float() - target.float()).abs() * mask).sum() / area


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB (data range 1) per frame, averaged over all frames of the batch.

    pred, target: (B, T, C, H, W) in [0, 1]. A frame identical to its target has infinite PSNR,
    so the result is +inf when any frame is identical (torchmetrics semantics, kept).
    """
    _check_pair(pred, target)
    return peak_signal_noise_ratio(
        _flatten_frames(pred), _flatten_frames(target), data_range=1.0, dim=(1, 2, 3)
    )


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM (11x11 Gaussian, sigma 1.5, data range 1, reflected borders), mean over frames.

    pred, target: (B, T, C, H, W) in [0, 1]; frames are flattened into the batch. H, W >= 11.
    kornia's SSIM map averaged: torchmetrics' SSIM to 1e-7, several times faster on the CPU
    (tests/test_kornia_equivalence.py).
    """
    _check_pair(pred, target)
    ssim_map = kornia.metrics.ssim(_flatten_frames(pred), _flatten_frames(target), 11, eps=0.0)
    return ssim_map.mean()


def psnr_masked(pred: Tensor, target: Tensor, region: Tensor) -> Tensor:
    """PSNR in dB (data range 1) over the pixels where region == 1 only.

    pred, target: (..., C, H, W) in [0, 1]; region: (..., 1, H, W). MSE = sum over region pixels
    and channels of (pred - target)^2 / (C * region area), pooled over the whole input; PSNR =
    10 log10(1 / MSE). Use region = 1 - mask for `psnr_known`, mask for the hole PSNR. +inf when
    identical on the region, NaN when the region is empty.
    """
    _check_pair(pred, target)
    _check_region(pred, region, "region")
    area = region.float().sum() * pred.shape[-3]
    if area == 0:
        return pred.new_tensor(float("nan"))
    mse = ((pred.float() - target.float()).square() * region).sum() / area
    return 10 * torch.log10(1 / mse)


def ewarp(output: Tensor, flow_fw: Tensor, valid: Tensor) -> float:
    """Flow warping error of a video (Lai et al., ECCV 2018), in [0, 1]^2 units.

    output: (T, 3, H, W) in [0, 1]; flow_fw: (T-1, 2, H, W) pixel flow from frame t to t+1 of the
    TARGET (ground-truth) video; valid: (T-1, 1, H, W), 1 = non-occluded (e.g.
    flow.forward_backward_valid). With W_t = output_{t+1} warped back to t (flow.backward_warp)
    and M_t = valid_t * inside_t:
        E_t = sum_p M_t(p) ||output_t(p) - W_t(p)||^2 / (C * sum_p M_t(p)),
        ewarp = mean over the frames with sum M_t > 0 of E_t.
    NaN (with a warning) when no pixel is valid.
    """
    if output.ndim != 4 or output.shape[0] < 2:
        raise ValueError(f"output: expected (T>=2,C,H,W), got {tuple(output.shape)}")
    num_frames, channels, height, width = output.shape
    if tuple(flow_fw.shape) != (num_frames - 1, 2, height, width):
        raise ValueError(
            f"flow_fw: expected {(num_frames - 1, 2, height, width)}, got {tuple(flow_fw.shape)}"
        )
    if tuple(valid.shape) != (num_frames - 1, 1, height, width):
        raise ValueError(
            f"valid: expected {(num_frames - 1, 1, height, width)}, got {tuple(valid.shape)}"
        )
    output = output.float()
    warped, inside = backward_warp(output[1:], flow_fw.to(output))
    weight = valid.to(output) * inside
    area = weight.sum(dim=(1, 2, 3)) * channels
    error = ((output[:-1] - warped).square() * weight).sum(dim=(1, 2, 3))
    usable = area > 0
    if not usable.any():
        log.warning("ewarp: no valid (non-occluded, in-frame) pixel in any frame pair; NaN")
        return math.nan
    return float((error[usable] / area[usable]).mean())


def frame_difference(video: Tensor) -> Tensor:
    """|frame_{t+1} - frame_t| averaged over channels (AAAI'19 Fig. 4 visualisation).

    video: (B, T, C, H, W) -> (B, T-1, 1, H, W).
    """
    if video.ndim != 5:
        raise ValueError(f"expected (B,T,C,H,W) video, got {tuple(video.shape)}")
    return (video[:, 1:] - video[:, :-1]).abs().mean(dim=2, keepdim=True)
