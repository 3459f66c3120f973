"""What both benches share: the device, its peak FLOP/s and memory, the run's environment,
the printed table and the JSON result."""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from vidinpaint import runs

# Dense peak TFLOP/s per GPU (vendor data sheets, SXM parts). "tf32" is what fp32
# convolutions run at while torch.backends.cudnn.allow_tf32 is on (PyTorch's default).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H100": {"bf16": 989.0, "tf32": 494.5, "fp32": 67.0},
    "H200": {"bf16": 989.0, "tf32": 494.5, "fp32": 67.0},
    "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
}


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
