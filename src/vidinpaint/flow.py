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
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidinpaint.atomic import atomic_path

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


def _check_flow(name: str, flow: Tensor) -> None:
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
    if method == "dis":
        return _dis_flow(src, dst)
    if method in ("raft", "raft_large", "raft_small"):
        return _raft_flow(src, dst, method, raft_weights)
    raise ValueError(f"flow method must be one of {FLOW_METHODS}, got {method!r}")


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
    _check_flow("flow", flow)
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
    _check_flow("flow_fw", flow_fw)
    _check_flow("flow_bw", flow_bw)
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


def _masked_half(values: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
    """2x2 average of the known pixels (ceil sizes) and the coarse known mask."""
    pad = (0, values.shape[-1] % 2, 0, values.shape[-2] % 2)
    weight = F.avg_pool2d(F.pad(known, pad), 2)
    total = F.avg_pool2d(F.pad(values * known, pad), 2)
    return total / weight.clamp(min=1e-6), (weight > 0).to(values.dtype)


def _neighbour_mean(values: Tensor) -> Tensor:
    """Mean of the 4 neighbours (replicated at the border)."""
    padded = F.pad(values, (1, 1, 1, 1), mode="replicate")
    return (
        padded[..., :-2, 1:-1]
        + padded[..., 2:, 1:-1]
        + padded[..., 1:-1, :-2]
        + padded[..., 1:-1, 2:]
    ) / 4


def fill_harmonic(values: Tensor, hole: Tensor, iterations: int = 20) -> Tensor:
    """Smoothest fill of the holes of ``values`` from their border (harmonic, coarse to fine).

    values: (N, C, H, W); hole: (N, 1, H, W), 1 = unknown. The hole is first filled at half
    resolution (recursively, from the masked 2x2 averages of the known pixels), up-sampled,
    then relaxed by ``iterations`` Jacobi steps of Laplace's equation with the known pixels
    fixed. Known pixels are returned unchanged; a frame with no known pixel comes back zero.
    """
    if values.ndim != 4 or hole.shape != (values.shape[0], 1, *values.shape[-2:]):
        raise ValueError(
            f"values (N,C,H,W) and hole (N,1,H,W) must match, got {tuple(values.shape)} "
            f"and {tuple(hole.shape)}"
        )
    hole = (hole > 0.5).to(values.dtype)
    known = 1 - hole
    if not bool(hole.any()):
        return values
    if min(values.shape[-2:]) <= 2:
        mean = (values * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(
            min=1
        )
        return values * known + mean * hole
    coarse, coarse_known = _masked_half(values, known)
    coarse = fill_harmonic(coarse, 1 - coarse_known, iterations)
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
    filled = values * known + up[..., : values.shape[-2], : values.shape[-1]] * hole
    for _ in range(iterations):
        filled = values * known + _neighbour_mean(filled) * hole
    return filled


COMPLETION_MARGIN = 16
"""Known pixels around a hole's bounding box that its flow completion reads (px)."""


def complete_flow(flow: Tensor, hole: Tensor, dilate: int = 2, iterations: int = 20) -> Tensor:
    """Flow inside a hole replaced by the smooth (harmonic) fill of the flow around it.

    flow: (N, 2, H, W) estimated on frames whose hole content is unknown; hole: (N, 1, H, W) of
    the source frames, 1 = hole. The hole is dilated by ``dilate`` pixels first (flow at its
    border is contaminated by the hole's content). Each frame is filled within the bounding
    box of its grown hole plus ``COMPLETION_MARGIN`` pixels (the fill is decided by the flow
    at the hole's border), so the cost follows the hole, not the frame. Returns (N, 2, H, W).
    """
    _check_flow("flow", flow)
    grown = F.max_pool2d(hole.float(), 2 * dilate + 1, stride=1, padding=dilate) if dilate else hole
    grown = grown.to(flow.dtype)
    completed = flow.clone()
    for i in range(flow.shape[0]):
        rows, cols = _span(grown[i, 0].amax(1)), _span(grown[i, 0].amax(0))
        if rows is not None:
            box = (slice(i, i + 1), slice(None), rows, cols)
            completed[box] = fill_harmonic(flow[box], grown[box], iterations)
    return completed


def _span(line: Tensor) -> slice | None:
    """The non-zero entries of ``line`` (L,) and ``COMPLETION_MARGIN`` on each side, or None."""
    hit = line.nonzero()[:, 0]
    if hit.numel() == 0:
        return None
    return slice(max(int(hit[0]) - COMPLETION_MARGIN, 0), int(hit[-1]) + COMPLETION_MARGIN + 1)


class Trace(NamedTuple):
    """Where the hole pixels of one frame are known in other frames (one sweep direction).

    index: (n,) long flat pixel index (y * W + x) of the frame's hole pixels; frame: (n,) long
    source frame, -1 where none was found; position: (2, n) float (x, y) in the source frame.
    """

    index: Tensor
    frame: Tensor
    position: Tensor


MIN_CORNER_WEIGHT = 1e-4
"""Bilinear corners lighter than this are ignored when a position is looked up."""


def trace_holes(hole: Tensor, forward: Tensor, backward: Tensor, step: int) -> list[Trace]:
    """Each hole pixel followed along the flows to the nearest frame (in direction ``step``)
    where it is known, in one sweep over the frames: linear in their number.

    hole: (T, 1, H, W), 1 = unknown; forward, backward: (T-1, 2, H, W) with entry t the flow
    from frame t to t+1 and from t+1 to t (``video_flows(..)[(1, "f")]``, ``[(1, "b")]``).
    A pixel p of frame t moves to q = p + flow(t -> t + step)(p). If every bilinear corner of
    q is known in frame t + step, that is its source; otherwise the corners' own onward
    sources (found when the sweep passed frame t + step, for its hole pixels and the known
    pixels next to them) give it one: their displacements to their sources, interpolated at q
    over the corners that share a source frame, among the candidates that sample only known
    pixels there (``_onward_sources``). A pixel whose q leaves the frame has no source.
    Returns one ``Trace`` per frame (its hole pixels).
    """
    if step not in (1, -1):
        raise ValueError(f"step must be +1 or -1, got {step}")
    num_frames, _, height, width = hole.shape
    if forward.shape != (num_frames - 1, 2, height, width) or backward.shape != forward.shape:
        raise ValueError(
            f"hole {tuple(hole.shape)} needs T-1,2,H,W forward and backward flows, got "
            f"{tuple(forward.shape)} and {tuple(backward.shape)}"
        )
    holes = hole > 0.5
    # the hole and the known pixels next to it: every bilinear corner set touching the hole
    band = F.max_pool2d(holes.float(), 3, stride=1, padding=1).reshape(num_frames, -1) > 0
    holes = holes.reshape(num_frames, -1)
    known = ~holes
    there = forward if step == 1 else backward
    order = range(num_frames - 1, -1, -1) if step == 1 else range(num_frames)
    # every frame's band pixels, in one pass over the video
    band_pixels = torch.split(band.nonzero()[:, 1], band.sum(1).tolist())
    traces: dict[int, Trace] = {}
    onward: _Onward | None = None  # the previously swept frame t + step
    for t in order:
        index = band_pixels[t]
        if onward is None or index.numel() == 0:
            trace = Trace(index, torch.full_like(index, -1), forward.new_zeros(2, len(index)))
        else:
            flow = there[min(t, t + step)].reshape(2, -1)
            trace = _trace_step(index, flow, onward, known, width)
        if onward is None:
            onward = _Onward(height * width, forward.dtype)
        onward.hold(t, trace)
        keep = holes[t][trace.index]
        traces[t] = Trace(trace.index[keep], trace.frame[keep], trace.position[:, keep])
    return [traces[t] for t in range(num_frames)]


class _Onward:
    """For frame ``index``'s hole and the known pixels next to it, where the sweep found them
    known further on (frame -1: nowhere), as dense (H*W) tables that are reused from frame to
    frame (only the entries written are reset)."""

    def __init__(self, pixels: int, dtype: torch.dtype) -> None:
        self.index = -1
        self.frame = torch.full((pixels,), -1, dtype=torch.long)
        self.position = torch.zeros(2, pixels, dtype=dtype)
        self.written = torch.zeros(0, dtype=torch.long)

    def hold(self, frame: int, trace: Trace) -> None:
        """The tables of ``frame`` (the ``trace`` of its band)."""
        self.frame[self.written] = -1
        self.index, self.written = frame, trace.index
        self.frame[trace.index] = trace.frame
        self.position[:, trace.index] = trace.position


def _trace_step(index: Tensor, there: Tensor, onward: _Onward, known: Tensor, width: int) -> Trace:
    """Pixels ``index`` (n,) of a frame moved by ``there`` (2, H*W: the flow to the frame
    swept before, ``onward``) and looked up there; ``known``: (T, H*W) bool."""
    height = there.shape[1] // width
    x = (index % width).to(there.dtype)
    y = torch.div(index, width, rounding_mode="floor").to(there.dtype)
    flow = there[:, index]
    qx, qy = x + flow[0], y + flow[1]
    eps = 1e-3
    inside = (qx >= -eps) & (qx <= width - 1 + eps) & (qy >= -eps) & (qy <= height - 1 + eps)
    q = torch.stack([qx.clamp(0, width - 1), qy.clamp(0, height - 1)])
    corner, weight = _bilinear_corners(*q, height, width)  # (4, n)
    direct = (known[onward.index, corner] | (weight <= MIN_CORNER_WEIGHT)).all(0)  # q known
    position = q
    frame = torch.full_like(index, onward.index)
    rest = (~direct).nonzero()[:, 0]
    if rest.numel():
        position = position.clone()
        position[:, rest], frame[rest] = _onward_sources(
            q[:, rest], corner[:, rest], weight[:, rest], onward, known, width
        )
    return Trace(index, torch.where(inside, frame, -1), position)


def _onward_sources(
    q: Tensor, corner: Tensor, weight: Tensor, onward: _Onward, known: Tensor, width: int
) -> tuple[Tensor, Tensor]:
    """Sources of positions ``q`` (2, n) whose bilinear ``corner`` (4, n, with ``weight``)
    are not all known in the frame swept before: the corners' onward sources. Corners that
    share a source frame give one candidate: their displacements to it, interpolated at q (no
    pull towards them); of the candidates whose every corner is known in their frame (a clean
    sample, as at the end of a chain followed pixel by pixel), the one of the largest bilinear
    weight. Returns (position (2, n), frame (n,), -1 where none)."""
    height = known.shape[1] // width
    frames = onward.frame[corner]
    usable = (weight > MIN_CORNER_WEIGHT) & (frames >= 0)
    corner_xy = torch.stack([corner % width, torch.div(corner, width, rounding_mode="floor")])
    displacement = onward.position[:, corner] - corner_xy.to(q.dtype)  # (2, 4, n)
    scores, positions = [], []
    for k in range(4):
        group = (usable & (frames == frames[k])).to(weight.dtype) * weight
        total = group.sum(0)
        positions.append(q + (displacement * group).sum(1) / total.clamp(min=1e-12))
        clean = _known_at(known, frames[k], positions[-1], height, width)
        scores.append(torch.where(usable[k] & clean, total, -1.0))
    score = torch.stack(scores)
    best = score.argmax(0, keepdim=True)
    position = torch.stack(positions, 1).gather(1, best[None].expand(2, 1, -1))[:, 0]
    frame = torch.where(score.gather(0, best)[0] > 0, frames.gather(0, best)[0], -1)
    return position, frame


def _known_at(known: Tensor, frame: Tensor, position: Tensor, height: int, width: int) -> Tensor:
    """(n,) bool: every weighted bilinear corner of ``position`` (2, n) is known in ``frame``
    (n,) (``known``: (T, H*W) bool; frames < 0 give False)."""
    corner, weight = _bilinear_corners(*position, height, width)
    hit = known[frame.clamp(min=0), corner] | (weight <= MIN_CORNER_WEIGHT)
    return hit.all(0) & (frame >= 0)


def _bilinear_corners(x: Tensor, y: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Flat indices (4, n) of the pixels around positions (x, y) (n,) inside the frame, and
    their bilinear weights (4, n)."""
    x0 = x.floor().clamp(0, max(width - 2, 0))
    y0 = y.floor().clamp(0, max(height - 2, 0))
    fx, fy = (x - x0).clamp(0, 1), (y - y0).clamp(0, 1)
    corners, weights = [], []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            cx = (x0 + dx).clamp(max=width - 1).long()
            cy = (y0 + dy).clamp(max=height - 1).long()
            corners.append(cy * width + cx)
            weights.append(wx * wy)
    return torch.stack(corners), torch.stack(weights)


def sample_sources(frames: Tensor, hole: Tensor, trace: Trace) -> tuple[Tensor, Tensor]:
    """Colours of a trace's sources: bilinear in the source frame over its known corners.

    frames: (T, C, H, W); hole: (T, 1, H, W), 1 = unknown. Returns (colour (C, n), found (n,)
    bool: a source exists and one of its weighted corners is known).
    """
    num_frames, channels, height, width = frames.shape
    source = trace.frame.clamp(min=0)
    corner, weight = _bilinear_corners(*trace.position, height, width)
    weight = weight * (hole.reshape(num_frames, -1)[source, corner] <= 0.5)
    flat = frames.reshape(num_frames, channels, -1)
    colour = sum(flat[source, :, corner[k]].T * weight[k] for k in range(4))
    total = weight.sum(0)
    found = (trace.frame >= 0) & (total > MIN_CORNER_WEIGHT)
    return colour / total.clamp(min=1e-12), found


def temporal_smooth(
    frames: Tensor,
    hole: Tensor,
    forward: Tensor,
    backward: Tensor,
    iterations: int = 3,
    self_weight: float = 1.0,
) -> Tensor:
    """Hole pixels averaged with their flow correspondents in the previous and next frames.

    frames: (T, C, H, W); hole: (T, 1, H, W), 1 = smoothed; forward: (T-1, 2, H, W), entry t the
    flow from frame t to t+1; backward: (T-1, 2, H, W), entry t the flow from t+1 to t
    (``video_flows(..)[(1, "f")]``, ``[(1, "b")]``). Each of ``iterations`` steps replaces a
    hole pixel by (``self_weight`` x itself + its neighbours warped along the flows) / the
    weights, a neighbour counting where the flow is forward-backward consistent
    (``forward_backward_valid``). Pixels outside the hole are returned unchanged.
    """
    _check_flow("forward", forward)
    _check_flow("backward", backward)
    num_frames = frames.shape[0]
    if forward.shape[0] != num_frames - 1 or backward.shape != forward.shape:
        raise ValueError(
            f"frames {tuple(frames.shape)} need T-1 forward and backward flows, got "
            f"{tuple(forward.shape)} and {tuple(backward.shape)}"
        )
    if num_frames < 2 or iterations < 1:
        return frames
    hole = (hole > 0.5).to(frames.dtype)
    next_valid = forward_backward_valid(forward, backward)
    previous_valid = forward_backward_valid(backward, forward)
    # the weights do not change between iterations: computed once
    pad_last, pad_first = (0, 0, 0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 0, 0, 1, 0)  # in time
    weight = self_weight + F.pad(next_valid, pad_last) + F.pad(previous_valid, pad_first)
    smoothed = frames
    for _ in range(iterations):
        following, _ = backward_warp(smoothed[1:], forward)
        preceding, _ = backward_warp(smoothed[:-1], backward)
        total = self_weight * smoothed
        total = total + F.pad(following * next_valid, pad_last)
        total = total + F.pad(preceding * previous_valid, pad_first)
        smoothed = frames * (1 - hole) + total / weight * hole
    return smoothed
