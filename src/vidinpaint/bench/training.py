"""vidinpaint-bench train: one training iteration of a method (its own ``training_step``
under autocast, backward, optimizer step) on a synthetic sample of the paper's shape: time,
peak memory, FLOPs and MFU."""

from __future__ import annotations

import logging
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from torch.utils.flop_counter import FlopCounterMode

from vidinpaint import models
from vidinpaint.bench.common import (
    as_size,
    device_name,
    environment,
    peak_memory_mb,
    peak_tflops_for,
    resolve_device,
    synchronize,
)
from vidinpaint.errors import check_choice
from vidinpaint.models import speed

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
# the bench's precision names -> the systems' (Lightning's)
LIGHTNING_PRECISION = {"fp32": speed.FP32, "bf16": speed.BF16}


def resolve_precision(cfg: DictConfig, device: torch.device) -> str:
    """``fp32`` or ``bf16``; ``auto`` is what the commands use there (``models.speed``: bf16
    on a CPU with bf16 units, fp32 on GPUs, other CPUs and for DIP-Vid-3DCN's 3D network)."""
    check_choice("precision", cfg.precision, PRECISIONS)
    if cfg.precision != "auto":
        return cfg.precision
    dims = 3 if cfg.model.method == "dip_vid_3dcn" else 2
    return "bf16" if speed.resolve_precision(speed.AUTO, device, dims) == speed.BF16 else "fp32"


