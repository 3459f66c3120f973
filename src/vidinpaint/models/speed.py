"""CPU speed defaults of the systems: bf16 autocast where the CPU has bf16 units, and the
memory format measured faster with it (``experiments/benchmarks.md``, "CPU fast paths").

``precision: auto`` (the internal fits; ``${cpu_precision:}`` in ``conf/trainer/cpu.yaml``)
resolves on a CPU whose oneDNN runs bf16 natively (AVX512-BF16 or AMX, torch's own check) to
``bf16-mixed``, elsewhere to ``32-true``; the AAAI'19 3DCN runs bf16 but for its thin first
layer (:func:`thin_conv3d_in_fp32`), DIP-Vid-3DCN in fp32; ``channels_last: auto`` to
channels-last 2D networks
on the CPU. On GPUs both stay what they were (32-true for the fits, the GPU trainers' explicit
``bf16-mixed``, contiguous unless ``model.channels_last=true``).

On a machine without GPUs the commands also keep the memory their process frees for its next
allocations (:func:`keep_freed_memory`): a CPU step frees and re-allocates gigabytes of
activations, which glibc would otherwise hand back to the kernel and fault in anew each step.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator

import torch
from lightning.fabric.accelerators.cuda import num_cuda_devices
from torch import Tensor, nn

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
    one (DIP-Vid-3DCN: its thin 3D convolutions, :data:`THIN_CONV3D_CHANNELS`, are not
    checked in bf16) and on GPUs; others unchanged. ``dims``: 2 or 3."""
    if precision != AUTO:
        return precision
    return cpu_precision() if device.type == "cpu" and dims == 2 else FP32


# oneDNN's bf16 Conv3d weight gradient is wrong for thin inputs (torch 2.14.1, AVX512-BF16
# without AMX): the 3DCN's first layer, 4 -> 16 channels 5x5x5 on 2x4x16x16, gave non-finite
# or 1e21 times too large gradients in 30 of 30 trials; its other layers (16 to 256 input
# channels, the transposed ones too) agree with fp32 to 0.5% (experiments/benchmarks.md).
THIN_CONV3D_CHANNELS = 16


@contextlib.contextmanager
def thin_conv3d_in_fp32(net: nn.Module, device: torch.device) -> Iterator[None]:
    """Under CPU bf16 autocast, runs the 3D convolutions of ``net`` with fewer than
    ``THIN_CONV3D_CHANNELS`` input channels in fp32 (autocast off around each, input cast to
    fp32) and the rest in bf16. The autocast state is restored on leaving, error or not. A
    no-op on GPUs and without CPU autocast."""
    if device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        yield
        return
    thin = [
        m
        for m in net.modules()
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)) and m.in_channels < THIN_CONV3D_CHANNELS
    ]

    def autocast_off(module: nn.Module, args: tuple) -> tuple:
        torch.set_autocast_enabled("cpu", False)
        return tuple(a.float() if torch.is_tensor(a) else a for a in args)

    def autocast_on(module: nn.Module, args: tuple, output: Tensor) -> None:
        torch.set_autocast_enabled("cpu", True)

    handles = [
        h
        for m in thin
        for h in (m.register_forward_pre_hook(autocast_off), m.register_forward_hook(autocast_on))
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.set_autocast_enabled("cpu", True)


def resolve_channels_last(channels_last: bool | str, device: torch.device, dims: int) -> bool:
    """``auto`` -> channels-last for 2D networks on the CPU (oneDNN's 2D convolutions are
    faster in NHWC at the papers' sizes, fp32 and bf16), the contiguous format for 3D networks
    (NDHWC: +2-5% at 32x64x64, -13% at the quickstart's 4x16x16) and on GPUs; True/False
    unchanged. ``dims``: the network's spatial dimensions, 2 or 3."""
    if channels_last != AUTO:
        return bool(channels_last)
    return device.type == "cpu" and dims == 2


# glibc mallopt() parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
MALLOC_ENV = "VIDINPAINT_MALLOC"


def keep_freed_memory() -> str:
    """On a machine without GPUs, makes glibc's malloc keep what the process frees for its next
    allocations: no block is mmap-ed (``M_MMAP_MAX`` 0; glibc mmaps every block over 32 MiB,
    a CPU step's activations, and unmaps it when freed) and the heap is never trimmed
    (``M_TRIM_THRESHOLD`` -1). A CombCN step at 1x32x128x128 then page-faults 1/4 as often and
    runs 1.18x faster, a DIP-Vid-Flow window 1.39x, for 1.1-1.3x the peak memory
    (``experiments/benchmarks.md``). ``VIDINPAINT_MALLOC=system`` leaves malloc as it is.
    Call it before the large allocations, at a command's start. Returns what was done, for
    the log."""
    if os.environ.get(MALLOC_ENV, "reuse") == "system":
        return f"malloc: the system's ({MALLOC_ENV}=system)"
    if num_cuda_devices() > 0:
        return "malloc: the system's (GPUs present)"
    libc_name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(libc_name).mallopt if libc_name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return "malloc: the system's (not glibc)"
    if not (mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, -1)):
        return "malloc: the system's (mallopt refused)"
    return f"malloc: freed memory kept for reuse (no mmap, no trim; {MALLOC_ENV}=system: off)"
