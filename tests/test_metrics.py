"""Tests for vidinpaint.metrics against formulas and independent numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidinpaint.metrics import ewarp, frame_difference, l1_hole, psnr, psnr_masked, ssim


def test_l1_hole_constant_error_is_25_5():
    target = torch.rand(2, 3, 3, 8, 8) * 0.8
    mask = torch.zeros(2, 3, 1, 8, 8)
    mask[..., 2:5, 3:7] = 1
    pred = target + 0.1 * mask + 0.5 * (1 - mask)  # known pixels must not count
    assert l1_hole(pred, target, mask).item() == pytest.approx(25.5, rel=1e-5)


def test_l1_hole_pools_whole_batch_and_ignores_known_pixels():
    gen = torch.Generator().manual_seed(0)
    pred, target = (
        torch.rand(2, 2, 3, 6, 6, generator=gen),
        torch.rand(2, 2, 3, 6, 6, generator=gen),
    )
    mask = torch.zeros(2, 2, 1, 6, 6)
    mask[0, :, :, :2, :2] = 1  # clip 0: 8 hole pixels
    mask[1, :, :, :, :3] = 1  # clip 1: 36 hole pixels
    p, g, m = pred.numpy(), target.numpy(), mask.numpy()[:, :, 0]
    errors = [
        abs(p[b, t, c, y, x] - g[b, t, c, y, x])
        for b, t, y, x in zip(*np.nonzero(m))
        for c in range(3)
    ]
    expected = 255 * float(np.mean(errors))
    assert l1_hole(pred, target, mask).item() == pytest.approx(expected, rel=1e-5)
    changed = pred + (1 - mask) * 0.3
    assert l1_hole(changed, target, mask).item() == pytest.approx(expected, rel=1e-5)
    assert math.isnan(l1_hole(pred, target, torch.zeros_like(mask)).item())


def test_psnr_matches_formula_and_identical_is_inf():
    target = torch.rand(1, 2, 3, 16, 16) * 0.5
    pred = target + 0.1  # MSE = 0.01 -> 20 dB
    assert psnr(pred, target).item() == pytest.approx(20.0, abs=1e-4)
    pred = target.clone()
    pred[0, 1] += 0.01  # frame 0: 20 dB, frame 1: 40 dB -> mean over frames = 30 dB
    pred[0, 0] += 0.1
    assert psnr(pred, target).item() == pytest.approx(30.0, abs=1e-3)
    assert math.isinf(psnr(target, target).item())


def test_ssim_identical_is_one_and_noise_lower():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(1, 2, 3, 24, 24, generator=gen)
    assert ssim(target, target).item() == pytest.approx(1.0, abs=1e-6)
    noisy = (target + 0.2 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    assert ssim(noisy, target).item() < 0.9


def test_psnr_masked_only_uses_region():
    target = torch.rand(2, 3, 8, 8) * 0.5
    region = torch.zeros(2, 1, 8, 8)
    region[..., :4, :] = 1
    pred = target + 0.1 * region + 0.4 * (1 - region)
    assert psnr_masked(pred, target, region).item() == pytest.approx(20.0, abs=1e-4)
    assert math.isinf(psnr_masked(target + 0.4 * (1 - region), target, region).item())
    assert math.isnan(psnr_masked(pred, target, torch.zeros_like(region)).item())
    with pytest.raises(ValueError, match="region: expected"):
        psnr_masked(pred, target, torch.ones(2, 3, 8, 8))


def test_ewarp_zero_for_motion_consistent_video_and_matches_loop():
    gen = torch.Generator().manual_seed(0)
    wide = torch.rand(3, 8, 14, generator=gen)
    video = torch.stack([wide[:, :, 2 * t : 2 * t + 8] for t in range(4)])  # pans 2 px left/frame
    flow = torch.zeros(3, 2, 8, 8)
    flow[:, 0] = -2.0  # pixel x of frame t is pixel x-2 of frame t+1
    valid = torch.ones(3, 1, 8, 8)
    assert ewarp(video, flow, valid) == pytest.approx(0.0, abs=1e-10)

    output = torch.rand(4, 3, 8, 8, generator=gen)
    valid[1, :, :3] = 0
    out = output.numpy()
    per_frame = []
    for t in range(3):
        num, den = 0.0, 0
        for y in range(8):
            for x in range(2, 8):  # x - 2 must be inside the frame
                if valid[t, 0, y, x]:
                    num += float(((out[t, :, y, x] - out[t + 1, :, y, x - 2]) ** 2).sum())
                    den += 3
        per_frame.append(num / den)
    assert ewarp(output, flow, valid) == pytest.approx(float(np.mean(per_frame)), rel=1e-5)
    assert math.isnan(ewarp(output, flow, torch.zeros_like(valid)))
    with pytest.raises(ValueError, match="flow_fw: expected"):
        ewarp(output, flow[:2], valid)


def test_frame_difference():
    video = torch.zeros(1, 3, 3, 2, 2)
    video[0, 1] = 0.3
    video[0, 2, 0] = 0.9
    diff = frame_difference(video)
    assert diff.shape == (1, 2, 1, 2, 2)
    assert torch.allclose(diff[0, 0], torch.full((1, 2, 2), 0.3))
    assert torch.allclose(diff[0, 1], torch.full((1, 2, 2), (0.6 + 0.3 + 0.3) / 3))
