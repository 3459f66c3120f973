"""The settings of an internal-learning fit, grouped as in ``conf/model/dip_vid_flow.yaml``:
``fit`` (schedule, windows, optimiser, seeds), ``loss`` (weights), ``flow`` (the input
video's flows) and ``speed`` (device, precision, memory format, compilation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from vidinpaint.errors import check_choice
from vidinpaint.flow import FLOW_METHODS
from vidinpaint.losses import PERCEPTUAL_INPUTS
from vidinpaint.models import speed
from vidinpaint.models.internal.windows import EPOCH_MODES

FLOW_FILLS = ("mean", "harmonic", "propagate")
PRECISIONS = (speed.AUTO, speed.FP32, speed.BF16)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")

Options = TypeVar("Options")


@dataclass(frozen=True)
class FitOptions:
    """How the network is fitted (``model.fit``).

    Attributes:
        epochs: E, epochs over the video (video methods).
        iters_per_batch: M, iterations on a window before the next.
        batches_per_epoch: windows per epoch in ``sampled`` mode.
        epoch_mode: ``sampled`` (the code's DIP-Vid-Flow epoch) or ``sweep`` (all windows).
        middle_batch: train the middle stride-1 window at the end of every epoch (the code).
        dip_iters, dip_check_every: DIP iterations per frame, and how often the iterate is
            scored.
        batch_frames: N, frames per window (fewer if the video is shorter).
        intervals: frame intervals of DIP-Vid-Flow windows (DIP-Vid uses 1).
        lr: Adam learning rate.
        seed: network initialisation and window order; noise_seed: the input noise.
    """

    epochs: int = 20
    iters_per_batch: int = 100
    batches_per_epoch: int = 50
    epoch_mode: str = "sampled"
    middle_batch: bool = True
    dip_iters: int = 5000
    dip_check_every: int = 100
    batch_frames: int = 5
    intervals: tuple[int, ...] = (1, 3, 5)
    lr: float = 1e-2
    seed: int = 0
    noise_seed: int = 0

    def __post_init__(self) -> None:
        check_choice("fit.epoch_mode", self.epoch_mode, EPOCH_MODES)
        counts = ("epochs", "iters_per_batch", "batches_per_epoch", "dip_iters")
        for name in (*counts, "dip_check_every", "batch_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"fit.{name} must be >= 1, got {getattr(self, name)}")
        intervals = tuple(int(k) for k in self.intervals)
        if not intervals or min(intervals) < 1:
            raise ValueError(f"fit.intervals must be positive, got {intervals}")
        object.__setattr__(self, "intervals", intervals)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the ICCV'19 losses (``model.loss``; 0 turns one off): L = recon L_r +
    flow L_f + consistency L_c + perceptual L_p (L_f, L_c: dip_vid_flow only).

    Attributes:
        vgg_weights: local VGG16 weights for L_p (needed when ``perceptual`` > 0).
        perceptual_input: what VGG16 sees (``losses.PERCEPTUAL_INPUTS``): ``imagenet``
            (normalised RGB) or ``code`` (the public code's BGR in [0, 1]).
    """

    recon: float = 1.0
    flow: float = 0.1
    consistency: float = 1.0
    perceptual: float = 0.01
    vgg_weights: str | None = None
    perceptual_input: str = "imagenet"

    def __post_init__(self) -> None:
        weights = (self.recon, self.flow, self.consistency, self.perceptual)
        if min(weights) < 0:
            raise ValueError(f"loss weights must be >= 0, got {weights}")
        check_choice("loss.perceptual_input", self.perceptual_input, PERCEPTUAL_INPUTS)


@dataclass(frozen=True)
class FlowOptions:
    """Flows of the input video (``model.flow``), estimated once per fit.

    Attributes:
        method, raft_weights: the estimator (``dis``: OpenCV; ``raft``: a local weights file).
        cache: folder where estimated flows are cached (None: not cached on disk).
        normalize: divide flows by their per-interval maximum |flow| (the code).
        fill: what the hole shows to the flow estimator (``FLOW_FILLS``): ``mean`` (each
            frame's mean known colour, as the network's input frames), ``harmonic`` (the
            smoothest fill from the hole's border) or ``propagate`` (the propagate method's fill).
        valid_margin: pixels around the hole (and its warped twin) left out of L_f, where the
            estimated flow follows the fill rather than the scene.
    """

    method: str = "dis"
    raft_weights: str | None = None
    cache: str | None = None
    normalize: bool = True
    fill: str = "mean"
    valid_margin: int = 0

    def __post_init__(self) -> None:
        check_choice("flow.method", self.method, FLOW_METHODS)
        check_choice("flow.fill", self.fill, FLOW_FILLS)
        if self.valid_margin < 0:
            raise ValueError(f"flow.valid_margin must be >= 0, got {self.valid_margin}")


@dataclass(frozen=True)
class SpeedOptions:
    """Where and how fast the fit runs (``model.speed``); none changes what is computed
    beyond floating-point rounding.

    Attributes:
        accelerator: ``auto`` (the GPU when there is one), ``cpu`` or ``gpu``.
        precision: ``32-true``, ``bf16-mixed`` (bf16 autocast of the forward and losses) or
            ``auto`` (:func:`speed.resolve_precision`: bf16-mixed on a CPU with bf16 units,
            32-true elsewhere and for dip_vid_3dcn), resolved for the fit's device and logged.
        channels_last: channels-last memory format: True, False or ``auto``
            (:func:`speed.resolve_channels_last`).
        compile, compile_mode: ``torch.compile`` of the network with ``mode`` (e.g.
            ``reduce-overhead``: CUDA graphs for the fixed window shape).
        fused_adam: one fused Adam kernel over all parameters.
        cache_target_features: L_p's VGG16 features of the frames computed once per fit
            instead of every iteration (about 33 MB per 192x384 frame on the device).
    """

    accelerator: str = "auto"
    precision: str = speed.FP32
    channels_last: bool | str = False
    compile: bool = False
    compile_mode: str | None = None
    fused_adam: bool = True
    cache_target_features: bool = True

    def __post_init__(self) -> None:
        check_choice("speed.accelerator", self.accelerator, ACCELERATORS)
        check_choice("speed.precision", self.precision, PRECISIONS)


def options(cls: type[Options], value: Options | Mapping[str, Any] | None) -> Options:
    """``value`` as ``cls``: itself, built from a mapping (a config node), or the defaults."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s) {unknown}: one of {sorted(known)}")
    return cls(**dict(value))


def as_dict(value: Any) -> dict[str, Any]:
    """A dataclass of options as plain values (the system's hyperparameters)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(value).items()}
