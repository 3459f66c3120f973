"""Internal learning (Zhang et al., ICCV'19): a network trained on the one video it inpaints.

One system serves the four methods of the paper (``method``):

- ``dip``: Deep Image Prior per frame: a new network for every frame, ``dip_iters``
  iterations, keeping the output of the iterate with the lowest known-region loss (checked
  every ``dip_check_every`` iterations);
- ``dip_vid``: one 2D network for the whole video, frames as a batch, L_r (+ L_p);
- ``dip_vid_3dcn``: the same with the 3D network (a window is one 1x1xNxHxW clip);
- ``dip_vid_flow``: the 2D network with a 12-channel flow head (intervals 1, 3, 5, forward and
  backward), L = L_r + 0.1 L_f + L_c + 0.01 L_p.

The input is fixed noise (one map per frame, ``make_noise``). ``inpaint`` fits the network on
the video in its own loop (one step = one iteration on a window from ``data.internal``; no
host synchronisation per iteration: the loss history stays on the device; the fit's state
can be written every ``state_every`` iterations and resumed, ``FitCheckpoint``), then
generates each frame from the stride-1 window centred on it (kept inside the video) and
pastes the known pixels back. As in the public code, BatchNorm stays in
training mode for that inference (batch statistics of the window). Flows of the input video
are estimated once per call (``flow.video_flows``: DIS, or RAFT with ``raft_weights``) and
divided by their per-interval maximum |flow| (the code's normalisation, ``normalize_flow``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch import Tensor

from vidinpaint.atomic import atomic_path
from vidinpaint.data.internal import (
    EPOCH_MODES,
    FlowTargets,
    WindowDataset,
    WindowSampler,
    all_windows,
    middle_window,
)
from vidinpaint.flow import temporal_smooth, video_flows
from vidinpaint.losses import (
    PerceptualLoss,
    consistency_loss,
    flow_loss,
    reconstruction_loss,
)
from vidinpaint.models import FITTED, names, speed
from vidinpaint.models import METHODS as METHODS_TABLE
from vidinpaint.models.classic import propagate_fill
from vidinpaint.nets.skipnet import SkipEncoderDecoder, make_noise

log = logging.getLogger(__name__)

METHODS = names(FITTED)
HOLE_INITS = ("mean", "propagate")
HOLE_TARGETS = ("fill", "seen")
CONSISTENCY_FLOWS = ("predicted", "estimated")
SIZE_MULTIPLE = METHODS_TABLE["dip"].pixel_multiple
PRECISIONS = (speed.AUTO, speed.FP32, speed.BF16)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")


class InternalLearningSystem(L.LightningModule):
    """Fits DIP, DIP-Vid, DIP-Vid-3DCN or DIP-Vid-Flow on one video; see the module docstring.

    Args:
        method: one of ``METHODS``.
        epochs: E, epochs over the video (video methods).
        iters_per_batch: M, iterations on a window before the next.
        batches_per_epoch: windows per epoch in ``sampled`` mode.
        epoch_mode: ``sampled`` (code's DIP-Vid-Flow epoch) or ``sweep`` (all windows).
        middle_batch: train the middle stride-1 window at the end of every epoch (the code).
        dip_iters, dip_check_every: DIP iterations per frame, and how often the iterate is scored.
        batch_frames: N, frames per window (fewer if the video is shorter).
        intervals: frame intervals of DIP-Vid-Flow windows (DIP-Vid uses 1).
        lr: Adam learning rate.
        recon_weight, flow_weight, consistency_weight, perceptual_weight: loss weights
            (flow and consistency only for dip_vid_flow; 0 turns a loss off).
        vgg_weights: local VGG16 weights for L_p (needed when perceptual_weight > 0).
        flow_method, raft_weights: flow estimator of the input video (``dis`` or ``raft``).
        flow_cache: folder where estimated flows are cached (None: not cached on disk).
        normalize_flow: divide flows by the per-interval maximum |flow|.
        pad_mode: spatial padding of the network: ``reflect`` (code; H, W >= 192) or
            ``replicate`` (any multiple of 64).
        hole_init: what fills the holes before anything sees the video: ``mean`` (each
            frame's mean known colour; the paper) or ``propagate`` (``models.classic``'s
            flow-guided propagation: the flows and the soft hole target start from it).
        hole_weight: weight of the hole pixels in L_r relative to the known ones (0: the
            paper; > 0: the ``hole_init`` fill is a soft target in the hole).
        hole_target: which hole pixels ``hole_weight`` applies to: ``fill`` (all of them) or
            ``seen`` (only those propagation found in another frame; the never-seen ones,
            Telea's, are left to the flow losses and the prior).
        hole_flow_target: the flow loss also applies in the seen part of the hole (flows
            estimated on the filled video), so the consistency loss there follows them.
        keep_seen: the output keeps the propagated colour where propagation saw the pixel
            and takes the network's output only where it did not (``hole_init=propagate``).
        consistency_flow: the flow L_c warps with: ``predicted`` (the flow head's, the paper)
            or ``estimated`` (the flows of the filled video, the flow loss's targets).
        smooth_iterations: dip_vid_flow's output in the hole is averaged this many times
            with its correspondents in the neighbouring frames along the interval-1 flows of
            the filled video (``flow.temporal_smooth``; 0: off, the paper).
        residual: the network refines the filled video instead of drawing it: image =
            clamp(filled + net image - 0.5), the image head starting at zero (so the fit
            starts from the ``hole_init`` fill; not the paper's).
        residual_in_hole: the refinement is added in the hole only: the known pixels stay
            the input's (L_r there is zero) and the network learns from the hole target and
            the flow and consistency losses.
        chunk_frames: videos longer than this are inpainted in independent chunks (the code's
            limit is 100 frames); bounds memory.
        seed: network initialisation and window order; ``noise_seed``: the input noise.
        accelerator: ``auto`` (the GPU when there is one), ``cpu`` or ``gpu``.
        precision: ``32-true``, ``bf16-mixed`` (bf16 autocast of the forward and losses) or
            ``auto`` (:func:`speed.resolve_precision`: bf16-mixed on a CPU with bf16 units,
            32-true elsewhere and for dip_vid_3dcn), resolved for the fit's device and logged.
        channels_last, compile, compile_mode: speed switches applied in ``configure_model``
            (channels-last memory format, True, False or ``auto``:
            :func:`speed.resolve_channels_last`; ``torch.compile`` of the network with
            ``mode`` ``compile_mode``, e.g. ``reduce-overhead``: CUDA graphs for the fixed
            window shape).
        fused_adam: one fused Adam kernel over all parameters.
        cache_target_features: L_p's VGG16 features of the frames computed once per fit
            instead of every iteration (about 33 MB per 192x384 frame on the device).
    """

    def __init__(
        self,
        method: str = "dip_vid_flow",
        epochs: int = 20,
        iters_per_batch: int = 100,
        batches_per_epoch: int = 50,
        epoch_mode: str = "sampled",
        middle_batch: bool = True,
        dip_iters: int = 5000,
        dip_check_every: int = 100,
        batch_frames: int = 5,
        intervals: tuple[int, ...] = (1, 3, 5),
        lr: float = 1e-2,
        recon_weight: float = 1.0,
        flow_weight: float = 0.1,
        consistency_weight: float = 1.0,
        perceptual_weight: float = 0.01,
        vgg_weights: str | None = None,
        flow_method: str = "dis",
        raft_weights: str | None = None,
        flow_cache: str | None = None,
        normalize_flow: bool = True,
        pad_mode: str = "reflect",
        hole_init: str = "mean",
        hole_weight: float = 0.0,
        hole_target: str = "fill",
        hole_flow_target: bool = False,
        keep_seen: bool = False,
        consistency_flow: str = "predicted",
        smooth_iterations: int = 0,
        residual: bool = False,
        residual_in_hole: bool = False,
        chunk_frames: int = 100,
        seed: int = 0,
        noise_seed: int = 0,
        accelerator: str = "auto",
        precision: str = "32-true",
        channels_last: bool | str = False,
        compile: bool = False,
        compile_mode: str | None = None,
        fused_adam: bool = True,
        cache_target_features: bool = True,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if hole_init not in HOLE_INITS:
            raise ValueError(f"hole_init must be one of {HOLE_INITS}, got {hole_init!r}")
        if consistency_flow not in CONSISTENCY_FLOWS:
            raise ValueError(
                f"consistency_flow must be one of {CONSISTENCY_FLOWS}, got {consistency_flow!r}"
            )
        if hole_target not in HOLE_TARGETS:
            raise ValueError(f"hole_target must be one of {HOLE_TARGETS}, got {hole_target!r}")
        if smooth_iterations < 0:
            raise ValueError(f"smooth_iterations must be >= 0, got {smooth_iterations}")
        if epoch_mode not in EPOCH_MODES:
            raise ValueError(f"epoch_mode must be one of {EPOCH_MODES}, got {epoch_mode!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator must be one of {ACCELERATORS}, got {accelerator!r}")
        counts = {
            "epochs": epochs,
            "iters_per_batch": iters_per_batch,
            "batches_per_epoch": batches_per_epoch,
            "dip_iters": dip_iters,
            "dip_check_every": dip_check_every,
            "batch_frames": batch_frames,
            "chunk_frames": chunk_frames,
        }
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        weights = (recon_weight, flow_weight, consistency_weight, perceptual_weight, hole_weight)
        if min(weights) < 0:
            raise ValueError(f"loss weights must be >= 0, got {weights}")
        intervals = tuple(int(k) for k in intervals)
        if not intervals or min(intervals) < 1:
            raise ValueError(f"intervals must be positive, got {intervals}")
        self.save_hyperparameters()
        self.method = method
        self.intervals = intervals
        self.uses_flow = method == "dip_vid_flow"
        self.net = self._build_net()
        self.net.load_state_dict(self._initial_state(seed))
        # raises MissingWeightsError (how to supply the file or set perceptual_weight=0)
        self.perceptual = PerceptualLoss(vgg_weights) if perceptual_weight > 0 else None
        # L_r of every iteration of the last fit (a DIP frame's run: dip_iters entries), kept
        # on the fit's device and read once at the end
        self.loss_history = torch.zeros(0)
        self._optimizer: torch.optim.Optimizer | None = None
        self._target_features: list[Tensor] | None = None
        # L_r weight of every pixel of the chunk being fitted (T,1,H,W; hole_weight, hole_target)
        self._recon_weight: Tensor | None = None
        # interval-1 flows (forward, backward) of the chunk being fitted, for smooth_iterations
        self._smooth_flows: tuple[Tensor, Tensor] | None = None
        self._configured = False
        # precision and memory format resolved for the fit's device (``_resolve_speed``)
        self._precision, self._channels_last = precision, channels_last
        # DIP: frame -> (L_r, image (1,3,H,W)) of the lowest-loss scored iterate; the current
        # frame's running best (L_r, image) stays on the device until the frame ends
        self._dip_frame = -1
        self._dip_iter = 0
        self._dip_running: tuple[Tensor, Tensor] | None = None
        self.dip_best: dict[int, tuple[float, Tensor]] = {}

    @property
    def recon_history(self) -> list[float]:
        """L_r of every iteration of the last fit, as floats (one host read)."""
        return self.loss_history.tolist()

    # ---------------------------------------------------------------- network
    def _build_net(self) -> SkipEncoderDecoder:
        flow_channels = 4 * len(self.intervals) if self.uses_flow else 0
        dims = 3 if self.method == "dip_vid_3dcn" else 2
        return SkipEncoderDecoder(
            dims=dims, flow_channels=flow_channels, pad_mode=self.hparams.pad_mode
        )

    def _initial_state(self, seed: int) -> dict[str, Tensor]:
        """Weights of a freshly initialised network, a deterministic function of ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._build_net()
        if self.hparams.residual:  # sigmoid(0) = 0.5: no change to the filled video yet
            torch.nn.init.zeros_(net.image_head.conv.weight)
            torch.nn.init.zeros_(net.image_head.conv.bias)
        return net.state_dict()

    def _refine(self, image: Tensor, filled: Tensor, hole: Tensor) -> Tensor:
        """``residual``: the filled frames plus the network's image - 0.5 (only in the hole
        with ``residual_in_hole``), in [0, 1]. image, filled (N,3,H,W); hole (N,1,H,W)."""
        if not self.hparams.residual:
            return image
        change = image - 0.5
        if self.hparams.residual_in_hole:
            change = change * hole
        return (filled + change).clamp(0, 1)

    def _reset_net(self, seed: int) -> None:
        """A new network (in place, so the optimiser keeps its parameters) and a fresh Adam."""
        self.net.load_state_dict(self._initial_state(seed))
        if self._optimizer is not None:
            self._optimizer.state.clear()

    def flow_channel(self, interval: int, direction: str) -> int:
        """First flow-head channel of (interval, direction); order f1, b1, f3, b3, f5, b5."""
        return 2 * (2 * self.intervals.index(interval) + (direction == "b"))

    def forward(self, noise: Tensor) -> tuple[Tensor, Tensor | None]:
        """noise (N,1,H,W) -> image (N,3,H,W) in (0,1), flow (N,4*len(intervals),H,W) or None.

        The 3D network sees the N frames as one clip (1,1,N,H,W).
        """
        if self.method != "dip_vid_3dcn":
            return self.net(noise)
        image, flow = self.net(noise.transpose(0, 1)[None])
        return image[0].transpose(0, 1), None if flow is None else flow[0].transpose(0, 1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.net.parameters(), lr=self.hparams.lr, fused=self.hparams.fused_adam
        )

    def _resolve_speed(self, device: torch.device) -> None:
        """``precision`` and ``channels_last`` for ``device`` (``auto``: the CPU's fast
        paths, :mod:`vidinpaint.models.speed`); the precision is logged."""
        hp = self.hparams
        dims = 3 if self.method == "dip_vid_3dcn" else 2
        self._precision = speed.resolve_precision(hp.precision, device, dims)
        self._channels_last = speed.resolve_channels_last(hp.channels_last, device, dims)
        log.info(
            "%s: %s, channels_last=%s on %s (model.precision=%s%s)",
            self.method,
            self._precision,
            self._channels_last,
            device.type,
            hp.precision,
            "; model.precision=32-true turns bf16 off" if self._precision == speed.BF16 else "",
        )

    def configure_model(self) -> None:
        """Applies the speed switches once (for the system's device): channels-last memory
        format, ``torch.compile``."""
        if self._configured:
            return
        self._configured = True
        self._resolve_speed(self.device)
        if self._channels_last:
            is_3d = self.method == "dip_vid_3dcn"
            self.net.to(memory_format=torch.channels_last_3d if is_3d else torch.channels_last)
        if self.hparams.compile:
            self.net.compile(mode=self.hparams.compile_mode)

    def _fit_device(self) -> torch.device:
        wanted = self.hparams.accelerator
        if wanted in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ValueError(f"accelerator={wanted} but no CUDA device is available")
        use_cuda = wanted in ("gpu", "cuda") or (wanted == "auto" and torch.cuda.is_available())
        return torch.device("cuda" if use_cuda else "cpu")

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self._precision == speed.BF16:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- training
    def losses(self, batch: dict) -> dict[str, Tensor]:
        """Weighted terms and their sum ``loss`` for one window (keys recon, flow, ...)."""
        image, flow = self(batch["noise"])
        image = self._refine(image, batch["frames"], batch["hole"])
        hp = self.hparams
        frames = batch["frames"]
        known = batch.get("recon_weight", 1 - batch["hole"] * (1 - hp.hole_weight))
        terms = {"recon": (hp.recon_weight, reconstruction_loss(image, frames, known))}
        if self.perceptual is not None:
            cached = None
            if self._target_features is not None:
                cached = [features[batch["index"]] for features in self._target_features]
            terms["perceptual"] = (
                hp.perceptual_weight,
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
                hp.flow_weight,
                flow_loss(pred_flow, batch["flow_target"], batch["flow_valid"]),
            )
            warp_flow = batch["flow_target"] if hp.consistency_flow == "estimated" else pred_flow
            pixel_flow = warp_flow * batch["flow_scale"]
            terms["consistency"] = (
                hp.consistency_weight,
                consistency_loss(image[src], image[dst], pixel_flow, batch["flow_region"]),
            )
        out = {name: value for name, (_, value) in terms.items()}
        out["loss"] = sum(weight * value for weight, value in terms.values())
        out["image"] = image
        return out

    def start_window(self, frame: int) -> None:
        """DIP: a new network and optimiser state when the window's frame changes."""
        if self.method == "dip" and frame != self._dip_frame:
            self._end_dip_frame()
            self._dip_frame = frame
            self._dip_iter = 0
            self._reset_net(self.hparams.seed + frame)

    def _end_dip_frame(self) -> None:
        """Moves the finished frame's best iterate to ``dip_best`` (one host read per frame)."""
        if self._dip_running is not None:
            loss, image = self._dip_running
            self.dip_best[self._dip_frame] = (float(loss), image.float().cpu())
            self._dip_running = None

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        """Losses of one iteration; L_r goes to ``loss_history[batch_idx]`` without a host
        read (the history is allocated by the fit; a step outside a fit records nothing)."""
        out = self.losses(batch)
        recon = out["recon"].detach().float()
        if batch_idx < self.loss_history.numel():
            self.loss_history[batch_idx] = recon
        if self.method == "dip":
            self._dip_iter += 1
            check = self._dip_iter % self.hparams.dip_check_every == 0
            if check or self._dip_iter == self.hparams.dip_iters:
                image = out["image"].detach()
                if self._dip_running is None:
                    self._dip_running = (recon, image)
                else:
                    best_loss, best_image = self._dip_running
                    better = recon < best_loss
                    self._dip_running = (
                        torch.where(better, recon, best_loss),
                        torch.where(better, image, best_image),
                    )
        return out["loss"]

    # ---------------------------------------------------------------- users
    def inpaint(
        self,
        video: Tensor,
        mask: Tensor,
        progress: bool = True,
        checkpoint: FitCheckpoint | None = None,
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
        checkpoint: FitCheckpoint | None = None,
    ) -> Tensor:
        """The network's output for every frame (``T,3,H,W`` CPU, not composited).

        Hole pixels of ``video`` are never read: they are replaced (``hole_init``: the frame's
        mean known colour, or the propagation fill) before anything (flow estimation
        included) sees the video.
        """
        if video.dim() != 4 or video.shape[1] != 3:
            raise ValueError(f"video must be T,3,H,W, got {tuple(video.shape)}")
        expected = (video.shape[0], 1, *video.shape[2:])
        if tuple(mask.shape) != expected:
            raise ValueError(f"mask must be T,1,H,W = {expected}, got {tuple(mask.shape)}")
        hole = (mask > 0.5).float().cpu()
        if bool(hole.all()):
            raise ValueError("the mask covers every pixel: nothing is known to learn from")
        video, seen = self._fill_holes(video.float().cpu(), hole)
        height, width = video.shape[-2:]
        pad = (0, -width % SIZE_MULTIPLE, 0, -height % SIZE_MULTIPLE)
        video, hole, seen = (F.pad(x, pad, mode="replicate") for x in (video, hole, seen))
        smallest = 3 * SIZE_MULTIPLE
        if self.hparams.pad_mode == "reflect" and min(video.shape[-2:]) < smallest:
            raise ValueError(
                f"pad_mode=reflect needs frames of at least {smallest}x{smallest}, got "
                f"{height}x{width}: set model.pad_mode=replicate"
            )
        chunk = self.hparams.chunk_frames
        saved = None
        if checkpoint is not None:
            checkpoint.key = fit_key(video, hole, dict(self.hparams))
            saved = checkpoint.load()
        # outputs of the finished chunks (restored from the checkpoint when resuming)
        outputs: list[Tensor] = list(saved["finished"]) if saved else []
        for index, start in enumerate(range(0, video.shape[0], chunk)):
            part = slice(start, start + chunk)
            if bool(hole[part].all()):
                raise ValueError(f"frames {start}..{start + chunk - 1} are entirely holes")
            if index < len(outputs):
                continue
            resume = saved["fit"] if saved and saved["chunk"] == index else None
            save = None
            if checkpoint is not None:

                def save(fit: dict, index: int = index) -> None:
                    checkpoint.save({"finished": outputs, "chunk": index, "fit": fit})

            every = checkpoint.every if checkpoint is not None else 0
            outputs.append(
                self._fit_chunk(
                    video[part], hole[part], seen[part], progress, index, resume, save, every
                )
            )
            if checkpoint is not None:
                checkpoint.save({"finished": outputs, "chunk": index + 1, "fit": None})
        return torch.cat(outputs)[..., :height, :width]

    def _fill_holes(self, video: Tensor, hole: Tensor) -> tuple[Tensor, Tensor]:
        """``T,3,H,W`` with the hole pixels (``hole`` ``T,1,H,W``) replaced per ``hole_init``,
        and ``T,1,H,W`` {0, 1}: the hole pixels filled from another frame (propagate only)."""
        if self.hparams.hole_init == "propagate":
            return propagate_fill(video, hole, self.hparams.flow_method, self.hparams.raft_weights)
        known = 1 - hole
        mean = (video * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(
            min=1
        )
        return video * known + mean * hole, torch.zeros_like(hole)

    def _fit_chunk(
        self,
        video: Tensor,
        hole: Tensor,
        seen: Tensor,
        progress: bool,
        index: int,
        resume: dict | None = None,
        save: Callable[[dict], None] | None = None,
        every: int = 0,
    ) -> Tensor:
        """Fits a fresh network on ``T,3,H,W`` frames (multiples of 64) and generates them;
        ``hole``, ``seen``: ``T,1,H,W`` (``_fill_holes``); ``resume``: a saved fit state to
        continue from; ``save``: writes a fit state (every ``every`` iterations and at the
        end)."""
        num_frames, _, height, width = video.shape
        hp = self.hparams
        self._reset_net(hp.seed)
        self.dip_best, self._dip_frame, self._dip_running = {}, -1, None
        noise = make_noise(num_frames, height, width, seed=hp.noise_seed + index)
        batch_frames = min(hp.batch_frames, num_frames)
        flows, self._smooth_flows = None, None
        if self.method == "dip":
            sampler = WindowSampler(
                all_windows(num_frames, 1), hp.dip_iters, "sweep", shuffle=False, seed=hp.seed
            )
            epochs = 1
        else:
            intervals = self.intervals if self.uses_flow else (1,)
            directions = ("f", "b") if self.uses_flow else ("f",)
            windows = all_windows(num_frames, batch_frames, intervals, directions)
            middle = middle_window(num_frames, batch_frames) if hp.middle_batch else None
            sampler = WindowSampler(
                windows,
                hp.iters_per_batch,
                hp.epoch_mode,
                hp.batches_per_epoch,
                middle,
                shuffle=True,
                seed=hp.seed,
            )
            epochs = hp.epochs
            if self.uses_flow:
                cache = Path(hp.flow_cache) / f"flows_{index:04d}.pt" if hp.flow_cache else None
                estimated = video_flows(
                    video, self.intervals, hp.flow_method, hp.raft_weights, cache_path=cache
                )
                flows = FlowTargets(estimated, hole, normalize=hp.normalize_flow)
                if 1 in self.intervals:
                    self._smooth_flows = (estimated[(1, "f")], estimated[(1, "b")])
                if hp.hole_flow_target:
                    unseen = FlowTargets(estimated, hole * (1 - seen), hp.normalize_flow)
                    flows = HoleFlowTargets(regions=flows, targets=unseen)
        targeted = hole * seen if hp.hole_target == "seen" else hole
        self._recon_weight = 1 - hole + hp.hole_weight * targeted
        data = WindowDataset(video, hole, noise, flows)
        log.info(
            "%s: %d frames %dx%d, %d epochs x %d iterations",
            self.method,
            num_frames,
            height,
            width,
            epochs,
            len(sampler),
        )
        device = self._fit_device()
        self.to(device)
        self.configure_model()
        self._target_features = None
        if self.perceptual is not None and hp.cache_target_features:
            with torch.no_grad(), self._autocast(device):
                parts = [
                    self.perceptual.target_features(video[i : i + batch_frames].to(device))
                    for i in range(0, num_frames, batch_frames)
                ]
            self._target_features = [torch.cat(layer) for layer in zip(*parts)]
        try:
            self._train(data, sampler, epochs, device, progress, resume, save, every)
        finally:
            self._target_features = None
        if self.method == "dip":
            self.cpu()
            return torch.cat([self.dip_best[f][1] for f in range(num_frames)])
        return self.output(self._generate(noise, batch_frames, device), video, hole, seen)

    def output(self, image: Tensor, filled: Tensor, hole: Tensor, seen: Tensor) -> Tensor:
        """The chunk's frames ``T,3,H,W`` from the generated ``image``: refined (``residual``)
        and, with ``keep_seen``, the filled colour where propagation saw the pixel; then
        ``smooth_iterations`` of ``flow.temporal_smooth`` in the hole (the fitted chunk's
        flows)."""
        image = self._refine(image, filled, hole)
        if self.hparams.keep_seen:
            image = filled * seen + image * (1 - seen)
        if self.hparams.smooth_iterations and self._smooth_flows is not None:
            forward, backward = self._smooth_flows
            image = temporal_smooth(image, hole, forward, backward, self.hparams.smooth_iterations)
        return image

    def _train(
        self,
        data: WindowDataset,
        sampler: WindowSampler,
        epochs: int,
        device: torch.device,
        progress: bool,
        resume: dict | None,
        save: Callable[[dict], None] | None,
        every: int,
    ) -> None:
        """``epochs`` epochs of ``sampler``'s windows, one optimiser step per iteration.

        Every ``state_every`` iterations (and at the end) ``save`` receives the fit state: the
        network, Adam, the iteration, the sampler's state at the start of the current epoch,
        the loss history, the RNG and DIP's best iterates. ``resume`` (such a state) continues
        there: the same iterations follow, so the result equals an uninterrupted fit's.
        """
        per_epoch = len(sampler)
        self._optimizer = self.configure_optimizers()
        self.loss_history = torch.zeros(epochs * per_epoch, device=device)
        iteration, first_epoch = 0, 0
        if resume is not None:
            iteration, first_epoch = resume["iteration"], resume["epoch"]
            self._load_fit_state(resume, device)
        self.train()
        bar = Progress(transient=True, disable=not progress)
        task = bar.add_task(self.method, total=epochs * per_epoch, completed=iteration)
        with bar:
            for epoch in range(first_epoch, epochs):
                epoch_start = sampler.state_dict()
                position = epoch * per_epoch
                for window in sampler.epoch_windows():
                    repeats = range(max(iteration - position, 0), sampler.iters_per_batch)
                    position += sampler.iters_per_batch
                    if not repeats:
                        continue
                    self.start_window(window.start)
                    batch = self._window_batch(data, window, device)
                    for _ in repeats:
                        self._optimizer.zero_grad(set_to_none=True)
                        with self._autocast(device):
                            loss = self.training_step(batch, iteration)
                        loss.backward()
                        self._optimizer.step()
                        iteration += 1
                        if save is not None and every and iteration % every == 0:
                            save(self._fit_state(iteration, epoch, epoch_start))
                    if progress:  # one host read per window
                        last = float(self.loss_history[iteration - 1])
                        bar.update(task, completed=iteration, description=f"L_r {last:.4f}")
        self._end_dip_frame()
        if save is not None:
            save(self._fit_state(iteration, epochs, sampler.state_dict()))

    def _window_batch(self, data: WindowDataset, window, device: torch.device) -> dict:
        """A window's batch on ``device`` (channels-last noise when switched on)."""
        batch = {
            k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v
            for k, v in data[window].items()
        }
        if self._recon_weight is not None:
            batch["recon_weight"] = self._recon_weight[window.frames].to(device)
        if self._channels_last and self.method != "dip_vid_3dcn":
            batch["noise"] = batch["noise"].contiguous(memory_format=torch.channels_last)
        return batch

    def _fit_state(self, iteration: int, epoch: int, sampler_state: dict) -> dict:
        """What ``_train`` needs to continue after ``iteration`` (CPU tensors)."""
        running = None
        if self._dip_running is not None:
            running = [t.detach().cpu() for t in self._dip_running]
        return {
            "iteration": iteration,
            "epoch": epoch,
            "sampler": sampler_state,
            "net": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self._optimizer.state_dict(),
            "history": self.loss_history[:iteration].cpu(),
            "rng": torch.get_rng_state(),
            "dip": {
                "frame": self._dip_frame,
                "iter": self._dip_iter,
                "running": running,
                "best": {f: [loss, image] for f, (loss, image) in self.dip_best.items()},
            },
        }

    def _load_fit_state(self, state: dict, device: torch.device) -> None:
        self.net.load_state_dict(state["net"])
        self._optimizer.load_state_dict(state["optimizer"])
        self.loss_history[: state["iteration"]] = state["history"].to(device)
        torch.set_rng_state(state["rng"])
        dip = state["dip"]
        self._dip_frame, self._dip_iter = dip["frame"], dip["iter"]
        running = dip["running"]
        self._dip_running = None if running is None else tuple(t.to(device) for t in running)
        self.dip_best = {int(f): (float(loss), image) for f, (loss, image) in dip["best"].items()}

    @torch.no_grad()
    def _generate(self, noise: Tensor, batch_frames: int, device: torch.device) -> Tensor:
        """Each frame from the stride-1 window centred on it (BatchNorm in training mode)."""
        num_frames = noise.shape[0]
        self.to(device)
        self.net.train()
        autocast = self._autocast(device)
        starts = [
            min(max(f - batch_frames // 2, 0), num_frames - batch_frames) for f in range(num_frames)
        ]
        frames = torch.empty(num_frames, 3, *noise.shape[-2:])
        with autocast:
            for start in sorted(set(starts)):
                image, _ = self(noise[start : start + batch_frames].to(device))
                for frame in range(num_frames):
                    if starts[frame] == start:
                        frames[frame] = image[frame - start].float().cpu()
        self.cpu()
        return frames


class HoleFlowTargets:
    """Flow targets whose flow loss also covers the hole pixels propagation saw: the pairs'
    ``flow_target``/``flow_valid`` from ``targets`` (``FlowTargets`` of the never-seen hole),
    the consistency ``flow_region`` from ``regions`` (``FlowTargets`` of the whole hole)."""

    def __init__(self, regions: FlowTargets, targets: FlowTargets) -> None:
        self.regions, self.targets = regions, targets

    def pairs(self, window) -> dict[str, Tensor | float]:
        pairs = self.targets.pairs(window)
        pairs["flow_region"] = self.regions.pairs(window)["flow_region"]
        return pairs


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

    It holds the finished chunks' outputs, the current chunk and its fit state (network, Adam,
    iteration, sampler, loss history, RNG); ``fit_video`` resumes from it when it exists.

    Args:
        path: the state file (in the run folder).
        every: iterations between writes (0: only when a chunk's fit ends).
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
        log.info("resuming %s at chunk %d", self.path, state["chunk"])
        return state

    def save(self, state: dict) -> None:
        with atomic_path(self.path) as tmp:
            torch.save({"key": self.key, **state}, tmp)
