"""Tests for vidinpaint.flow: warping, forward-backward check, DIS, RAFT loading, flow cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidinpaint.flow import (
    FB_THRESHOLD,
    MissingWeightsError,
    backward_warp,
    estimate_flow,
    forward_backward_valid,
    video_flows,
)
from vidinpaint.models.propagation import (
    complete_flow,
    fill_harmonic,
    sample_sources,
    temporal_smooth,
    trace_holes,
)


def textured(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth random texture (1, 3, H, W) in [0, 1], good for flow estimation."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 4, width // 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic").clamp(0, 1)


def constant_flow(n: int, height: int, width: int, dx: float, dy: float) -> torch.Tensor:
    flow = torch.zeros(n, 2, height, width)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


@pytest.mark.parametrize("align_corners", [True, False])
def test_backward_warp_integer_shift_recovers_image(align_corners):
    image = torch.rand(2, 3, 12, 16)
    dx, dy = 3, -2
    warped, inside = backward_warp(image, constant_flow(2, 12, 16, dx, dy), align_corners)
    # out(y, x) = image(y + dy, x + dx) wherever that lies inside the frame
    expected = torch.zeros_like(image)
    expected[:, :, 2:, : 16 - dx] = image[:, :, : 12 + dy, dx:]
    expected_inside = torch.zeros(2, 1, 12, 16)
    expected_inside[:, :, 2:, : 16 - dx] = 1
    assert torch.equal(inside, expected_inside)
    assert torch.allclose(warped * inside, expected, atol=1e-5)


def test_backward_warp_half_pixel_is_bilinear_and_differentiable():
    image = torch.arange(8.0).view(1, 1, 1, 8).repeat(1, 1, 4, 1)
    flow = constant_flow(1, 4, 8, 0.5, 0.0).requires_grad_(True)
    warped, inside = backward_warp(image, flow)
    assert torch.allclose(warped[0, 0, :, :7], torch.arange(7.0) + 0.5)
    assert inside[0, 0, :, 7].sum() == 0  # x = 7.5 is outside [0, 7]
    warped[..., :7].sum().backward()
    assert flow.grad is not None and flow.grad[0, 0, :, :7].abs().sum() > 0


def test_backward_warp_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected"):
        backward_warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="does not match"):
        backward_warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 9))


def test_forward_backward_consistent_and_inconsistent_pairs():
    fw = constant_flow(1, 10, 12, 2.0, 1.0)
    valid = forward_backward_valid(fw, -fw)
    # consistent: valid wherever the forward target is inside the frame
    assert valid[0, 0, :9, :10].min() == 1
    assert valid[0, 0, 9:, :].max() == 0 and valid[0, 0, :, 10:].max() == 0
    # inconsistent by 2 px (> 1.18) -> invalid everywhere
    assert forward_backward_valid(fw, -fw + constant_flow(1, 10, 12, 2.0, 0.0)).max() == 0
    # inconsistent by 1 px (< 1.18) -> still valid: the threshold is sqrt(2 ln 2)
    assert forward_backward_valid(fw, -fw + constant_flow(1, 10, 12, 1.0, 0.0))[0, 0, 0, 0] == 1
    assert math.isclose(FB_THRESHOLD, 1.1774, abs_tol=1e-4)


def test_dis_estimates_known_translation():
    big = textured(72, 88, seed=1)
    dx, dy = 3, 2
    src = big[:, :, 8:72, 8:88]
    dst = big[:, :, 8 - dy : 72 - dy, 8 - dx : 88 - dx]  # content moves by (+dx, +dy)
    flow = estimate_flow(src, dst)
    assert flow.shape == (1, 2, 64, 80) and flow.dtype == torch.float32
    centre = flow[0, :, 12:-12, 12:-12]
    assert abs(centre[0].median().item() - dx) < 0.3
    assert abs(centre[1].median().item() - dy) < 0.3


def test_estimate_flow_errors():
    frames = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="flow method"):
        estimate_flow(frames, frames, method="pwc")
    with pytest.raises(ValueError, match="must match"):
        estimate_flow(frames, torch.rand(1, 3, 16, 8))
    with pytest.raises(MissingWeightsError, match="method='dis'"):
        estimate_flow(frames, frames, method="raft", raft_weights=None)


def test_raft_loads_local_weights_file(tmp_path):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    weights = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), weights)
    src = textured(36, 44)
    flow = estimate_flow(src, src, method="raft", raft_weights=str(weights))
    assert flow.shape == (1, 2, 36, 44) and torch.isfinite(flow).all()
    bad = tmp_path / "bad.pth"
    torch.save({"nonsense.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="match no model"):
        estimate_flow(src, src, method="raft_small", raft_weights=str(bad))


def test_video_flows_shapes_directions_and_cache(tmp_path, monkeypatch):
    big = textured(64, 96, seed=2)
    frames = torch.cat([big[:, :, :, 2 * t : 2 * t + 64] for t in range(4)])  # pans by -2 px/frame
    cache = tmp_path / "sub" / "flows.pt"
    flows = video_flows(frames, intervals=(1, 3, 5), cache_path=cache)
    assert flows[(1, "f")].shape == (3, 2, 64, 64) and flows[(3, "b")].shape == (1, 2, 64, 64)
    assert flows[(5, "f")].shape == (0, 2, 64, 64)
    centre = (slice(16, -16), slice(16, -16))
    assert abs(flows[(1, "f")][:, 0][(slice(None), *centre)].median() + 2) < 0.3
    assert abs(flows[(3, "b")][:, 0][(slice(None), *centre)].median() - 6) < 0.5
    assert cache.is_file() and [p.name for p in cache.parent.iterdir()] == ["flows.pt"]

    def fail(*args, **kwargs):
        raise AssertionError("cache was not used")

    monkeypatch.setattr("vidinpaint.flow.estimate_flow", fail)
    monkeypatch.setattr("vidinpaint.flow._dis_gray", fail)
    cached = video_flows(frames, intervals=(1, 3, 5), cache_path=cache)
    assert all(torch.equal(cached[k], flows[k]) for k in flows)
    with pytest.raises(AssertionError, match="cache was not used"):
        video_flows(frames.flip(0), intervals=(1, 3, 5), cache_path=cache)


def test_dis_matches_independent_opencv_call():
    import cv2

    src, dst = textured(32, 32, 3), textured(32, 32, 4)
    to_gray = [
        cv2.cvtColor(
            (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY
        )
        for x in (src, dst)
    ]
    reference = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(*to_gray, None)
    assert np.allclose(estimate_flow(src, dst)[0].permute(1, 2, 0).numpy(), reference)


def test_fill_harmonic_reproduces_a_linear_ramp_and_keeps_known_values():
    ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")
    ramp = (0.5 * xs - 0.25 * ys)[None, None]  # harmonic: the exact fill is the ramp itself
    hole = torch.zeros(1, 1, 24, 32)
    hole[..., 6:18, 8:26] = 1
    filled = fill_harmonic(ramp + 100 * hole, hole, iterations=200)
    assert torch.equal(filled * (1 - hole), ramp * (1 - hole))
    assert (filled - ramp).abs().max() < 0.05


def test_fill_harmonic_of_a_frame_without_known_pixels_is_zero():
    filled = fill_harmonic(torch.rand(1, 2, 8, 8), torch.ones(1, 1, 8, 8))
    assert torch.equal(filled, torch.zeros(1, 2, 8, 8))


def test_complete_flow_replaces_garbage_in_the_dilated_hole():
    flow = constant_flow(2, 20, 24, 1.5, -0.5)
    hole = torch.zeros(2, 1, 20, 24)
    hole[..., 8:12, 8:14] = 1
    garbage = flow.clone()
    garbage[..., 7:13, 7:15] = 40.0  # the border ring is contaminated too: dilate=1 covers it
    assert torch.allclose(complete_flow(garbage, hole, dilate=1), flow, atol=1e-5)


def test_trace_holes_finds_the_nearest_known_frame():
    # the content moves 2 px right per frame: pixel (y, x) of frame t is at x + 2 in frame t + 1
    frames = torch.rand(5, 3, 8, 16)
    hole = torch.zeros(5, 1, 8, 16)
    hole[0, :, :, 2:4] = 1
    hole[1, :, :, 4:6] = 1  # the same content is still hidden one frame later
    hole[0, :, :, 14:16] = 1  # moves out of the frame before it is known anywhere
    hole[2, :, :, 6:10] = 1
    forward = constant_flow(4, 8, 16, 2.0, 0.0)
    traces = trace_holes(hole, forward, -forward, step=1)
    first = traces[0]
    columns = first.index % 16
    travelled = columns < 4
    assert torch.equal(first.frame[travelled], torch.full((16,), 3))  # hidden in 1 and 2
    colour, found = sample_sources(frames, hole, first)
    assert found[travelled].all() and not found[columns >= 14].any()
    expected = frames[3, :, :, 8:10].reshape(3, -1)
    assert torch.allclose(colour[:, travelled], expected, atol=1e-5)
    earlier = trace_holes(hole, forward, -forward, step=-1)[2]
    columns = earlier.index % 16
    assert torch.equal(earlier.frame[columns >= 8], torch.full((16,), 1))  # known in frame 1
    assert torch.equal(earlier.frame[columns < 8], torch.full((16,), -1))  # hidden in 1 and 0
    assert traces[4].index.numel() == 0
    with pytest.raises(ValueError, match="step"):
        trace_holes(hole, forward, -forward, step=2)


def follow_reference(hole: torch.Tensor, flows: torch.Tensor, t: int, y: int, x: int):
    """An independent computation: one pixel followed frame by frame along ``flows`` (the
    flow from frame s to s + 1 at index s), sampled bilinearly at its current position, until
    every bilinear corner is known; returns (frame, x, y) or None."""
    num_frames, _, height, width = hole.shape
    px, py = float(x), float(y)
    for s in range(t, num_frames - 1):
        grid = torch.tensor([[[[2 * px / (width - 1) - 1, 2 * py / (height - 1) - 1]]]])
        step = torch.nn.functional.grid_sample(flows[s][None], grid, align_corners=True)
        px, py = px + float(step[0, 0, 0, 0]), py + float(step[0, 1, 0, 0])
        if not (0 <= px <= width - 1 and 0 <= py <= height - 1):
            return None
        x0, y0 = min(int(px), width - 2), min(int(py), height - 2)
        if not hole[s + 1, 0, y0 : y0 + 2, x0 : x0 + 2].any():
            return s + 1, px, py
    return None


def test_trace_holes_matches_a_pixel_by_pixel_chain_on_a_smooth_flow():
    """The sweep interpolates the next frame's sources instead of following each pixel to the
    end: on a smooth flow both give the same frame for nearly every pixel (they may differ
    where a chain grazes the hole's edge) and the same position to a fraction of a pixel."""
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(6, 2, 3, 4, generator=gen) * 2 - 1
    flows = torch.nn.functional.interpolate(coarse, size=(24, 32), mode="bicubic") + 1.5
    hole = torch.zeros(7, 1, 24, 32)
    for t in range(7):
        hole[t, :, 8:16, 4 + 2 * t : 12 + 2 * t] = 1  # a box moving with the content
    traces = trace_holes(hole, flows, -flows, step=1)
    compared, offsets = 0, []
    for t in range(4):
        trace = traces[t]
        for k in range(trace.index.numel()):
            y, x = divmod(int(trace.index[k]), 32)
            reference = follow_reference(hole, flows, t, y, x)
            if reference is None:
                continue
            compared += 1
            if int(trace.frame[k]) != reference[0]:
                continue
            offsets.append(
                math.hypot(trace.position[0, k] - reference[1], trace.position[1, k] - reference[2])
            )
    assert compared > 100 and len(offsets) >= 0.85 * compared  # the same frame for 85%
    assert max(offsets) < 0.2 and sum(offsets) / len(offsets) < 0.05


def test_temporal_smooth_averages_noise_along_the_flow_and_keeps_known_pixels():
    # a texture moving 2 px right per frame, its centre hole filled with the truth plus noise
    wide = textured(16, 48)
    clean = torch.stack([wide[0, :, :, 16 - 2 * t : 48 - 2 * t] for t in range(6)])
    hole = torch.zeros(6, 1, 16, 32)
    hole[:, :, 4:12, 10:22] = 1
    noisy = clean + hole * 0.2 * torch.randn(
        clean.shape, generator=torch.Generator().manual_seed(0)
    )
    forward = constant_flow(5, 16, 32, 2.0, 0.0)
    smoothed = temporal_smooth(noisy, hole, forward, -forward, iterations=3)
    assert torch.equal(smoothed * (1 - hole), noisy * (1 - hole))
    error_before = ((noisy - clean).abs() * hole).sum()
    error_after = ((smoothed - clean).abs() * hole).sum()
    assert error_after < error_before / 2
    # inconsistent flows are not followed: a zero backward flow leaves the frames unchanged
    unmoved = temporal_smooth(noisy, hole, forward, torch.zeros_like(forward), iterations=3)
    assert torch.equal(unmoved, noisy)
    with pytest.raises(ValueError, match="T-1 forward and backward"):
        temporal_smooth(noisy, hole, forward[:3], -forward[:3])
