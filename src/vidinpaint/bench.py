"""vidinpaint-bench: data throughput and training-step speed, memory, FLOPs and MFU.

vidinpaint-bench data                                  # clips/s: DataModule vs raw decord
vidinpaint-bench data data_bench.num_clips=64 data.clip_len=16
vidinpaint-bench train model=combcn                    # one 32x128x128 sample per step
vidinpaint-bench train model=cn3d device=cuda precision=bf16 channels_last=true compile=true
vidinpaint-bench train model=dip_vid_flow iters=20 out=bench_il.json

The first word picks the mode (``data`` or ``train``): Hydra takes no positional arguments,
so :func:`main` turns a leading ``data``/``train`` into the override ``mode=...`` (writing
``mode=train`` works too). Every run prints a table and writes ``bench.json`` into its Hydra
output folder, and also to ``out=PATH`` when given. Settings: ``conf/bench.yaml``.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from vidinpaint import CONF_DIR, checks, errors, models, runs
from vidinpaint.models import speed

log = logging.getLogger(__name__)

COMMAND = "vidinpaint-bench"
MODES = ("data", "train")
PRECISIONS = ("auto", "fp32", "bf16")
# the bench's precision names -> the systems' (Lightning's)
LIGHTNING_PRECISION = {"fp32": speed.FP32, "bf16": speed.BF16}

# Dense peak TFLOP/s per GPU (vendor data sheets, SXM parts). "tf32" is what fp32
# convolutions run at while torch.backends.cudnn.allow_tf32 is on (PyTorch's default).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H100": {"bf16": 989.0, "tf32": 494.5, "fp32": 67.0},
    "H200": {"bf16": 989.0, "tf32": 494.5, "fp32": 67.0},
    "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
}


# ----------------------------------------------------------------------------- shared helpers
def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but no CUDA GPU is visible (use device=cpu)")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cores = len(os.sched_getaffinity(0))
    return f"{platform.processor() or platform.machine()} CPU, {cores} cores"


def peak_tflops_for(device: torch.device, precision: str) -> tuple[float | None, str]:
    """Dense peak TFLOP/s of ``device`` at ``precision`` and the table row it came from."""
    if device.type != "cuda":
        return None, "n/a (CPU: give peak_tflops=)"
    name = torch.cuda.get_device_name(device)
    for gpu, peaks in PEAK_TFLOPS.items():
        if gpu in name:
            kind = precision
            if precision == "fp32" and torch.backends.cudnn.allow_tf32:
                kind = "tf32"
            return peaks[kind], f"{gpu} {kind} dense"
    return None, f"n/a ({name} not in the peak table: give peak_tflops=)"


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """Peak memory since the last reset: CUDA allocator peak, or the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak RSS (process)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def as_size(size: Any) -> tuple[int, int]:
    """``128`` or ``[128, 128]`` -> (height, width)."""
    if isinstance(size, int):
        return size, size
    values = tuple(int(v) for v in size)
    if len(values) != 2:
        raise ValueError(f"size must be an int or [height, width], got {list(values)}")
    return values


def write_results(cfg: DictConfig, result: dict[str, Any]) -> list[Path]:
    """Writes ``result`` to ``<output_dir>/bench.json`` and to ``out`` when given (atomic)."""
    paths = [Path(cfg.paths.output_dir) / "bench.json"]
    if cfg.get("out"):
        paths.append(Path(cfg.out))
    for path in paths:
        runs.write_json(path, result)
    return paths


def print_table(title: str, rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    """Rich table of ``rows``; ``columns`` maps record keys to headers (floats get 3 digits)."""
    table = Table(title=title)
    for header in columns.values():
        table.add_column(header, justify="right")
    for row in rows:
        cells = []
        for key in columns:
            value = row.get(key)
            if value is None:
                cells.append("n/a")
            elif isinstance(value, int) and value >= 10**6:
                cells.append(f"{value:.4g}")
            elif isinstance(value, float):
                cells.append(f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    console().print(table)


def console() -> Console:
    """Rich console; wide when the output is not a terminal (logs, CI) so tables stay whole."""
    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=200)


def environment() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        # other processes on the machine slow CPU timings: keep the load beside them
        "load_avg_1min": os.getloadavg()[0],
        "git_sha": runs.git_sha(),
    }


# ----------------------------------------------------------------------------- train mode
def resolve_precision(cfg: DictConfig, device: torch.device) -> str:
    """``fp32`` or ``bf16``; ``auto`` is what the commands use there (``models.speed``: bf16
    on a CPU with bf16 units, fp32 on GPUs, other CPUs and for DIP-Vid-3DCN's 3D network)."""
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
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


# ----------------------------------------------------------------------------- data mode
DATA_TARGETS = {"datamodule_2_workers_vs_raw": 0.8, "prepared_vs_full_resolution": 5.0}


