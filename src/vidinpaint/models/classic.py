"""Classic video inpainting without learning: the baselines of the internal-learning methods.

- ``telea``: OpenCV's fast-marching fill (Telea, 2004) of every frame on its own;
- ``propagate``: flow-guided propagation (the idea behind DFVI and FGVC, without their learned
  parts): the flow between consecutive frames is estimated (``flow.video_flows``, DIS by
  default) on Telea-filled frames and replaced inside the (dilated) holes of both frames of
  the pair by its smooth harmonic fill (``propagation.complete_flow``); one sweep forward and one
  backward over the frames carries each hole pixel to the nearest frame where it is known
  (``propagation.trace_holes``: the work per frame does not grow with the number of frames); the
  two candidates are blended by 1 / temporal distance (``_propagate_once``; preferring the
  candidate whose flow chain is forward-backward consistent was measured and lowered the hole
  PSNR), and pixels never seen are filled with Telea. Each further pass
  (``passes``) estimates the flows again on the filled video and propagates along them: the
  hole content the flow sees gets closer to the truth, and so does the flow.

``ClassicSystem`` has the learned systems' ``inpaint(video, mask, progress)`` and trains nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import cv2
import numpy as np
import torch
from torch import Tensor

from vidinpaint.errors import check_choice, check_video_mask
from vidinpaint.flow import video_flows
from vidinpaint.models import CLASSIC, names
from vidinpaint.models.propagation import (
    complete_flow,
    sample_sources,
    temporal_smooth,
    trace_holes,
)

log = logging.getLogger(__name__)

METHODS = names(CLASSIC)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the duration: the classic fills run many small operations on
    the hole's pixels, which a thread pool only slows down (more so on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def telea_fill(video: Tensor, hole: Tensor, radius: int = 3) -> Tensor:
    """Every frame filled on its own by OpenCV's Telea method.

    video: (T, 3, H, W) in [0, 1]; hole: (T, 1, H, W), 1 = hole. Returns (T, 3, H, W) float
    in [0, 1], quantised to 8 bits in the hole (OpenCV works on uint8), known pixels unchanged.
    A frame with every pixel a hole is returned as is (nothing to fill from).
    """
    check_video_mask(video, hole)
    hole = (hole > 0.5).cpu()
    video = video.float().cpu()
    rgb = (video.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    masks = hole[:, 0].to(torch.uint8).numpy()
    filled = []
    for image, mask in zip(rgb, masks):
        if mask.any() and not mask.all():
            image = cv2.inpaint(np.ascontiguousarray(image), mask, radius, cv2.INPAINT_TELEA)
        filled.append(torch.from_numpy(image))
    out = torch.stack(filled).permute(0, 3, 1, 2).float() / 255
    return torch.where(hole, out, video)


def propagate_fill(
    video: Tensor,
    hole: Tensor,
    flow_method: str = "dis",
    raft_weights: str | None = None,
    telea_radius: int = 3,
    flow_dilate: int = 4,
    flow_iterations: int = 20,
    passes: int = 4,
) -> tuple[Tensor, Tensor]:
    """Flow-guided propagation (module docstring).

    video: (T, 3, H, W) in [0, 1]; hole: (T, 1, H, W), 1 = hole (hole pixels of ``video`` are
    never read). Returns (filled (T, 3, H, W) with the known pixels unchanged, seen (T, 1, H, W)
    {0, 1}: hole pixels filled from another frame, the rest of the hole is Telea's).
    """
    check_video_mask(video, hole)
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    hole = (hole > 0.5).float().cpu()
    video = video.float().cpu()
    filled = telea_fill(video, hole, telea_radius)
    if video.shape[0] < 2:
        return filled, torch.zeros_like(hole)
    # the flow of a pair is contaminated wherever either frame shows filled-in content
    pair_hole = torch.maximum(hole[:-1], hole[1:])
    for pass_index in range(passes):
        flows = video_flows(filled, (1,), flow_method, raft_weights)
        forward, backward = flows[(1, "f")], flows[(1, "b")]
        if pass_index == 0:
            forward = complete_flow(forward, pair_hole, flow_dilate, flow_iterations)
            backward = complete_flow(backward, pair_hole, flow_dilate, flow_iterations)
        filled, seen = _propagate_once(video, hole, forward, backward, telea_radius)
    log.debug("propagate: %.1f%% of the hole seen in other frames", 100 * seen.sum() / hole.sum())
    return filled, seen


def _propagate_once(
    video: Tensor, hole: Tensor, forward: Tensor, backward: Tensor, telea_radius: int
) -> tuple[Tensor, Tensor]:
    """One propagation along interval-1 flows (T-1, 2, H, W) (``video_flows`` order):
    (filled, seen) as ``propagate_fill``. Each hole pixel gets up to two candidates, from the
    nearest later and the nearest earlier frame where it is known (``propagation.trace_holes``, one
    sweep each way), blended with weights 1 / temporal distance."""
    traces = {step: trace_holes(hole, forward, backward, step) for step in (1, -1)}
    filled = video.clone()
    seen = torch.zeros_like(hole)
    width = video.shape[-1]
    for t in range(video.shape[0]):
        index = traces[1][t].index
        if index.numel() == 0:
            continue
        total, weight_sum = 0, 0
        for step in (1, -1):
            trace = traces[step][t]
            colour, found = sample_sources(video, hole, trace)
            weight = found.to(video.dtype) / (trace.frame - t).abs().clamp(min=1)
            total, weight_sum = total + colour * weight, weight_sum + weight
        found = weight_sum > 0
        rows, cols = index[found] // width, index[found] % width
        filled[t, :, rows, cols] = (total / weight_sum.clamp(min=1e-12))[:, found]
        seen[t, 0, rows, cols] = 1
    rest = hole * (1 - seen)
    return torch.where(rest > 0, telea_fill(filled, rest, telea_radius), filled), seen


class ClassicSystem(torch.nn.Module):
    """``telea`` or ``propagate`` behind the learned systems' interface; no training.

    Args:
        method: one of ``METHODS``.
        telea_radius: neighbourhood radius of OpenCV's Telea fill (pixels).
        flow_method, raft_weights: flow estimator of ``propagate`` (``dis`` or ``raft``).
        flow_dilate: pixels the holes are grown by before the flow inside them is completed.
        flow_iterations: Jacobi iterations per pyramid level of the flow completion.
        passes: propagations, each along the flows of the previous fill (1: the flows of the
            Telea-filled frames, completed in the holes).
        smooth_iterations: ``propagate``'s fill averaged this many times with its flow
            correspondents in the neighbouring frames (``propagation.temporal_smooth`` along the
            flows of the filled video; 0: off, the default). The same step as
            dip_vid_flow's ``smooth_iterations``, without the network.
    """

    def __init__(
        self,
        method: str = "propagate",
        telea_radius: int = 3,
        flow_method: str = "dis",
        raft_weights: str | None = None,
        flow_dilate: int = 4,
        flow_iterations: int = 20,
        passes: int = 4,
        smooth_iterations: int = 0,
    ) -> None:
        super().__init__()
        check_choice("method", method, METHODS)
        counts = (flow_dilate, flow_iterations, smooth_iterations)
        if min(telea_radius, passes) < 1 or min(counts) < 0:
            raise ValueError(
                f"telea_radius and passes must be >= 1, flow_dilate, flow_iterations and "
                f"smooth_iterations >= 0, got {telea_radius}, {passes}, {flow_dilate}, "
                f"{flow_iterations}, {smooth_iterations}"
            )
        self.method = method
        self.telea_radius = telea_radius
        self.flow_method, self.raft_weights = flow_method, raft_weights
        self.flow_dilate, self.flow_iterations = flow_dilate, flow_iterations
        self.passes = passes
        self.smooth_iterations = smooth_iterations
        # nothing is optimised (the benchmark counts the iterations of a fit)
        self.recon_history: list[float] = []

    def fit_video(self, video: Tensor, mask: Tensor, progress: bool = True) -> Tensor:
        """The filled video ``T,3,H,W`` (CPU); ``progress`` is accepted for the interface."""
        check_video_mask(video, mask)
        if bool((mask > 0.5).all()):
            raise ValueError("the mask covers every pixel: nothing is known to fill from")
        with one_torch_thread():
            return self._fill(video, mask)

    def _fill(self, video: Tensor, mask: Tensor) -> Tensor:
        """``fit_video`` on one thread."""
        if self.method == "telea":
            return telea_fill(video, mask, self.telea_radius)
        filled, _ = propagate_fill(
            video,
            mask,
            self.flow_method,
            self.raft_weights,
            self.telea_radius,
            self.flow_dilate,
            self.flow_iterations,
            self.passes,
        )
        if self.smooth_iterations and video.shape[0] > 1:
            flows = video_flows(filled, (1,), self.flow_method, self.raft_weights)
            filled = temporal_smooth(
                filled, mask, flows[(1, "f")], flows[(1, "b")], self.smooth_iterations
            )
        return filled

    def inpaint(self, video: Tensor, mask: Tensor, progress: bool = True) -> Tensor:
        """video ``T,3,H,W`` in [0,1], mask ``T,1,H,W`` (1 = hole) -> ``T,3,H,W`` on the CPU
        with the known pixels of ``video`` unchanged."""
        return self.fit_video(video, mask, progress)
