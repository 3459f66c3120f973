"""Flow-guided propagation's machinery (the ``propagate`` method, ``models.classic``): the flow
inside a hole completed from the flow around it (``complete_flow``, ``fill_harmonic``), hole
pixels traced along the flows to the nearest frames where they are known (``trace_holes``),
their colours sampled there (``sample_sources``), and a fill smoothed along the flows
(``temporal_smooth``). Flows are as in ``vidinpaint.flow``: (N, 2, H, W) in pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from vidinpaint.errors import check_video_mask
from vidinpaint.flow import backward_warp, check_flow, forward_backward_valid


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
    check_video_mask(values, hole, channels=None)
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
    check_flow("flow", flow)
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
    check_flow("forward", forward)
    check_flow("backward", backward)
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
