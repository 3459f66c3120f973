"""CPU speed defaults (``models/speed.py``): bf16 autocast chosen at start where the CPU has
bf16 units (the detection is monkeypatched: supported / unsupported), turned off by
``precision=32-true``; channels-last 2D networks. On tiny inputs the outputs equal fp32's
within the stated tolerances. The allocator setting (``keep_freed_memory``): its switches,
and the page faults it saves, counted in a child process. No timing here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers import compose_config
from vidinpaint.models import speed
from vidinpaint.models.completion import CompletionSystem
from vidinpaint.models.internal import InternalLearningSystem
from vidinpaint.nets.cn3d import CN3D
from vidinpaint.nets.skipnet import make_noise

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
# Tolerances, as fractions of the fp32 output's largest |value|. bf16 keeps 8 bits of
# mantissa: CombCN's output (17 convolutions with BatchNorm, random weights) differs from fp32's
# by at most 10%, 2% on average; the skip net's (noise input, BatchNorm over its deepest 1x2
# maps of 3 frames) by at most 50%, 5% on average (measured: 31-44%, 3.6-3.8%)
BF16_TOLERANCE = {"combcn": (0.1, 0.02), "cn3d": (0.1, 0.02), "skipnet": (0.5, 0.05)}
# the memory format alone changes only the order of the sums (measured: below 2e-4)
FORMAT_RTOL = 1e-3


def assert_close(got: torch.Tensor, expected: torch.Tensor, bf16_net: str | None) -> None:
    """``got`` equals ``expected`` (fp32) within the bf16 tolerance of ``bf16_net`` or, with
    None, the memory-format one; a bf16 output must differ (bf16 was really on)."""
    error = (got.float() - expected).abs() / expected.abs().max()
    if bf16_net:
        largest, mean = BF16_TOLERANCE[bf16_net]
        assert error.max() > FORMAT_RTOL, "bf16 was off"
        assert error.mean() < mean and error.max() < largest, (error.mean(), error.max())
    else:
        assert error.max() < FORMAT_RTOL, error.max()


@pytest.fixture(params=[True, False], ids=["bf16-cpu", "no-bf16-cpu"])
def bf16_cpu(request, monkeypatch) -> bool:
    monkeypatch.setattr(speed, "cpu_bf16_supported", lambda: request.param)
    return request.param


def test_auto_precision_follows_the_detection(bf16_cpu):
    expected = speed.BF16 if bf16_cpu else speed.FP32
    assert speed.resolve_precision("auto", CPU) == expected
    assert speed.resolve_precision("auto", CPU, dims=3) == speed.FP32
    assert speed.resolve_precision("auto", CUDA) == speed.FP32
    assert speed.resolve_precision("32-true", CPU) == speed.FP32
    assert speed.resolve_channels_last("auto", CPU, 2)
    assert not speed.resolve_channels_last("auto", CPU, 3)
    assert not speed.resolve_channels_last("auto", CUDA, 2)
    assert not speed.resolve_channels_last(False, CPU, 2)


def test_trainer_precision_cpu_default_forced_off_and_gpu_unchanged(bf16_cpu, tmp_path):
    def trainer(*overrides):
        return compose_config("train", ["model=combcn", *overrides], tmp_path).trainer

    assert trainer("trainer=cpu").precision == ("bf16-mixed" if bf16_cpu else "32-true")
    assert trainer("trainer=cpu", "trainer.precision=32-true").precision == "32-true"
    assert trainer("trainer=gpu").precision == "bf16-mixed"
    assert trainer("trainer=ddp_sim").precision == "32-true"


def fake_trainer(system: CompletionSystem, device: torch.device, precision: str) -> None:
    """What ``configure_model`` reads of a Trainer: its root device and precision."""
    strategy = SimpleNamespace(root_device=device)
    system._trainer = SimpleNamespace(strategy=strategy, precision=precision)


def tiny_clip() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(2, 4, 3, 32, 32, generator=generator)
    mask = torch.zeros(2, 4, 1, 32, 32)
    mask[..., 8:20, 10:22] = 1
    return video, mask


def combcn_outputs(system: CompletionSystem, precision: str) -> dict[str, torch.Tensor]:
    video, mask = tiny_clip()
    bf16 = precision == speed.BF16
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.no_grad():
        out = system(system.fill(video, mask), mask)
    return {k: out[k].float() for k in ("cn3d", "combcn")}


def test_combcn_cpu_default_matches_fp32(bf16_cpu, tmp_path):
    """``trainer=cpu`` + ``model.channels_last=auto``: a channels-last CombCN, a contiguous
    fp32 3DCN, bf16 autocast where supported; outputs equal fp32's within the tolerances."""
    cfg = compose_config("train", ["model=combcn", "trainer=cpu"], tmp_path)
    torch.manual_seed(0)
    reference = CompletionSystem(method="combcn")
    system = CompletionSystem(method="combcn", channels_last=cfg.model.channels_last)
    system.load_state_dict(reference.state_dict())
    fake_trainer(system, CPU, cfg.trainer.precision)
    system.configure_model()
    assert system.combcn.layers[2].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert system.cn3d.layers[2].conv.weight.is_contiguous()
    expected = combcn_outputs(reference, speed.FP32)
    got = combcn_outputs(system, cfg.trainer.precision)
    # the 3DCN runs in bf16 but for its thin first layer (speed.thin_conv3d_in_fp32)
    assert_close(got["cn3d"], expected["cn3d"], "cn3d" if bf16_cpu else None)
    assert_close(got["combcn"], expected["combcn"], "combcn" if bf16_cpu else None)


