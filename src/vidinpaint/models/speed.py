"""CPU speed defaults of the systems: bf16 autocast where the CPU has bf16 units, and the
memory format measured faster with it (``experiments/benchmarks.md``, "CPU fast paths").

``precision: auto`` (the internal fits; ``${cpu_precision:}`` in ``conf/trainer/cpu.yaml``)
resolves on a CPU whose oneDNN runs bf16 natively (AVX512-BF16 or AMX, torch's own check) to
``bf16-mixed``, elsewhere to ``32-true``; 3D networks stay fp32 on the CPU
(:func:`fp32_3d_on_cpu`); ``channels_last: auto`` to channels-last 2D networks
on the CPU. On GPUs both stay what they were (32-true for the fits, the GPU trainers' explicit
``bf16-mixed``, contiguous unless ``model.channels_last=true``).
"""

from __future__ import annotations

import contextlib

import torch

AUTO = "auto"
FP32 = "32-true"
BF16 = "bf16-mixed"


def cpu_bf16_supported() -> bool:
    """oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def cpu_precision() -> str:
    """The CPU trainer's precision: ``bf16-mixed`` where the CPU supports bf16, else
    ``32-true`` (the resolver ``${cpu_precision:}`` of ``conf/trainer/cpu.yaml``)."""
    return BF16 if cpu_bf16_supported() else FP32


def resolve_precision(precision: str, device: torch.device, dims: int = 2) -> str:
    """``auto`` -> :func:`cpu_precision` for a 2D network on the CPU, ``32-true`` for a 3D
    one (:func:`fp32_3d_on_cpu`) and on GPUs; others unchanged. ``dims``: 2 or 3."""
    if precision != AUTO:
        return precision
    return cpu_precision() if device.type == "cpu" and dims == 2 else FP32


def fp32_3d_on_cpu(device: torch.device) -> contextlib.AbstractContextManager:
    """Turns CPU bf16 autocast off around a 3D network: oneDNN's bf16 Conv3d weight gradient
    (torch 2.14.1, AVX512-BF16 without AMX) is wrong at small sizes: non-finite or 1e35 times
    too large for a 4->16 5x5x5 convolution on 2x4x16x16 (the quickstart's 3DCN), correct at
    1x32x64x64. A no-op on GPUs and without CPU autocast."""
    if device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return torch.autocast("cpu", enabled=False)
    return contextlib.nullcontext()


def resolve_channels_last(channels_last: bool | str, device: torch.device, dims: int) -> bool:
    """``auto`` -> channels-last for 2D networks on the CPU (oneDNN's 2D convolutions are
    faster in NHWC at the papers' sizes, fp32 and bf16), the contiguous format for 3D networks
    (NDHWC: +2-5% at 32x64x64, -13% at the quickstart's 4x16x16) and on GPUs; True/False
    unchanged. ``dims``: the network's spatial dimensions, 2 or 3."""
    if channels_last != AUTO:
        return bool(channels_last)
    return device.type == "cpu" and dims == 2