def compose_data(overrides: list[str]) -> DictConfig:
    """A resolved ``data`` config composed from conf/ (e.g. ``data=folder``) with overrides."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        cfg = compose("bench", overrides=overrides)
    else:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("bench", overrides=overrides)
    return OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))


def shape_overrides(data_cfg: DictConfig) -> list[str]:
    """Overrides giving another dataset this one's clip length, size and batch size."""
    height, width = data_cfg.size
    return [
        f"data.clip_len={data_cfg.clip_len}",
        f"data.size=[{height},{width}]",
        f"data.batch_size={data_cfg.batch_size}",
    ]


def endless(loader: Any) -> Any:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def loader_throughput(
    datamodule: Any, num_workers: int, num_clips: int, warmup_batches: int, seed: int
) -> tuple[float, float, list[tuple[str, int]]]:
    """Seconds and clips/s of the DataModule's training loader (uint8 clips and masks, like raw
    decoding; the float batch is made on the training device) over at least ``num_clips``
    clips after ``warmup_batches`` untimed batches (worker start-up), and the (path, start) of
    the timed clips. The shuffle order depends only on ``seed``."""
    datamodule.num_workers = num_workers
    torch.manual_seed(seed)
    loader = datamodule.train_dataloader()

    stream = endless(loader)
    for _ in range(warmup_batches):
        next(stream)
    clips: list[tuple[str, int]] = []
    start = time.perf_counter()
    while len(clips) < num_clips:
        batch = next(stream)
        clips.extend(zip(batch["path"], batch["start"].tolist(), strict=True))
    seconds = time.perf_counter() - start
    stream.close()
    del stream, loader
    return seconds, len(clips) / seconds, clips


def raw_decode_throughput(
    clips: list[tuple[str, int]], clip_len: int, threads: int
) -> tuple[float, float] | None:
    """Seconds and clips/s of plain decord decoding of the same frame ranges at the source
    resolution (a reader per clip, ``get_batch`` of the contiguous range, no crop or resize),
    in this process. None when a source is not a video file (frame folders, .seq)."""
    import decord

    from vidinpaint.video_io import VIDEO_SUFFIXES

    if any(Path(path).suffix.lower() not in VIDEO_SUFFIXES for path, _ in clips):
        return None
    start = time.perf_counter()
    for path, first in clips:
        reader = decord.VideoReader(path, num_threads=threads)
        reader.get_batch(list(range(first, first + clip_len))).asnumpy()
        del reader
    seconds = time.perf_counter() - start
    return seconds, len(clips) / seconds


