"""The fit of an internal-learning system on one video (or one chunk of a long video streamed by
``inference.stream_inpaint``, the only chunk loop): the iteration loop and the resumable fit
state (``FitCheckpoint``).

One step is one optimiser iteration on a window (``windows.WindowSampler``); there is no host
synchronisation per iteration (the loss history stays on the device). The fit state (network,
Adam, iteration, sampler, loss history, RNG, DIP's best iterates) can be handed to
``on_state`` and written to a ``FitCheckpoint`` every few iterations; a fit resumed from it
runs the same iterations as an uninterrupted one and gives the same output.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch import Tensor

from vidinpaint.atomic import atomic_path
from vidinpaint.errors import check_video_mask
from vidinpaint.flow import video_flows
from vidinpaint.models import METHODS
from vidinpaint.models.classic import propagate_fill
from vidinpaint.models.internal.dip import BestIterates
from vidinpaint.models.internal.options import FlowOptions
from vidinpaint.models.internal.windows import (
    FlowTargets,
    Window,
    WindowDataset,
    WindowSampler,
    all_windows,
    middle_window,
)
from vidinpaint.models.propagation import fill_harmonic
from vidinpaint.nets.skipnet import make_noise

if TYPE_CHECKING:
    from vidinpaint.models.internal.system import InternalLearningSystem

log = logging.getLogger(__name__)

SIZE_MULTIPLE = METHODS["dip_vid_flow"].pixel_multiple
"""Frames are padded to multiples of this (the skip net halves H, W five times)."""
StateHook = tuple[int, Callable[[dict], None]]
"""(every so many iterations, a function receiving the fit state)."""


def fit_video(
    system: InternalLearningSystem,
    video: Tensor,
    mask: Tensor,
    progress: bool = True,
    checkpoint: FitCheckpoint | None = None,
    on_state: Callable[[dict], None] | None = None,
    state_every: int = 0,
) -> Tensor:
    """The network's output for every frame (``T,3,H,W`` CPU, not composited).

    video ``T,3,H,W`` in [0,1], mask ``T,1,H,W`` (1 = hole). Hole pixels of ``video`` are
    never read: they are replaced (``fill_holes``) before anything (flow estimation included)
    sees the video. Frames are padded to multiples of 64 by replication and cropped back.
    One network is fitted on all of ``video``: long videos are chunked by the caller
    (``inference.stream_inpaint``, ``chunk_frames=`` of vidinpaint-inpaint).
    """
    check_video_mask(video, mask)
    hole = (mask > 0.5).float().cpu()
    if bool(hole.all()):
        raise ValueError("the mask covers every pixel: nothing is known to learn from")
    video = system.fill_holes(video.float().cpu(), hole)
    height, width = video.shape[-2:]
    pad = (0, -width % SIZE_MULTIPLE, 0, -height % SIZE_MULTIPLE)
    video, hole = (F.pad(x, pad, mode="replicate") for x in (video, hole))
    smallest = 3 * SIZE_MULTIPLE
    if system.pad_mode == "reflect" and min(video.shape[-2:]) < smallest:
        raise ValueError(
            f"pad_mode=reflect needs frames of at least {smallest}x{smallest}, got "
            f"{height}x{width}: set model.pad_mode=replicate"
        )
    saved = None
    if checkpoint is not None:
        checkpoint.key = fit_key(video, hole, dict(system.hparams))
        saved = checkpoint.load()
    if saved is not None and saved["output"] is not None:  # the fit had ended
        return saved["output"][..., :height, :width]
    hooks: list[StateHook] = [(state_every, on_state)] if on_state is not None else []
    if checkpoint is not None:
        hooks.append((checkpoint.every, lambda fit: checkpoint.save({"output": None, "fit": fit})))
    resume = saved["fit"] if saved is not None else None
    output = fit_network(system, video, hole, progress, resume, hooks)
    if checkpoint is not None:
        checkpoint.save({"output": output, "fit": None})
    return output[..., :height, :width]


def fit_network(
    system: InternalLearningSystem,
    video: Tensor,
    hole: Tensor,
    progress: bool,
    resume: dict | None,
    hooks: list[StateHook],
) -> Tensor:
    """Fits a fresh network on ``T,3,H,W`` frames (multiples of 64, holes filled) and ``hole``
    ``T,1,H,W``; returns its generated frames (DIP: the best iterates). ``resume``: a fit
    state to continue from."""
    num_frames, _, height, width = video.shape
    options, method = system.fit_options, system.method
    system.reset_net(options.seed)
    system.best_iterates = BestIterates(options.dip_iters, options.dip_check_every)
    noise = make_noise(num_frames, height, width, seed=options.noise_seed)
    batch_frames = min(options.batch_frames, num_frames)
    flows = None
    if method == "dip":
        windows = all_windows(num_frames, 1)
        sampler = WindowSampler(
            windows, options.dip_iters, "sweep", shuffle=False, seed=options.seed
        )
        epochs = 1
    else:
        intervals = system.intervals if system.uses_flow else (1,)
        directions = ("f", "b") if system.uses_flow else ("f",)
        windows = all_windows(num_frames, batch_frames, intervals, directions)
        middle = None
        if options.middle_batch:
            middle = middle_window(num_frames, batch_frames, centred=not system.uses_flow)
        sampler = WindowSampler(
            windows,
            options.iters_per_batch,
            options.epoch_mode,
            options.batches_per_epoch,
            middle,
            shuffle=True,
            seed=options.seed,
        )
        epochs = options.epochs
        if system.uses_flow:
            flow = system.flow_options
            cache = Path(flow.cache) / "flows.pt" if flow.cache else None
            estimated = video_flows(
                flow_input(video, hole, flow),
                system.intervals,
                flow.method,
                flow.raft_weights,
                cache_path=cache,
            )
            flows = FlowTargets(estimated, hole, normalize=flow.normalize, margin=flow.valid_margin)
    data = WindowDataset(video, hole, noise, flows)
    log.info(
        "%s: %d frames %dx%d, %d epochs x %d iterations",
        method,
        num_frames,
        height,
        width,
        epochs,
        len(sampler),
    )
    device = system.fit_device()
    system.to(device)
    system.configure_model()
    system._target_features = None
    if system.perceptual is not None and system.speed_options.cache_target_features:
        with torch.no_grad(), system.autocast(device):
            parts = [
                system.perceptual.target_features(video[i : i + batch_frames].to(device))
                for i in range(0, num_frames, batch_frames)
            ]
        system._target_features = [torch.cat(layer) for layer in zip(*parts)]
    try:
        train(system, data, sampler, epochs, device, progress, resume, hooks)
    finally:
        system._target_features = None
    if method == "dip":
        system.cpu()
        return system.best_iterates.images(num_frames)
    return system.generate(noise, batch_frames, device)


def flow_input(video: Tensor, hole: Tensor, options: FlowOptions) -> Tensor:
    """The frames ``T,3,H,W`` the flows are estimated on: ``video`` (its holes already hold
    the mean known colour) with the holes filled as ``options.fill`` says."""
    if options.fill == "harmonic":
        return fill_harmonic(video, hole)
    if options.fill == "propagate":
        filled, _ = propagate_fill(video, hole, options.method, options.raft_weights)
        return filled
    return video


def train(
    system: InternalLearningSystem,
    data: WindowDataset,
    sampler: WindowSampler,
    epochs: int,
    device: torch.device,
    progress: bool,
    resume: dict | None,
    hooks: list[StateHook],
) -> None:
    """``epochs`` epochs of ``sampler``'s windows, one optimiser step per iteration.

    Each hook (every, function) receives the fit state every ``every`` iterations (0: never)
    and at the end. ``resume`` (such a state) continues there: the same iterations follow,
    so the result equals an uninterrupted fit's.
    """
    per_epoch = len(sampler)
    optimizer = system.configure_optimizers()
    system.loss_history = torch.zeros(epochs * per_epoch, device=device)
    iteration, first_epoch = 0, 0
    if resume is not None:
        iteration, first_epoch = resume["iteration"], resume["epoch"]
        load_fit_state(system, optimizer, resume, device)
    system.train()
    bar = Progress(transient=True, disable=not progress)
    task = bar.add_task(system.method, total=epochs * per_epoch, completed=iteration)
    with bar:
        for epoch in range(first_epoch, epochs):
            epoch_start = sampler.state_dict()
            position = epoch * per_epoch
            for window in sampler.epoch_windows():
                repeats = range(max(iteration - position, 0), sampler.iters_per_batch)
                position += sampler.iters_per_batch
                if not repeats:
                    continue
                if system.method == "dip" and system.best_iterates.start(window.start):
                    system.reset_net(system.fit_options.seed + window.start)
                    optimizer.state.clear()
                batch = window_batch(system, data, window, device)
                for _ in repeats:
                    optimizer.zero_grad(set_to_none=True)
                    with system.autocast(device):
                        loss = system.training_step(batch, iteration)
                    loss.backward()
                    optimizer.step()
                    iteration += 1
                    due = [fn for every, fn in hooks if every and iteration % every == 0]
                    if due:
                        state = fit_state(system, optimizer, iteration, epoch, epoch_start)
                        for fn in due:
                            fn(state)
                if progress:  # one host read per window
                    last = float(system.loss_history[iteration - 1])
                    bar.update(task, completed=iteration, description=f"L_r {last:.4f}")
    system.best_iterates.end_frame()
    if hooks:
        state = fit_state(system, optimizer, iteration, epochs, sampler.state_dict())
        for _, fn in hooks:
            fn(state)


def window_batch(
    system: InternalLearningSystem, data: WindowDataset, window: Window, device: torch.device
) -> dict:
    """A window's batch on ``device`` (channels-last noise when switched on)."""
    batch = {
        k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v
        for k, v in data[window].items()
    }
    if system._channels_last and system.dims == 2:
        batch["noise"] = batch["noise"].contiguous(memory_format=torch.channels_last)
    return batch