def autocast(device: torch.device, precision: str):
    """bf16 autocast for ``bf16``, none for ``fp32`` (a resolved precision)."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def first_optimizer(configured: Any) -> torch.optim.Optimizer:
    """The optimizer out of whatever ``configure_optimizers`` returned."""
    if isinstance(configured, torch.optim.Optimizer):
        return configured
    if isinstance(configured, dict):
        return first_optimizer(configured["optimizer"])
    if isinstance(configured, (list, tuple)) and configured:
        return first_optimizer(configured[0])
    raise ValueError(f"cannot find an optimizer in configure_optimizers() -> {configured!r}")


def external_batch(
    batch_size: int, clip_len: int, size: tuple[int, int], device: torch.device
) -> dict[str, torch.Tensor]:
    """Synthetic training batch of the external methods: random clips with one static box hole
    of 7/16 of each side (the AAAI'19 training holes are 3/8 to 1/2 of the side)."""
    height, width = size
    video = torch.rand(batch_size, clip_len, 3, height, width, device=device)
    mask = torch.zeros(batch_size, clip_len, 1, height, width, device=device)
    box_h, box_w = max(1, height * 7 // 16), max(1, width * 7 // 16)
    y0, x0 = (height - box_h) // 2, (width - box_w) // 2
    mask[..., y0 : y0 + box_h, x0 : x0 + box_w] = 1
    masked = video * (1 - mask) + 0.5 * mask
    return {"video": video, "mask": mask, "masked": masked}


def training_iteration(
    system: torch.nn.Module, batch: dict[str, Any], device: torch.device, precision: str
) -> Callable[[], None]:
    """One training iteration as Lightning runs it with automatic optimisation: the system's
    own ``training_step`` (forward + losses) under autocast, backward, optimizer step."""
    optimizer = first_optimizer(system.configure_optimizers())

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = system.training_step(batch, 0)
        loss.backward()
        optimizer.step()

    return step


def random_vgg_weights(folder: Path) -> Path:
    """A randomly initialised VGG16 ``features`` state dict (no ImageNet weights are on disk):
    the perceptual loss then costs what it costs with real weights."""
    from torchvision.models.vgg import cfgs, make_layers

    path = folder / "vgg16_random_init.pt"
    if not path.is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            features = make_layers(cfgs["D"])
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(features.state_dict(), path)
    return path


def uses_random_vgg(cfg: DictConfig) -> bool:
    """The model has a perceptual loss whose VGG16 weights file is not on disk."""
    loss = cfg.model.get("loss")
    if not loss or not loss.get("perceptual"):
        return False
    return not (loss.get("vgg_weights") and Path(loss.vgg_weights).is_file())


def build_system(cfg: DictConfig, compile: bool) -> torch.nn.Module:
    """``cfg.model`` with the bench's speed switches, on the bench device, configured as
    Lightning does (``configure_model``) and in training mode. The internal systems get the
    bench's precision as their ``speed.precision``."""
    device = resolve_device(cfg.device)
    model_cfg = cfg.model.copy()
    # the internal systems keep their speed switches under ``speed``, the others at the top
    switched = model_cfg.get("speed", model_cfg)
    switches = [("channels_last", cfg.channels_last), ("compile", compile)]
    if "precision" in switched:
        precision = LIGHTNING_PRECISION[resolve_precision(cfg, device)]
        switches.append(("precision", precision))
    for key, value in switches:
        if key in switched:
            switched[key] = value
        elif value and value != speed.AUTO:
            raise ValueError(f"model={cfg.model.method} has no {key} option")
    if uses_random_vgg(cfg):
        model_cfg.loss.vgg_weights = str(random_vgg_weights(Path(cfg.paths.output_dir)))
    system = hydra.utils.instantiate(model_cfg)
    system.to(device)
    system.configure_model()
    system.train()
    return system


def channels_last_weights(system: torch.nn.Module) -> bool:
    """Some convolution of ``system`` keeps its weights channels-last (NHWC / NDHWC)."""
    for module in system.modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd) and module.weight.dim() in (4, 5):
            weight = module.weight
            fmt = torch.channels_last if weight.dim() == 4 else torch.channels_last_3d
            if not weight.is_contiguous() and weight.is_contiguous(memory_format=fmt):
                return True
    return False


def internal_batch(
    num_frames: int, size: tuple[int, int], uses_flow: bool, device: torch.device
) -> dict[str, Any]:
    """Synthetic window of the internal-learning systems, built by their own data code
    (``WindowDataset``, ``FlowTargets``): random frames, a centred box hole, the fixed noise
    input and, with flow, a uniform 1.5-pixel estimated flow (interval 1, forward)."""
    from vidinpaint.models.internal.windows import FlowTargets, Window, WindowDataset
    from vidinpaint.nets.skipnet import make_noise

    height, width = size
    video = torch.rand(num_frames, 3, height, width)
    hole = external_batch(1, num_frames, size, torch.device("cpu"))["mask"][0]
    noise = make_noise(num_frames, height, width, seed=0)
    flows = None
    if uses_flow:
        pairs = max(num_frames - 1, 0)
        flow = torch.full((pairs, 2, height, width), 1.5)
        flows = FlowTargets({(1, "f"): flow, (1, "b"): -flow}, hole)
    batch = WindowDataset(video, hole, noise, flows)[Window(0, num_frames, 1, "f")]
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def is_internal(cfg: DictConfig) -> bool:
    return models.method(cfg.model.method).family == models.FITTED


def sample_shape(cfg: DictConfig) -> tuple[int, int, tuple[int, int]]:
    """(batch_size, clip_len, size) of one iteration; null settings take the paper's sample:
    external: ``batch_size`` clips of ``data.clip_len`` frames at ``data.size``; internal: one
    window of ``model.fit.batch_frames`` frames (1 for DIP) at ``il_size``."""
    if is_internal(cfg):
        frames = 1 if cfg.model.method == "dip" else cfg.model.fit.batch_frames
        clip_len = cfg.clip_len if cfg.clip_len is not None else frames
        return 1, int(clip_len), as_size(cfg.size if cfg.size is not None else cfg.il_size)
    clip_len = cfg.clip_len if cfg.clip_len is not None else cfg.data.clip_len
    size = cfg.size if cfg.size is not None else cfg.data.size
    return int(cfg.batch_size), int(clip_len), as_size(size)


def make_step(
    cfg: DictConfig, system: torch.nn.Module, device: torch.device
) -> tuple[Callable[[], None], dict[str, Any]]:
    """A closure running one training iteration of ``system`` (its own ``training_step``,
    backward, optimizer step) on synthetic inputs, and the shape of that iteration."""
    batch_size, clip_len, size = sample_shape(cfg)
    if is_internal(cfg):
        batch = internal_batch(clip_len, size, system.uses_flow, device)
    else:
        batch = external_batch(batch_size, clip_len, size, device)
    shape = {"batch_size": batch_size, "clip_len": clip_len, "size": list(size)}
    return training_iteration(system, batch, device, resolve_precision(cfg, device)), shape


def count_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of ``step`` (forward + backward; optimizer updates are not matmuls
    or convolutions, so FlopCounterMode does not count them)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def time_steps(step: Callable[[], None], device: torch.device, iters: int) -> list[float]:
    """Wall-clock seconds of ``iters`` calls of ``step``, each synchronised on CUDA."""
    times = []
    for _ in range(iters):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def bench_train(cfg: DictConfig) -> dict[str, Any]:
    """Times ``cfg.iters`` training iterations of ``cfg.model`` after ``cfg.warmup`` more.

    The first iteration runs under FlopCounterMode (FLOPs of forward + backward) and is not
    timed; with ``compile=true`` FLOPs are counted on an eager copy built from the same config.
    Returns one record: ms per iteration (median), samples/s, peak memory, FLOPs, TFLOP/s, MFU.
    """
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with warnings.catch_warnings():
        # training_step logs through self.log, which is a no-op (with a warning) without a Trainer
        warnings.filterwarnings("ignore", message=".*self.log.*")
        warnings.filterwarnings("ignore", message=".*self.trainer.*")
        if cfg.compile:
            eager = build_system(cfg, compile=False)
            flops = count_flops(make_step(cfg, eager, device)[0])
            del eager
            system = build_system(cfg, compile=True)
            step, shape = make_step(cfg, system, device)
        else:
            system = build_system(cfg, compile=False)
            step, shape = make_step(cfg, system, device)
            flops = count_flops(step)
        iters = int(cfg.iters if cfg.iters is not None else (20 if device.type == "cuda" else 3))
        warmup = int(cfg.warmup if cfg.warmup is not None else (5 if device.type == "cuda" else 0))
        if iters < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        time_steps(step, device, warmup)
        times = time_steps(step, device, iters)
    seconds = statistics.median(times)
    memory_mb, memory_kind = peak_memory_mb(device)
    precision = resolve_precision(cfg, device)
    achieved = flops / seconds / 1e12
    peak, peak_basis = (
        (float(cfg.peak_tflops), "given") if cfg.peak_tflops else peak_tflops_for(device, precision)
    )
    return {
        "mode": "train",
        "model": cfg.model.method,
        "device": device.type,
        "device_name": device_name(device),
        "precision": precision,
        "channels_last": channels_last_weights(system),
        "compile": bool(cfg.compile),
        **shape,
        "params": sum(p.numel() for p in system.parameters()),
        "iters": iters,
        "warmup": warmup,
        "ms_per_iter": 1e3 * seconds,
        "ms_min": 1e3 * min(times),
        "ms_max": 1e3 * max(times),
        "samples_per_s": shape["batch_size"] / seconds,
        "peak_memory_mb": memory_mb,
        "memory_kind": memory_kind,
        "flops_per_iter": flops,
        "tflops_per_s": achieved,
        "peak_tflops": peak,
        "peak_basis": peak_basis,
        "mfu": achieved / peak if peak else None,
        "notes": notes_for(cfg),
        **environment(),
    }


def notes_for(cfg: DictConfig) -> str:
    """What differs from a real training run."""
    notes = ["synthetic input tensors (no data loading)"]
    if uses_random_vgg(cfg):
        notes.append(
            "perceptual loss with randomly initialised VGG16 weights (no ImageNet weights on "
            "disk; same cost as real ones)"
        )
    if is_internal(cfg):
        notes.append("one window at interval 1, forward; flow targets: uniform 1.5 px")
    return "; ".join(notes)


TRAIN_COLUMNS = {
    "model": "model",
    "device": "device",
    "precision": "prec",
    "batch_size": "B",
    "clip_len": "T",
    "size": "HxW",
    "ms_per_iter": "ms/iter",
    "samples_per_s": "samples/s",
    "peak_memory_mb": "peak MiB",
    "flops_per_iter": "FLOP/iter",
    "tflops_per_s": "TFLOP/s",
    "mfu": "MFU",
}
