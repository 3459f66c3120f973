"""kornia against hand-written code on random inputs: the same numbers as an independent
computation, and kornia is used only where it is not slower (best of several runs, one thread;
the timing is in the slow tier):
SSIM and mask dilation use kornia; the flow warp keeps grid_sample (kornia's remap is ~30 %
slower on the CPU for the same samples)."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from kornia.geometry.transform import remap
from kornia.morphology import dilation
from torchmetrics.functional.image import structural_similarity_index_measure

from vidinpaint import metrics
from vidinpaint.flow import backward_warp


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def best_ms(fn, repeats: int = 7) -> float:
    """Best wall time of ``fn`` in ms (the best run is the least disturbed on a shared CPU)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def bilinear_float64(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """image(p + flow(p)) by explicit bilinear weights in float64, zero outside the frame."""
    image, flow = image.double(), flow.double()
    n, c, h, w = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    out = torch.zeros(n, c, h, w, dtype=torch.float64)
    for xi in (x.floor(), x.floor() + 1):
        for yi in (y.floor(), y.floor() + 1):
            weight = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
            weight = weight * ((xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1))
            index = yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)
            index = index.long().view(n, 1, -1).expand(-1, c, -1)
            out += image.flatten(2).gather(2, index).view(n, c, h, w) * weight[:, None]
    return out


@pytest.mark.parametrize("align_corners", [True, False])
def test_backward_warp_is_bilinear_sampling(align_corners):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(3, 2, 17, 23, generator=generator)
    flow = 6 * torch.randn(3, 2, 17, 23, generator=generator)  # some points leave the frame
    warped, _ = backward_warp(image, flow, align_corners)
    assert torch.allclose(warped.double(), bilinear_float64(image, flow), atol=1e-5)
    if align_corners:  # kornia's remap samples the same points (kept out: slower, see flow.py)
        ys, xs = torch.meshgrid(torch.arange(17.0), torch.arange(23.0), indexing="ij")
        x, y = xs + flow[:, 0], ys + flow[:, 1]
        assert torch.allclose(warped, remap(image, x, y, align_corners=True), atol=1e-5)


def ssim_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(2, 4, 3, 64, 128, generator=generator)
    pred = (target + 0.2 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    return pred, target


def hole_mask() -> torch.Tensor:
    return (torch.rand(5, 1, 96, 192, generator=torch.Generator().manual_seed(2)) > 0.97).float()


def test_ssim_matches_torchmetrics():
    pred, target = ssim_inputs()
    reference = structural_similarity_index_measure(
        pred.flatten(0, 1), target.flatten(0, 1), data_range=1.0
    )
    assert abs(float(metrics.ssim(pred, target)) - float(reference)) < 1e-6


def test_mask_dilation_is_a_3x3_max_pool():
    hole = hole_mask()
    footprint = torch.ones(3, 3)
    pooled = F.max_pool2d(hole, kernel_size=3, stride=1, padding=1)
    assert torch.equal(dilation(hole, footprint), pooled)
    # independent: a pixel is in the dilated hole iff a hole pixel lies in its 3x3 neighbourhood
    padded = F.pad(hole, (1, 1, 1, 1))
    shifts = [padded[..., i : i + 96, j : j + 192] for i in range(3) for j in range(3)]
    assert torch.equal(pooled, torch.stack(shifts).amax(0))


@pytest.mark.slow
def test_kornia_is_not_much_slower_than_what_it_replaced(one_thread):
    """Wall-clock comparisons (slow tier only: a busy machine makes them flaky; a generous
    bound, best of several runs on one thread)."""
    torch.set_num_threads(1)
    pred, target = ssim_inputs()
    frames = (pred.flatten(0, 1), target.flatten(0, 1))
    ours = best_ms(lambda: metrics.ssim(pred, target))
    replaced = best_ms(lambda: structural_similarity_index_measure(*frames, data_range=1.0))
    assert ours < 2 * replaced, f"kornia SSIM {ours:.2f} ms vs torchmetrics {replaced:.2f} ms"
    hole, footprint = hole_mask(), torch.ones(3, 3)
    ours = best_ms(lambda: dilation(hole, footprint))
    replaced = best_ms(lambda: F.max_pool2d(hole, kernel_size=3, stride=1, padding=1))
    assert ours < 2 * replaced, f"kornia dilation {ours:.2f} ms vs max-pool {replaced:.2f} ms"