def fit_state(
    system: InternalLearningSystem,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    epoch: int,
    sampler_state: dict,
) -> dict:
    """What ``train`` needs to continue after ``iteration`` (CPU tensors)."""
    return {
        "iteration": iteration,
        "epoch": epoch,
        "sampler": sampler_state,
        "net": {k: v.detach().cpu() for k, v in system.net.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "history": system.loss_history[:iteration].cpu(),
        "rng": torch.get_rng_state(),
        "dip": system.best_iterates.state_dict(),
    }


def load_fit_state(
    system: InternalLearningSystem,
    optimizer: torch.optim.Optimizer,
    state: dict,
    device: torch.device,
) -> None:
    system.net.load_state_dict(state["net"])
    optimizer.load_state_dict(state["optimizer"])
    system.loss_history[: state["iteration"]] = state["history"].to(device)
    torch.set_rng_state(state["rng"])
    system.best_iterates.load_state_dict(state["dip"], device)


def fit_key(video: Tensor, hole: Tensor, settings: dict) -> dict[str, str]:
    """What a resumable state must have been written for: these frames, holes and settings."""
    digest = hashlib.sha1()
    for tensor in (video, hole):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return {
        "inputs": digest.hexdigest(),
        "settings": json.dumps(settings, default=str, sort_keys=True),
    }


class FitCheckpoint:
    """The resumable state of one ``fit_video`` call, one file written atomically.

    It holds the fit state (``fit``) while the fit runs and its output (``output``) once it
    has ended; ``fit_video`` resumes from it (or returns the output) when it exists.

    Args:
        path: the state file (in the run folder).
        every: iterations between writes (0: only when the fit ends).
    """

    def __init__(self, path: str | Path, every: int) -> None:
        if every < 0:
            raise ValueError(f"state_every must be >= 0, got {every}")
        self.path = Path(path)
        self.every = every
        self.key: dict[str, str] | None = None

    def load(self) -> dict | None:
        """The saved state (None when there is none); an error if written for other inputs."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"cannot read the resumable state {self.path}: {err}") from err
        if state.get("key") != self.key:
            raise ValueError(
                f"resumable state {self.path} was written for another video or other settings "
                "(remove it or use another run folder)"
            )
        if "output" not in state:
            raise ValueError(
                f"resumable state {self.path} is of an older vidinpaint (remove it to start over)"
            )
        log.info("resuming %s", self.path)
        return state

    def save(self, state: dict) -> None:
        with atomic_path(self.path) as tmp:
            torch.save({"key": self.key, **state}, tmp)
