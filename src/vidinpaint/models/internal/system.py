"""The internal-learning system: the network, its losses on a window, and generation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import Tensor

from vidinpaint.errors import check_choice
from vidinpaint.losses import PerceptualLoss, consistency_loss, flow_loss, reconstruction_loss
from vidinpaint.models import FITTED, names, speed
from vidinpaint.models.internal import fit_loop
from vidinpaint.models.internal.dip import BestIterates
from vidinpaint.models.internal.options import (
    FitOptions,
    FlowOptions,
    LossWeights,
    SpeedOptions,
    as_dict,
    options,
)
from vidinpaint.nets.skipnet import SkipEncoderDecoder

log = logging.getLogger(__name__)

METHODS = names(FITTED)
PAD_MODES = ("reflect", "replicate")


class InternalLearningSystem(L.LightningModule):
    """Fits DIP, DIP-Vid, DIP-Vid-3DCN or DIP-Vid-Flow on one video (package docstring).

    Args:
        method: one of ``METHODS``.
        fit, loss, flow, speed: ``FitOptions``, ``LossWeights``, ``FlowOptions``,
            ``SpeedOptions`` or mappings of their fields (config nodes); None: the defaults.
        pad_mode: spatial padding of the network: ``reflect`` (the code; H, W >= 192) or
            ``replicate`` (any multiple of 64).
    """

    def __init__(
        self,
        method: str = "dip_vid_flow",
        fit: FitOptions | Mapping[str, Any] | None = None,
        loss: LossWeights | Mapping[str, Any] | None = None,
        flow: FlowOptions | Mapping[str, Any] | None = None,
        speed: SpeedOptions | Mapping[str, Any] | None = None,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        check_choice("method", method, METHODS)
        check_choice("pad_mode", pad_mode, PAD_MODES)
        self.fit_options = options(FitOptions, fit)
        self.loss_weights = options(LossWeights, loss)
        self.flow_options = options(FlowOptions, flow)
        self.speed_options = options(SpeedOptions, speed)
        self.method, self.pad_mode = method, pad_mode
        self.save_hyperparameters(
            {
                "method": method,
                "fit": as_dict(self.fit_options),
                "loss": as_dict(self.loss_weights),
                "flow": as_dict(self.flow_options),
                "speed": as_dict(self.speed_options),
                "pad_mode": pad_mode,
            }
        )
        self.intervals = self.fit_options.intervals
        self.uses_flow = method == "dip_vid_flow"
        self.dims = 3 if method == "dip_vid_3dcn" else 2
        self.net = self._build_net()
        self.net.load_state_dict(self._initial_state(self.fit_options.seed))
        weights = self.loss_weights
        # raises MissingWeightsError (how to supply the file or set model.loss.perceptual=0)
        self.perceptual = (
            PerceptualLoss(weights.vgg_weights, weights.perceptual_input)
            if weights.perceptual > 0
            else None
        )
        # L_r of every iteration of the last fit (a DIP frame's run: dip_iters entries), kept
        # on the fit's device and read once at the end
        self.loss_history = torch.zeros(0)
        self.best_iterates = BestIterates(
            self.fit_options.dip_iters, self.fit_options.dip_check_every
        )
        # L_p's VGG16 features of the frames of the chunk being fitted (cache_target_features)
        self._target_features: list[Tensor] | None = None
        self._configured = False
        # precision and memory format resolved for the fit's device (``configure_model``)
        self._precision = self.speed_options.precision
        self._channels_last = self.speed_options.channels_last

    @property
    def recon_history(self) -> list[float]:
        """L_r of every iteration of the last fit, as floats (one host read)."""
        return self.loss_history.tolist()

    @property
    def dip_best(self) -> dict[int, tuple[float, Tensor]]:
        """DIP: frame -> (L_r, image ``1,3,H,W``) of its lowest-loss scored iterate."""
        return self.best_iterates.best

    # ---------------------------------------------------------------- network
    def _build_net(self) -> SkipEncoderDecoder:
        flow_channels = 4 * len(self.intervals) if self.uses_flow else 0
        return SkipEncoderDecoder(
            dims=self.dims, flow_channels=flow_channels, pad_mode=self.pad_mode
        )

    def _initial_state(self, seed: int) -> dict[str, Tensor]:
        """Weights of a freshly initialised network, a deterministic function of ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._build_net().state_dict()

    def reset_net(self, seed: int) -> None:
        """A new network, in place (an optimiser keeps its parameters)."""
        self.net.load_state_dict(self._initial_state(seed))

    def flow_channel(self, interval: int, direction: str) -> int:
        """First flow-head channel of (interval, direction); order f1, b1, f3, b3, f5, b5."""
        return 2 * (2 * self.intervals.index(interval) + (direction == "b"))

    def forward(self, noise: Tensor) -> tuple[Tensor, Tensor | None]:
        """noise (N,1,H,W) -> image (N,3,H,W) in (0,1), flow (N,4*len(intervals),H,W) or None.

        The 3D network sees the N frames as one clip (1,1,N,H,W).
        """
        if self.dims == 2:
            return self.net(noise)
        image, flow = self.net(noise.transpose(0, 1)[None])
        return image[0].transpose(0, 1), None if flow is None else flow[0].transpose(0, 1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.net.parameters(), lr=self.fit_options.lr, fused=self.speed_options.fused_adam
        )

    def configure_model(self) -> None:
        """Applies the speed switches once, for the system's device: precision and memory
        format (``auto``: the CPU's fast paths, :mod:`vidinpaint.models.speed`; logged),
        ``torch.compile``."""
        if self._configured:
            return
        self._configured = True
        options, device = self.speed_options, self.device
        self._precision = speed.resolve_precision(options.precision, device, self.dims)
        self._channels_last = speed.resolve_channels_last(options.channels_last, device, self.dims)
        log.info(
            "%s: %s, channels_last=%s on %s (model.speed.precision=%s%s)",
            self.method,
            self._precision,
            self._channels_last,
            device.type,
            options.precision,
            "; model.speed.precision=32-true turns bf16 off"
            if self._precision == speed.BF16
            else "",
        )
        if self._channels_last:
            fmt = torch.channels_last_3d if self.dims == 3 else torch.channels_last
            self.net.to(memory_format=fmt)
        if options.compile:
            self.net.compile(mode=options.compile_mode)

    def fit_device(self) -> torch.device:
        """The device ``speed.accelerator`` asks for (``auto``: the GPU when there is one)."""
        wanted = self.speed_options.accelerator
        if wanted in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ValueError(f"accelerator={wanted} but no CUDA device is available")
        use_cuda = wanted in ("gpu", "cuda") or (wanted == "auto" and torch.cuda.is_available())
        return torch.device("cuda" if use_cuda else "cpu")

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bf16 autocast on ``device`` when the resolved precision is bf16."""
        if self._precision == speed.BF16:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- training
    def losses(self, batch: dict) -> dict[str, Tensor]:
        """Weighted terms and their sum ``loss`` for one window (keys recon, flow, ...) and
        the window's ``image`` (N,3,H,W)."""
        image, flow = self(batch["noise"])
        weights = self.loss_weights
        frames = batch["frames"]
        known = 1 - batch["hole"]
        terms = {"recon": (weights.recon, reconstruction_loss(image, frames, known))}
        if self.perceptual is not None:
            cached = None
            if self._target_features is not None:
                cached = [features[batch["index"]] for features in self._target_features]
            terms["perceptual"] = (
                weights.perceptual,
                self.perceptual(image, frames, known, target_features=cached),
            )
        if self.uses_flow:
            channel = self.flow_channel(batch["interval"], batch["direction"])
            # pairs (i, j): forward i = f_k, j = f_{k+1}; backward i = f_{k+1}, j = f_k
            src, dst = (slice(0, -1), slice(1, None))
            if batch["direction"] == "b":
                src, dst = dst, src
            pred_flow = flow[src, channel : channel + 2].float()
            terms["flow"] = (
                weights.flow,
                flow_loss(pred_flow, batch["flow_target"], batch["flow_valid"]),
            )
            pixel_flow = pred_flow * batch["flow_scale"]
            terms["consistency"] = (
                weights.consistency,
                consistency_loss(image[src], image[dst], pixel_flow, batch["flow_region"]),
            )
        out = {name: value for name, (_, value) in terms.items()}
        out["loss"] = sum(weight * value for weight, value in terms.values())
        out["image"] = image
        return out

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        """Losses of one iteration; L_r goes to ``loss_history[batch_idx]`` without a host
        read (the history is allocated by the fit; a step outside a fit records nothing)."""
        out = self.losses(batch)
        recon = out["recon"].detach().float()
        if batch_idx < self.loss_history.numel():
            self.loss_history[batch_idx] = recon
        if self.method == "dip":
            self.best_iterates.observe(recon, out["image"].detach())
        return out["loss"]

    # ---------------------------------------------------------------- users
    @staticmethod
    def fill_holes(video: Tensor, hole: Tensor) -> Tensor:
        """``video`` ``T,3,H,W`` with its hole pixels (``hole`` ``T,1,H,W``, 1 = hole)
        replaced by each frame's mean known colour (the paper): nothing reads them after."""
        known = 1 - hole
        mean = (video * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(
            min=1
        )
        return video * known + mean * hole

    @torch.no_grad()
    def generate(self, noise: Tensor, batch_frames: int, device: torch.device) -> Tensor:
        """Every frame ``T,3,H,W`` (CPU) from the stride-1 window of ``batch_frames`` frames
        centred on it (kept inside the video), BatchNorm in training mode (batch statistics
        of the window, as the code); ``noise``: ``T,1,H,W``."""
        num_frames = noise.shape[0]
        self.to(device)
        self.net.train()
        starts = [
            min(max(f - batch_frames // 2, 0), num_frames - batch_frames) for f in range(num_frames)
        ]
        frames = torch.empty(num_frames, 3, *noise.shape[-2:])
        with self.autocast(device):
            for start in sorted(set(starts)):
                image, _ = self(noise[start : start + batch_frames].to(device))
                for frame in range(num_frames):
                    if starts[frame] == start:
                        frames[frame] = image[frame - start].float().cpu()
        self.cpu()
        return frames

    def inpaint(
        self,
        video: Tensor,
        mask: Tensor,
        progress: bool = True,
        checkpoint: fit_loop.FitCheckpoint | None = None,
    ) -> Tensor:
        """Inpaints a video by fitting the network on it.

        Args: video ``T,3,H,W`` in [0,1], mask ``T,1,H,W`` (1 = hole); any H, W (padded to
        multiples of 64 by replication and cropped back). checkpoint: where the fit's
        resumable state is written (and resumed from when the file exists).
        Returns: ``T,3,H,W`` on the CPU with the known pixels of ``video`` unchanged.
        """
        raw = self.fit_video(video, mask, progress, checkpoint)
        hole = mask.float().cpu()
        return raw * hole + video.float().cpu() * (1 - hole)

    def fit_video(
        self,
        video: Tensor,
        mask: Tensor,
        progress: bool = True,
        checkpoint: fit_loop.FitCheckpoint | None = None,
        on_state: Callable[[dict], None] | None = None,
        state_every: int = 0,
    ) -> Tensor:
        """The network's output for every frame (``T,3,H,W`` CPU, not composited); see
        ``fit_loop.fit_video``. ``on_state`` receives the fit state every ``state_every``
        iterations and when a chunk's fit ends."""
        return fit_loop.fit_video(self, video, mask, progress, checkpoint, on_state, state_every)
