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
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from vidinpaint import runs

log = logging.getLogger(__name__)

MODES = ("data", "train")
PRECISIONS = ("fp32", "bf16")

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
    cores = len(__import__("os").sched_getaffinity(0))
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
            elif isinstance(value, float):
                cells.append(f"{value:.4g}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    Console().print(table)


def environment() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "git_sha": runs.git_sha(),
    }


# ----------------------------------------------------------------------------- train mode
def autocast(device: torch.device, precision: str):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
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


def external_step(
    system: torch.nn.Module, batch: dict[str, torch.Tensor], device: torch.device, precision: str
) -> Callable[[], None]:
    """One training iteration of a :class:`CompletionSystem`: its own ``training_step``
    (forward + eq. 1-3 losses) under autocast, backward, optimizer step."""
    optimizer = first_optimizer(system.configure_optimizers())

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = system.training_step(batch, 0)
        loss.backward()
        optimizer.step()

    return step


def build_system(cfg: DictConfig, compile: bool) -> torch.nn.Module:
    """``cfg.model`` with the bench's speed switches, on the bench device, configured."""
    model_cfg = cfg.model.copy()
    for key, value in (("channels_last", cfg.channels_last), ("compile", compile)):
        if key in model_cfg:
            model_cfg[key] = value
        elif value:
            raise ValueError(f"model={cfg.model.method} has no {key} option")
    system = hydra.utils.instantiate(model_cfg)
    system.to(resolve_device(cfg.device))
    system.configure_model()
    system.train()
    return system


def make_step(
    cfg: DictConfig, system: torch.nn.Module, device: torch.device
) -> tuple[Callable[[], None], dict[str, Any]]:
    """A closure running one training iteration of ``system`` on synthetic inputs, and the
    shape information of that iteration."""
    clip_len, size = int(cfg.clip_len), as_size(cfg.size)
    batch = external_batch(int(cfg.batch_size), clip_len, size, device)
    shape = {"batch_size": int(cfg.batch_size), "clip_len": clip_len, "size": list(size)}
    return external_step(system, batch, device, cfg.precision), shape


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
        warmup = int(
            cfg.warmup if cfg.warmup is not None else (5 if device.type == "cuda" else 0)
        )
        if iters < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        time_steps(step, device, warmup)
        times = time_steps(step, device, iters)
    seconds = statistics.median(times)
    memory_mb, memory_kind = peak_memory_mb(device)
    achieved = flops / seconds / 1e12
    peak, peak_basis = (
        (float(cfg.peak_tflops), "given") if cfg.peak_tflops else peak_tflops_for(device, cfg.precision)
    )
    return {
        "mode": "train",
        "model": cfg.model.method,
        "device": device.type,
        "device_name": device_name(device),
        "precision": cfg.precision,
        "channels_last": bool(cfg.channels_last),
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
    return ""


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


# ----------------------------------------------------------------------------- entry point
def run(cfg: DictConfig) -> dict[str, Any]:
    """Runs the bench ``cfg.mode``, prints its table, writes the JSON; returns the result."""
    if cfg.mode == "train":
        record = bench_train(cfg)
        row = {**record, "size": "x".join(map(str, record["size"]))}
        print_table(f"vidinpaint-bench train ({record['device_name']})", [row], TRAIN_COLUMNS)
        if record["notes"]:
            Console().print(record["notes"])
        result = record
    else:
        raise ValueError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    for path in write_results(cfg, result):
        log.info("wrote %s", path)
    return result


@hydra.main(version_base="1.3", config_path="../../conf", config_name="bench")
def hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    """``vidinpaint-bench [data|train] [overrides...]``: a leading mode word becomes
    ``mode=<word>`` before Hydra parses the command line."""
    if len(sys.argv) > 1 and sys.argv[1] in MODES:
        sys.argv = [sys.argv[0], f"mode={sys.argv[1]}", *sys.argv[2:]]
    hydra_main()


if __name__ == "__main__":
    main()