def dataset_rows(
    name: str, data_cfg: DictConfig, cfg: DictConfig, prepared_dir: Path | None
) -> list[dict[str, Any]]:
    """Rows of one dataset: the DataModule at each worker count, raw decord on the same clips
    and, with ``prepared_dir``, the DataModule again on clips cached by ``vidinpaint-prepare``
    (``write_index(with_clips=True)``) into that folder."""
    bench = cfg.data_bench
    kwargs = {"cache_dir": str(prepared_dir)} if prepared_dir is not None else {}
    datamodule = hydra.utils.instantiate(data_cfg, **kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    index = datamodule.index
    heights = sorted({v.height for v in index.videos})
    widths = sorted({v.width for v in index.videos})
    info = {
        "dataset": name,
        "clip_len": datamodule.clip_len,
        "size": "x".join(map(str, datamodule.size)),
        "sources": f"{len(index.videos)} videos, {heights[0]}..{heights[-1]} x "
        f"{widths[0]}..{widths[-1]}",
        "train_clips": len(index.split_clips("train")),
    }
    rows: list[dict[str, Any]] = []
    full: dict[int, float] = {}
    clips: list[tuple[str, int]] = []
    for workers in bench.worker_counts:
        seconds, rate, timed = loader_throughput(
            datamodule, int(workers), bench.num_clips, bench.warmup_batches, cfg.seed
        )
        clips = clips or timed
        full[int(workers)] = rate
        rows.append(
            {
                **info,
                "reader": "datamodule",
                "workers": int(workers),
                "clips": len(timed),
                "seconds": seconds,
                "clips_per_s": rate,
            }
        )
    raw = raw_decode_throughput(clips, datamodule.clip_len, bench.decode_threads)
    if raw is None:
        log.warning("%s: sources are not video files, no raw decord reference", name)
    else:
        rows.append(
            {
                **info,
                "reader": "raw decord",
                "workers": None,
                "clips": len(clips),
                "seconds": raw[0],
                "clips_per_s": raw[1],
            }
        )
        for row in rows[:-1]:
            row["vs_raw"] = row["clips_per_s"] / raw[1]
    if prepared_dir is not None:
        start = time.perf_counter()
        datamodule.write_index(with_clips=True)
        prepare_seconds = time.perf_counter() - start
        prepared = hydra.utils.instantiate(data_cfg, **kwargs)
        prepared.setup("fit")
        if any(c.cached is None for c in prepared.index.clips):
            raise RuntimeError(f"{name}: the prepared index in {prepared_dir} has no cached clips")
        for workers in bench.worker_counts:
            seconds, rate, timed = loader_throughput(
                prepared, int(workers), bench.num_clips, bench.warmup_batches, cfg.seed
            )
            rows.append(
                {
                    **info,
                    "reader": "datamodule, prepared clips",
                    "workers": int(workers),
                    "clips": len(timed),
                    "seconds": seconds,
                    "clips_per_s": rate,
                    "vs_full": rate / full[int(workers)],
                    "prepare_seconds": prepare_seconds,
                }
            )
    return rows


def data_targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets per dataset: DataModule with 2 workers >= 80% of raw decoding;
    prepared clips >= 5x the clips/s of full-resolution sources (same worker count)."""
    targets: dict[str, Any] = {}
    for row in rows:
        key = None
        if row["reader"] == "datamodule" and row["workers"] == 2 and "vs_raw" in row:
            key, value = "datamodule_2_workers_vs_raw", row["vs_raw"]
        elif row["reader"] == "datamodule, prepared clips" and row["workers"] == 0:
            key, value = "prepared_vs_full_resolution", row["vs_full"]
        if key is not None:
            targets[f"{row['dataset']}/{key}"] = {
                "value": value,
                "target": DATA_TARGETS[key],
                "met": value >= DATA_TARGETS[key],
            }
    return targets


def bench_data(cfg: DictConfig) -> dict[str, Any]:
    """Clips/s of (a) ``cfg.data`` (synthetic by default), (b) the sample videos under
    ``data_bench.samples`` (``data=folder``; skipped when unset), (c) the same samples as clips
    prepared by ``vidinpaint-prepare`` vs their full-resolution sources. Without samples, (c)
    runs on synthetic videos of ``data_bench.fullres_frame_size`` pixels instead."""
    output_dir = Path(cfg.paths.output_dir)
    rows = dataset_rows(cfg.data.name, cfg.data, cfg, None)
    samples = cfg.data_bench.samples
    overrides = shape_overrides(cfg.data)
    if samples and Path(samples).is_dir():
        folder = compose_data(["data=folder", f"data.root={Path(samples).resolve()}", *overrides])
        rows += dataset_rows("samples", folder, cfg, output_dir / "prepared-samples")
    else:
        if samples:
            log.warning("data_bench.samples=%s is not a folder: sample videos skipped", samples)
        size = int(cfg.data_bench.fullres_frame_size)
        synthetic = compose_data(
            [
                "data=synthetic",
                f"data.root={output_dir / f'synthetic-{size}'}",
                f"data.adapter.frame_size={size}",
                f"data.adapter.num_videos={cfg.data_bench.fullres_videos}",
                *overrides,
            ]
        )
        rows += dataset_rows(
            f"synthetic-{size}px", synthetic, cfg, output_dir / "prepared-synthetic"
        )
    return {
        "mode": "data",
        "device_name": device_name(torch.device("cpu")),
        "num_clips": cfg.data_bench.num_clips,
        "decode_threads": cfg.data_bench.decode_threads,
        "rows": rows,
        "targets": data_targets(rows),
        **environment(),
    }


DATA_COLUMNS = {
    "dataset": "dataset",
    "sources": "sources",
    "size": "clip HxW",
    "reader": "reader",
    "workers": "workers",
    "clips": "clips",
    "clips_per_s": "clips/s",
    "vs_raw": "vs raw",
    "vs_full": "vs full-res",
}


# ----------------------------------------------------------------------------- entry point
def run(cfg: DictConfig) -> dict[str, Any]:
    """Runs the bench ``cfg.mode``, prints its table, writes the JSON; returns the result."""
    if cfg.mode == "train":
        record = bench_train(cfg)
        row = {**record, "size": "x".join(map(str, record["size"]))}
        print_table(f"vidinpaint-bench train ({record['device_name']})", [row], TRAIN_COLUMNS)
        if record["notes"]:
            console().print(record["notes"])
        result = record
    elif cfg.mode == "data":
        result = bench_data(cfg)
        rows = [
            {**row, "workers": "in-process" if row["workers"] is None else row["workers"]}
            for row in result["rows"]
        ]
        print_table(
            f"vidinpaint-bench data (clip_len {cfg.data.clip_len}, {result['device_name']})",
            rows,
            DATA_COLUMNS,
        )
        for key, target in result["targets"].items():
            verdict = "met" if target["met"] else "NOT met"
            console().print(
                f"{key}: {target['value']:.3g} (target >= {target['target']}) {verdict}"
            )
    else:
        raise ValueError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    for path in write_results(cfg, result):
        log.info("wrote %s", path)
    return result


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="bench")
@errors.one_line_errors(COMMAND)
def hydra_main(cfg: DictConfig) -> None:
    if cfg.get("out"):
        checks.check_writable_folder(cfg.out, "out=")
    run(cfg)


def main() -> None:
    """``vidinpaint-bench [data|train] [overrides...]``: a leading mode word becomes
    ``mode=<word>`` before Hydra parses the command line."""
    if len(sys.argv) > 1 and sys.argv[1] in MODES:
        sys.argv = [sys.argv[0], f"mode={sys.argv[1]}", *sys.argv[2:]]
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
