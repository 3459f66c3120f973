"""DIP's per-frame bookkeeping: a new network for every frame, keeping the output of the
iterate with the lowest known-region loss L_r."""

from __future__ import annotations

import torch
from torch import Tensor


class BestIterates:
    """The lowest-L_r scored iterate of every frame of a DIP fit.

    An iterate is scored every ``check_every`` iterations of a frame and at its last
    (``iters``); the current frame's running best (L_r, image) stays on the fit's device (no
    host read per iteration) and moves to ``best`` when the frame ends.

    Attributes:
        best: frame -> (L_r, image ``1,3,H,W`` on the CPU) of the frames done.
    """

    def __init__(self, iters: int, check_every: int) -> None:
        self.iters, self.check_every = iters, check_every
        self.frame = -1
        self.iter = 0
        self.running: tuple[Tensor, Tensor] | None = None
        self.best: dict[int, tuple[float, Tensor]] = {}

    def start(self, frame: int) -> bool:
        """Whether ``frame`` begins a new frame (its network must be re-initialised)."""
        if frame == self.frame:
            return False
        self.end_frame()
        self.frame, self.iter = frame, 0
        return True

    def observe(self, recon: Tensor, image: Tensor) -> None:
        """One iteration of the current frame: L_r (a 0-dim tensor) and its image ``1,3,H,W``."""
        self.iter += 1
        if self.iter % self.check_every and self.iter != self.iters:
            return
        if self.running is None:
            self.running = (recon, image)
            return
        best_loss, best_image = self.running
        better = recon < best_loss
        self.running = (
            torch.where(better, recon, best_loss),
            torch.where(better, image, best_image),
        )

    def end_frame(self) -> None:
        """Moves the current frame's best iterate to ``best`` (one host read per frame)."""
        if self.running is not None:
            loss, image = self.running
            self.best[self.frame] = (float(loss), image.float().cpu())
            self.running = None

    def images(self, num_frames: int) -> Tensor:
        """The best iterates of frames ``0..num_frames-1``: ``T,3,H,W``."""
        return torch.cat([self.best[frame][1] for frame in range(num_frames)])

    def state_dict(self) -> dict:
        running = None if self.running is None else [t.detach().cpu() for t in self.running]
        best = {frame: [loss, image] for frame, (loss, image) in self.best.items()}
        return {"frame": self.frame, "iter": self.iter, "running": running, "best": best}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.frame, self.iter = state["frame"], state["iter"]
        running = state["running"]
        self.running = None if running is None else tuple(t.to(device) for t in running)
        self.best = {int(f): (float(loss), image) for f, (loss, image) in state["best"].items()}
