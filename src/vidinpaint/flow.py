"""Optical flow: estimation (OpenCV DIS or torchvision RAFT), backward warping, occlusion check.

Used by the flow warping error metric (`metrics.ewarp`) and the internal-learning losses.
Flows are (N, 2, H, W) float tensors in pixels, channel 0 = x (columns), channel 1 = y (rows);
the flow from `src` to `dst` maps pixel p of `src` to p + flow(p) in `dst`, so
`backward_warp(dst, flow)` brings `dst` back onto `src`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidinpaint.atomic import atomic_path
from vidinpaint.errors import check_choice

log = logging.getLogger(__name__)

FB_THRESHOLD = math.sqrt(2.0 * math.log(2.0))
"""Forward-backward threshold in pixels (about 1.177).

The internal-learning code keeps a pixel where exp(-|fw(x) + bw(x + fw(x))|^2 / 2) > 0.5,
i.e. where the round-trip error is below sqrt(2 ln 2) px."""

FLOW_METHODS = ("dis", "raft", "raft_large", "raft_small")
RAFT_MIN_SIZE = 128


class MissingWeightsError(FileNotFoundError):
    """Pretrained weights (RAFT, VGG16) are not on disk; they are never downloaded."""


def _check_frames(name: str, frames: Tensor) -> None:
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"{name}: expected (N,3,H,W) frames, got {tuple(frames.shape)}")


def check_flow(name: str, flow: Tensor) -> None:
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"{name}: expected (N,2,H,W) flow, got {tuple(flow.shape)}")


def estimate_flow(
    src: Tensor, dst: Tensor, method: str = "dis", raft_weights: str | None = None
) -> Tensor:
    """Optical flow from `src` to `dst`.

    src, dst: (N, 3, H, W) float RGB in [0, 1]. Returns (N, 2, H, W) float32 pixel flow (x, y)
    on src's device. method: "dis" (OpenCV DIS, preset MEDIUM, on grayscale uint8; CPU) or
    "raft" / "raft_large" / "raft_small" (torchvision RAFT, 12 updates; weights ONLY from the
    local file `raft_weights`; "raft" accepts a raft_large or raft_small state dict; frames are
    replicate-padded to a multiple of 8 and at least 128 px, and the flow cropped back).
    """
    _check_frames("src", src)
    _check_frames("dst", dst)
    if src.shape != dst.shape:
        raise ValueError(f"src and dst must match: got {tuple(src.shape)} vs {tuple(dst.shape)}")
    check_choice("flow method", method, FLOW_METHODS)
    if method == "dis":
        return _dis_flow(src, dst)
    return _raft_flow(src, dst, method, raft_weights)


def _to_gray_uint8(frames: Tensor) -> list[np.ndarray]:
    rgb = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    rgb = rgb.permute(0, 2, 3, 1).cpu().numpy()
    return [cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY) for im in rgb]


def _dis_flow(src: Tensor, dst: Tensor) -> Tensor:
    return _dis_gray(_to_gray_uint8(src), _to_gray_uint8(dst)).to(src.device)


def _dis_gray(src: list[np.ndarray], dst: list[np.ndarray]) -> Tensor:
    """DIS flows (N, 2, H, W) between grayscale uint8 frames."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flows = [dis.calc(a, b, None) for a, b in zip(src, dst)]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).float()


@functools.lru_cache(maxsize=2)
def _load_raft(method: str, weights_path: str) -> torch.nn.Module:
    from torchvision.models.optical_flow import raft_large, raft_small

    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    candidates = {"raft_large": [raft_large], "raft_small": [raft_small]}.get(
        method, [raft_large, raft_small]
    )
    errors = []
    for build in candidates:
        model = build(weights=None, progress=False)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            errors.append(f"{build.__name__}: {str(err).splitlines()[0]}")
            continue
        return model.eval().requires_grad_(False)
    raise ValueError(f"RAFT weights {weights_path} match no model ({'; '.join(errors)})")


def _raft_flow(src: Tensor, dst: Tensor, method: str, raft_weights: str | None) -> Tensor:
    if raft_weights is None or not Path(raft_weights).is_file():
        raise MissingWeightsError(
            f"RAFT weights not found at {raft_weights!r}: download torchvision's "
            "raft_large_C_T_SKHT_V2-ff5fadd5.pth (or raft_small_C_T_V2-01064c6d.pth) on a machine "
            "with internet, copy it here and pass its path (raft_weights=PATH), or use method='dis'"
        )
    model = _load_raft(method, str(Path(raft_weights).resolve())).to(src.device)
    height, width = src.shape[-2:]
    # RAFT needs sizes divisible by 8 and at least 128 (its 4-level correlation pyramid)
    pad = (
        0,
        max(RAFT_MIN_SIZE - width, (-width) % 8),
        0,
        max(RAFT_MIN_SIZE - height, (-height) % 8),
    )

    def prepare(frames: Tensor) -> Tensor:
        return F.pad(frames.float() * 2 - 1, pad, mode="replicate")

    with torch.no_grad():
        flow = model(prepare(src), prepare(dst))[-1]
    return flow[..., :height, :width].float()


def _pixel_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys])[None]  # (1, 2, H, W)