def test_combcn_precision_forced_off_keeps_fp32(tmp_path):
    cfg = compose_config("train", ["model=combcn", "trainer.precision=32-true"], tmp_path)
    torch.manual_seed(0)
    reference = CompletionSystem(method="combcn")
    system = CompletionSystem(method="combcn", channels_last=True)
    system.load_state_dict(reference.state_dict())
    fake_trainer(system, CPU, cfg.trainer.precision)
    system.configure_model()
    got = combcn_outputs(system, cfg.trainer.precision)
    expected = combcn_outputs(reference, speed.FP32)
    for key in ("cn3d", "combcn"):
        assert_close(got[key], expected[key], None)


def test_gpu_trainer_keeps_the_contiguous_format():
    system = CompletionSystem(method="combcn", channels_last="auto")
    fake_trainer(system, CUDA, "bf16-mixed")
    system.configure_model()
    assert system.combcn.layers[2].conv.weight.is_contiguous()


@pytest.mark.parametrize("precision", ["auto", "32-true"])
def test_internal_fit_settings_match_fp32(bf16_cpu, precision):
    """DIP-Vid-Flow's network as a fit resolves it: ``auto`` -> bf16 where supported and
    channels-last on the CPU; ``32-true`` forces fp32. Outputs within the tolerances."""
    settings = dict(method="dip_vid_flow", pad_mode="replicate", loss={"perceptual": 0.0})
    reference = InternalLearningSystem(**settings)
    system = InternalLearningSystem(
        **settings, speed={"precision": precision, "channels_last": "auto"}
    )
    system.configure_model()
    bf16 = bf16_cpu and precision == "auto"
    assert system._precision == (speed.BF16 if bf16 else speed.FP32)
    conv = next(m for m in system.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    noise = make_noise(3, 64, 128, seed=0)
    with torch.no_grad():
        expected = reference(noise)
        with system.autocast(CPU):
            got = system(noise.contiguous(memory_format=torch.channels_last))
    for out, ref in zip(got, expected):  # image, flow
        assert_close(out, ref, "skipnet" if bf16 else None)


def test_internal_3d_network_stays_fp32(bf16_cpu):
    system = InternalLearningSystem(
        method="dip_vid_3dcn",
        pad_mode="replicate",
        loss={"perceptual": 0.0},
        speed={"precision": "auto"},
    )
    system.configure_model()
    assert system._precision == speed.FP32


def test_thin_3d_convolutions_run_in_fp32_under_cpu_autocast():
    """The 3DCN's first layer (4 input channels) computes in fp32, the others in bf16; the
    autocast state comes back after the network, also when it raises."""
    net = CN3D()
    dtypes = {}
    for number in (1, 2, 12):
        net.layers[number - 1].conv.register_forward_hook(
            lambda module, args, out, n=number: dtypes.__setitem__(n, out.dtype)
        )
    video, mask = torch.rand(1, 4, 3, 16, 16), torch.ones(1, 4, 1, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with speed.thin_conv3d_in_fp32(net, CPU):
            net(video, mask)
        assert torch.is_autocast_enabled("cpu")
        with pytest.raises(ValueError), speed.thin_conv3d_in_fp32(net, CPU):
            net(video[..., :15], mask[..., :15])  # 15 px: CN3D refuses
        assert torch.is_autocast_enabled("cpu")
    assert dtypes == {1: torch.float32, 2: torch.bfloat16, 12: torch.bfloat16}
    assert not any(m._forward_pre_hooks for m in net.modules())  # hooks removed


def test_3dcn_weight_gradients_in_bf16_match_fp32_at_the_quickstart_size(bf16_cpu):
    """Every 3DCN layer's weight gradient under CPU autocast (thin layers in fp32) is finite
    and off the fp32 one by less than 5% of its largest value on average (measured: 0.1-3.2%,
    the bf16 noise of the layers above it), the thin first layer by less than 25% at most
    (measured 12%), at the quickstart's 2x4x16x16, where oneDNN's bf16 gradient of that
    4-channel layer is non-finite or up to 1e37 times too large."""
    if not bf16_cpu:
        pytest.skip("no bf16 units on this CPU")
    torch.manual_seed(0)
    net = CN3D()
    video, mask = torch.rand(2, 4, 3, 16, 16), (torch.rand(2, 4, 1, 16, 16) > 0.7).float()

    def gradients(autocast: bool) -> list[torch.Tensor]:
        net.zero_grad()
        autocast_context = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
        with autocast_context, speed.thin_conv3d_in_fp32(net, CPU):
            out = net(video, mask)
        out.float().square().mean().backward()
        return [layer.conv.weight.grad.clone() for layer in net.layers]

    expected, got = gradients(False), gradients(True)
    for number, (g, e) in enumerate(zip(got, expected), start=1):
        error = (g - e).abs() / e.abs().max()
        assert torch.isfinite(g).all(), number
        assert error.mean() < 0.05, (number, error.mean())
    first = (got[0] - expected[0]).abs() / expected[0].abs().max()
    assert first.max() < 0.25, first.max()


# A 64 MiB block, allocated and freed 8 times: glibc mmaps it (over its 32 MiB threshold) and
# unmaps it when freed unless keep_freed_memory() is in force; the child prints the page
# faults of the 8 allocations + first touches after a first one.
FAULTS_CHILD = """
import resource, sys, torch
from vidinpaint.models import speed
if sys.argv[1] == "keep":
    print(speed.keep_freed_memory(), file=sys.stderr)
torch.ones(1 << 24).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    torch.ones(1 << 24).sum()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = (1 << 26) // 4096


def faults_of_a_reused_block(mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(speed.__file__).parents[2])}
    env.pop(speed.MALLOC_ENV, None)
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_CHILD, mode], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_kept_memory_is_reused_without_new_page_faults():
    system, kept = faults_of_a_reused_block("system"), faults_of_a_reused_block("keep")
    # 64 MiB = 16,384 pages of 4 KiB, faulted in anew each time by default; when kept, the block
    # is reused (the heap grows once more at most: posix_memalign's padding can miss the block)
    assert system >= 6 * PAGES, system
    assert kept <= 2 * PAGES, (kept, system)


class FakeLibc:
    def __init__(self, accepts: bool = True) -> None:
        self.calls: list[tuple[int, int]] = []
        self.accepts = accepts

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return int(self.accepts)


@pytest.fixture
def fake_libc(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(speed.ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(speed.ctypes.util, "find_library", lambda name: "libc.so.6")
    monkeypatch.setattr(speed, "num_cuda_devices", lambda: 0)
    monkeypatch.delenv(speed.MALLOC_ENV, raising=False)
    return libc


def test_keep_freed_memory_turns_off_mmap_and_trimming(fake_libc):
    assert "kept for reuse" in speed.keep_freed_memory()
    assert fake_libc.calls == [(speed.M_MMAP_MAX, 0), (speed.M_TRIM_THRESHOLD, -1)]


@pytest.mark.parametrize(
    "setting, expected",
    [("env", "VIDINPAINT_MALLOC=system"), ("gpu", "GPUs present"), ("refused", "refused")],
)
def test_keep_freed_memory_leaves_malloc_alone(fake_libc, monkeypatch, setting, expected):
    if setting == "env":
        monkeypatch.setenv(speed.MALLOC_ENV, "system")
    elif setting == "gpu":
        monkeypatch.setattr(speed, "num_cuda_devices", lambda: 1)
    else:
        fake_libc.accepts = False
    assert expected in speed.keep_freed_memory()
    if setting != "refused":
        assert fake_libc.calls == []


def test_keep_freed_memory_without_glibc(fake_libc, monkeypatch):
    monkeypatch.setattr(speed.ctypes.util, "find_library", lambda name: None)
    assert "not glibc" in speed.keep_freed_memory()
    assert fake_libc.calls == []
