"""The video itself as the dataset of internal learning (Zhang et al., ICCV'19).

A training batch is a *window*: ``batch_frames`` (N = 5) frames ``start, start+t, ...`` at a
frame interval t in {1, 3, 5}, supervising one flow direction ("f": frame i -> i+t, "b":
i+t -> i). Each window is optimised ``iters_per_batch`` (M = 100) times in a row, so the
sampler yields every window M times and one optimiser step is one iteration.

Two definitions of an epoch (``epoch_mode``):

- ``sampled`` (the public code's DIP-Vid-Flow loop): ``batches_per_epoch`` (50) windows taken
  from a shuffled list of all windows, reshuffled whenever it runs out, then the middle
  stride-1 window (start T // 2, forward). With E = 20: 20 x 51 x 100 = 102k iterations.
- ``sweep`` (the code's DIP-Vid / DIP-Vid-3DCN loop): every window once in random order, the
  middle one moved last.

DIP uses N = 1, the frames in order, no shuffling: ``sweep`` with ``shuffle=False``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import astuple, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from vidinpaint.errors import check_choice
from vidinpaint.flow import backward_warp, forward_backward_valid

EPOCH_MODES = ("sampled", "sweep")
DIRECTIONS = ("f", "b")


@dataclass(frozen=True)
class Window:
    """A training batch: ``size`` frames from ``start`` every ``interval`` frames."""

    start: int
    size: int
    interval: int = 1
    direction: str = "f"

    @property
    def frames(self) -> list[int]:
        return [self.start + i * self.interval for i in range(self.size)]


def all_windows(
    num_frames: int,
    batch_frames: int,
    intervals: tuple[int, ...] = (1,),
    directions: tuple[str, ...] = ("f",),
) -> list[Window]:
    """Every (start, interval, direction) window that fits in ``num_frames`` frames.

    Intervals too long for the video contribute none (t = 5 needs 21 frames for N = 5).
    """
    if batch_frames < 1 or batch_frames > num_frames:
        raise ValueError(f"batch_frames must be in [1, {num_frames}], got {batch_frames}")
    unknown = set(directions) - set(DIRECTIONS)
    if unknown:
        raise ValueError(f"directions must be in {DIRECTIONS}, got {directions}")
    return [
        Window(start, batch_frames, interval, direction)
        for interval in intervals
        for direction in directions
        for start in range(num_frames - (batch_frames - 1) * interval)
    ]


def middle_window(num_frames: int, batch_frames: int, centred: bool = False) -> Window:
    """The code's "median batch": stride 1, forward, kept inside the video, from frame T // 2
    (DIP-Vid-Flow's loop) or, ``centred``, from (T - (N - 1)) // 2, i.e. (T - 4) // 2 for
    N = 5 (the DIP-Vid and DIP-Vid-3DCN loops)."""
    start = (num_frames - (batch_frames - 1)) // 2 if centred else num_frames // 2
    return Window(min(start, num_frames - batch_frames), batch_frames, 1, "f")


class WindowSampler(Sampler[Window]):
    """Yields one epoch of windows, each ``iters_per_batch`` times in a row.

    Args:
        windows: the candidates (``all_windows``).
        iters_per_batch: M, iterations on a window before the next one.
        epoch_mode: ``sampled`` or ``sweep`` (module docstring).
        batches_per_epoch: windows per epoch in ``sampled`` mode (the middle one not counted).
        middle: the window trained last in every epoch (None: none).
        shuffle: random order (False: the order of ``windows``; DIP).
        seed: the order is a deterministic function of the seed and the epochs drawn so far.
    """

    def __init__(
        self,
        windows: list[Window],
        iters_per_batch: int,
        epoch_mode: str = "sampled",
        batches_per_epoch: int = 50,
        middle: Window | None = None,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        check_choice("epoch_mode", epoch_mode, EPOCH_MODES)
        if not windows:
            raise ValueError("no training window fits in the video")
        if iters_per_batch < 1 or batches_per_epoch < 1:
            raise ValueError(
                f"iters_per_batch and batches_per_epoch must be >= 1, got {iters_per_batch} "
                f"and {batches_per_epoch}"
            )
        self.windows = list(windows)
        self.iters_per_batch = iters_per_batch
        self.epoch_mode = epoch_mode
        self.batches_per_epoch = batches_per_epoch
        self.middle = middle
        self.shuffle = shuffle
        self.rng = random.Random(seed)
        self.queue: list[Window] = []

    def batches_in_epoch(self) -> int:
        if self.epoch_mode == "sweep":
            extra = self.middle is not None and self.middle not in self.windows
            return len(self.windows) + int(extra)
        return self.batches_per_epoch + int(self.middle is not None)

    def __len__(self) -> int:
        return self.batches_in_epoch() * self.iters_per_batch

    def epoch_windows(self) -> list[Window]:
        """The next epoch's windows in training order (advances the random state)."""
        if self.epoch_mode == "sweep":
            order = [w for w in self.windows if w != self.middle]
            if self.shuffle:
                self.rng.shuffle(order)
        else:
            order = []
            while len(order) < self.batches_per_epoch:
                if not self.queue:
                    self.queue = list(self.windows)
                    if self.shuffle:
                        self.rng.shuffle(self.queue)
                order.append(self.queue.pop(0))
        if self.middle is not None:
            order.append(self.middle)
        return order

    def state_dict(self) -> dict:
        """The random state and the pending queue: restoring them repeats the next epochs."""
        return {"rng": self.rng.getstate(), "queue": [astuple(w) for w in self.queue]}

    def load_state_dict(self, state: dict) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.queue = [Window(*w) for w in state["queue"]]

    def __iter__(self) -> Iterator[Window]:
        for window in self.epoch_windows():
            for _ in range(self.iters_per_batch):
                yield window


class FlowTargets:
    """Estimated flows of one video and the masks the flow and consistency losses use.

    For a frame pair (i, j) at interval t (direction "f": i = s, j = s + t; "b": i = s + t,
    j = s), indexed by the lower frame s (as ``flow.video_flows``):

    - ``flow(t, d)[s]``: estimated flow i -> j (pixels, (2,H,W)), divided by ``scale[t]`` when
      normalising (the code's per-interval max |flow| over both directions);
    - ``region(t, d)[s]``: hole of i united with the hole of j warped to i (the code's
      ``mask_flow``), where the consistency loss applies;
    - ``valid(t, d)[s]``: outside ``region`` grown by ``margin`` pixels and forward-backward
      consistent, where the flow loss applies (both endpoints known, not occluded, and not in
      the band around the hole where the estimated flow follows the hole's fill).

    Args:
        flows: ``flow.video_flows`` output for ``intervals``.
        hole: (T,1,H,W), 1 = hole.
        normalize: divide flows by the per-interval maximum |flow|.
        margin: pixels (a square of side 2 margin + 1) ``region`` is grown by for ``valid``.
    """

    def __init__(
        self,
        flows: dict[tuple[int, str], Tensor],
        hole: Tensor,
        normalize: bool = True,
        margin: int = 0,
    ) -> None:
        if margin < 0:
            raise ValueError(f"flow.valid_margin must be >= 0, got {margin}")
        self.scale: dict[int, float] = {}
        self._flow: dict[tuple[int, str], Tensor] = {}
        self._region: dict[tuple[int, str], Tensor] = {}
        self._valid: dict[tuple[int, str], Tensor] = {}
        hole = hole.float()
        for interval in sorted({k for k, _ in flows}):
            fw, bw = flows[(interval, "f")], flows[(interval, "b")]
            peak = max((float(f.abs().max()) for f in (fw, bw) if f.numel()), default=0.0)
            self.scale[interval] = peak if normalize and peak > 0 else 1.0
            if fw.shape[0] == 0:
                continue
            first, second = hole[:-interval], hole[interval:]
            for direction, flow, flow_back, hole_i, hole_j in (
                ("f", fw, bw, first, second),
                ("b", bw, fw, second, first),
            ):
                warped_hole, _ = backward_warp(hole_j, flow)
                region = torch.maximum(hole_i, (warped_hole > 0).float())
                excluded = (
                    F.max_pool2d(region, 2 * margin + 1, stride=1, padding=margin)
                    if margin
                    else region
                )
                valid = (1 - excluded) * forward_backward_valid(flow, flow_back)
                key = (interval, direction)
                self._flow[key] = flow / self.scale[interval]
                self._region[key] = region.bool()
                self._valid[key] = valid.bool()

    def pairs(self, window: Window) -> dict[str, Tensor | float]:
        """Batch entries of a window's N-1 consecutive pairs (lower frames f_0 .. f_{N-2})."""
        key = (window.interval, window.direction)
        if key not in self._flow:
            raise ValueError(f"no estimated flow for interval {window.interval}")
        lower = window.frames[:-1]
        return {
            "flow_target": self._flow[key][lower],
            "flow_region": self._region[key][lower].float(),
            "flow_valid": self._valid[key][lower].float(),
            "flow_scale": self.scale[window.interval],
        }


class WindowDataset(Dataset):
    """Batch of a window: ``frames`` (N,3,H,W), ``hole`` (N,1,H,W), ``noise`` (N,1,H,W),
    ``index`` (N,) frame numbers, ``interval``, ``direction`` and, with flow targets,
    ``flow_target`` (N-1,2,H,W), ``flow_region``, ``flow_valid`` (N-1,1,H,W), ``flow_scale``."""

    def __init__(
        self, video: Tensor, hole: Tensor, noise: Tensor, flows: FlowTargets | None = None
    ) -> None:
        num_frames, _, height, width = video.shape
        for name, tensor, channels in (("hole", hole, 1), ("noise", noise, 1)):
            if tuple(tensor.shape) != (num_frames, channels, height, width):
                raise ValueError(
                    f"{name}: expected {(num_frames, channels, height, width)}, "
                    f"got {tuple(tensor.shape)}"
                )
        self.video, self.hole, self.noise, self.flows = video, hole.float(), noise, flows

    def __len__(self) -> int:
        return self.video.shape[0]

    def __getitem__(self, window: Window) -> dict:
        index = torch.tensor(window.frames)
        batch = {
            "frames": self.video[index],
            "hole": self.hole[index],
            "noise": self.noise[index],
            "index": index,
            "interval": window.interval,
            "direction": window.direction,
        }
        if self.flows is not None:
            batch.update(self.flows.pairs(window))
        return batch