def backward_warp(image: Tensor, flow: Tensor, align_corners: bool = True) -> tuple[Tensor, Tensor]:
    """Sample `image` at p + flow(p): out(p) = image(p + flow(p)), bilinear, zero padding.

    image: (N, C, H, W); flow: (N, 2, H, W) pixels (x, y). Returns (warped (N, C, H, W),
    inside (N, 1, H, W) float {0, 1}: 1 where the sample point lies within the frame, i.e. within
    the pixel centres [0, W-1] x [0, H-1], up to 1e-3 px). Pixel coordinates are converted to
    grid_sample's [-1, 1] range with the formula that matches `align_corners`, so both settings
    sample the same pixel centres; align_corners=True is the internal-learning code's convention.
    Differentiable w.r.t. image and flow (inside carries no gradient).
    """
    if image.ndim != 4:
        raise ValueError(f"image: expected (N,C,H,W), got {tuple(image.shape)}")
    check_flow("flow", flow)
    if flow.shape[0] != image.shape[0] or flow.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"flow {tuple(flow.shape)} does not match image {tuple(image.shape)} (N, H, W)"
        )
    height, width = image.shape[-2:]
    coords = _pixel_grid(height, width, flow.device, flow.dtype) + flow
    x, y = coords[:, 0], coords[:, 1]
    if align_corners:
        gx = 2 * x / max(width - 1, 1) - 1
        gy = 2 * y / max(height - 1, 1) - 1
    else:
        gx = (2 * x + 1) / width - 1
        gy = (2 * y + 1) / height - 1
    grid = torch.stack([gx, gy], dim=-1).to(image.dtype)
    # not kornia's remap: the same samples (tests/test_kornia_equivalence.py), 30% slower on CPU
    warped = F.grid_sample(
        image, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners
    )
    eps = 1e-3
    with torch.no_grad():
        inside = (x >= -eps) & (x <= width - 1 + eps) & (y >= -eps) & (y <= height - 1 + eps)
    return warped, inside[:, None].to(image.dtype)


def forward_backward_valid(
    flow_fw: Tensor, flow_bw: Tensor, threshold: float = FB_THRESHOLD
) -> Tensor:
    """Forward-backward consistency: valid where |fw(x) + bw(x + fw(x))| < threshold.

    flow_fw: (N, 2, H, W) flow from frame a to b; flow_bw: (N, 2, H, W) flow from b to a.
    Returns (N, 1, H, W) float {0, 1} on frame a's grid; pixels whose forward target leaves the
    frame are invalid (occluded by the border). Default threshold sqrt(2 ln 2) ~ 1.18 px, the
    internal-learning code's exp(-d^2/2) > 0.5 test.
    """
    check_flow("flow_fw", flow_fw)
    check_flow("flow_bw", flow_bw)
    if flow_fw.shape != flow_bw.shape:
        raise ValueError(
            f"flow_fw {tuple(flow_fw.shape)} and flow_bw {tuple(flow_bw.shape)} must match"
        )
    with torch.no_grad():
        bw_at_target, inside = backward_warp(flow_bw, flow_fw)
        round_trip = (flow_fw + bw_at_target).norm(dim=1, keepdim=True)
        return ((round_trip < threshold).to(flow_fw.dtype)) * inside


def video_flows(
    frames: Tensor,
    intervals: tuple[int, ...] = (1, 3, 5),
    method: str = "dis",
    raft_weights: str | None = None,
    cache_path: str | os.PathLike | None = None,
) -> dict[tuple[int, str], Tensor]:
    """Forward and backward flows of a video for several frame intervals.

    frames: (T, 3, H, W) float in [0, 1]. Returns {(k, "f"): (T-k, 2, H, W) with entry t = flow
    from frame t to t+k, (k, "b"): (T-k, 2, H, W) with entry t = flow from frame t+k to t}, on
    the CPU. An interval k >= T gives empty (0, 2, H, W) tensors. With `cache_path` (a .pt file)
    the flows are loaded from it when it was computed for the same frames, intervals and method,
    and otherwise computed and saved there (atomically).
    """
    _check_frames("frames", frames)
    if any(k < 1 for k in intervals):
        raise ValueError(f"intervals must be positive, got {intervals}")
    frames = frames.detach().float().cpu()
    key = {
        "method": method,
        "intervals": tuple(int(k) for k in intervals),
        "shape": tuple(frames.shape),
        "sha1": hashlib.sha1(
            (frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy().tobytes()
        ).hexdigest(),
    }
    if cache_path is not None and Path(cache_path).is_file():
        cached = torch.load(cache_path, map_location="cpu", weights_only=True)
        if cached.get("key") == key:
            return {(int(k[:-1]), k[-1]): v for k, v in cached["flows"].items()}
        log.info("flow cache %s was computed for other inputs; recomputing", cache_path)

    height, width = frames.shape[-2:]
    flows: dict[tuple[int, str], Tensor] = {}
    gray: list[np.ndarray] | None = None
    for k in key["intervals"]:
        if k >= frames.shape[0]:
            empty = frames.new_zeros(0, 2, height, width)
            flows[(k, "f")], flows[(k, "b")] = empty, empty.clone()
            continue
        if method == "dis":  # each frame converted to grayscale once
            gray = gray if gray is not None else _to_gray_uint8(frames)
            flows[(k, "f")] = _dis_gray(gray[:-k], gray[k:])
            flows[(k, "b")] = _dis_gray(gray[k:], gray[:-k])
            continue
        first, second = frames[:-k], frames[k:]
        flows[(k, "f")] = estimate_flow(first, second, method, raft_weights).cpu()
        flows[(k, "b")] = estimate_flow(second, first, method, raft_weights).cpu()

    if cache_path is not None:
        payload = {"key": key, "flows": {f"{k}{d}": v for (k, d), v in flows.items()}}
        with atomic_path(cache_path) as tmp:
            torch.save(payload, tmp)
    return flows
