"""Tests for the classic baselines (models/classic.py): telea and propagate."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from helpers import compose_config
from vidinpaint.inpaint import run
from vidinpaint.models import propagation
from vidinpaint.models.classic import ClassicSystem, propagate_fill, telea_fill
from vidinpaint.video_io import read_video
from vidinpaint.video_write import write_video


def translating_texture(
    num_frames: int = 6, height: int = 48, width: int = 64, shift: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random texture moving ``shift`` px right per frame, and a static centre hole.

    Returns video (T,3,H,W) and mask (T,1,H,W); every hole pixel is visible in another frame.
    """
    gen = torch.Generator().manual_seed(0)
    wide = width + shift * num_frames
    coarse = torch.rand(1, 3, height // 12, wide // 12, generator=gen)
    texture = F.interpolate(coarse, size=(height, wide), mode="bicubic").clamp(0, 1)[0]
    video = torch.stack(
        [
            texture[:, :, shift * (num_frames - t) : shift * (num_frames - t) + width]
            for t in range(num_frames)
        ]
    )
    mask = torch.zeros(num_frames, 1, height, width)
    mask[:, :, 16:32, 24:36] = 1
    return video, mask


def hole_error(out: torch.Tensor, video: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean absolute error over the hole pixels and channels."""
    return float(((out - video).abs() * mask).sum() / (3 * mask.sum()))


def mean_fill_error(video: torch.Tensor, mask: torch.Tensor) -> float:
    known = 1 - mask
    mean = (video * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
    return hole_error(mean.expand_as(video), video, mask)


def test_translating_texture_is_visible_in_other_frames():
    video, _ = translating_texture(shift=3)
    assert torch.allclose(video[1, :, :, 3:], video[0, :, :, :-3])


@pytest.mark.parametrize(("method", "max_error"), [("telea", 0.08), ("propagate", 0.015)])
def test_baselines_fill_a_hole_seen_in_other_frames(method, max_error):
    video, mask = translating_texture()
    corrupted = video * (1 - mask) + mask * torch.rand_like(video)  # hole content is not read
    out = ClassicSystem(method).inpaint(corrupted, mask, progress=False)
    assert out.shape == video.shape
    assert torch.equal(out * (1 - mask), video * (1 - mask))  # known pixels unchanged
    error = hole_error(out, video, mask)
    assert error < max_error
    assert error < mean_fill_error(video, mask) / 2


def test_propagate_with_smoothing_keeps_known_pixels_and_a_small_error():
    video, mask = translating_texture()
    corrupted = video * (1 - mask) + mask * torch.rand_like(video)
    out = ClassicSystem("propagate", smooth_iterations=8).inpaint(corrupted, mask, progress=False)
    assert torch.equal(out * (1 - mask), video * (1 - mask))
    assert hole_error(out, video, mask) < 0.015


def test_propagate_beats_telea_and_sees_the_whole_hole():
    video, mask = translating_texture()
    filled, seen = propagate_fill(video, mask)
    assert torch.equal(seen, mask)  # every hole pixel is found in another frame
    assert hole_error(filled, video, mask) < hole_error(telea_fill(video, mask), video, mask) / 3


def moving_box_over_translating_texture(num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A texture moving 2 px right per frame (48x64) under a 16x12 box moving 3 px left: every
    hole pixel shows in a frame or two before or after."""
    video, _ = translating_texture(num_frames=num_frames, shift=2)
    mask = torch.zeros(num_frames, 1, 48, 64)
    for t in range(num_frames):
        left = 48 - 3 * t
        mask[t, :, 16:32, left : left + 12] = 1
    return video, mask


def test_propagation_under_a_moving_box_is_accurate_and_linear_in_the_frames(monkeypatch):
    """Each pass sweeps the frames once each way: 2 (T - 1) steps of propagation.trace_holes per
    pass, whatever the chunk length (a pixel-by-pixel chain costs up to T - 1 warps per frame)."""
    steps = []
    trace_step = propagation._trace_step

    def counted(*args, **kwargs):
        steps.append(1)
        return trace_step(*args, **kwargs)

    monkeypatch.setattr(propagation, "_trace_step", counted)
    for num_frames in (6, 12):
        steps.clear()
        video, mask = moving_box_over_translating_texture(num_frames)
        corrupted = video * (1 - mask) + mask * torch.rand_like(video)
        out, seen = propagate_fill(corrupted, mask, passes=2)
        assert len(steps) == 2 * 2 * (num_frames - 1)
        assert torch.equal(out * (1 - mask), video * (1 - mask))
        assert torch.equal(seen, mask)  # every hole pixel found in another frame
        assert hole_error(out, video, mask) < 0.005  # telea: 0.044 and 0.054


def static_scene_moving_hole(speed: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A still textured scene (8 frames 48x64) under a 16x12 box moving ``speed`` px right per
    frame: the true flow is zero everywhere, but the Telea-filled box moves."""
    video, _ = translating_texture(num_frames=8, shift=1)
    video = video[:1].expand_as(video).clone()
    mask = torch.zeros(8, 1, 48, 64)
    for t in range(8):
        mask[t, :, 16:32, 8 + speed * t : 20 + speed * t] = 1
    return video, mask


def test_further_passes_follow_the_flows_of_the_fill():
    """The first pass's flows see the moving Telea blob (completed away only around the holes);
    the flows of its fill no longer do, and each pass is closer to the true (zero) flow."""
    video, mask = static_scene_moving_hole()
    errors = [hole_error(propagate_fill(video, mask, passes=p)[0], video, mask) for p in (1, 3)]
    assert errors[1] < errors[0] / 2
    assert errors[1] < 0.002  # a single pass with the source hole completed only: 0.009


def test_never_seen_pixels_are_filled_by_telea():
    video, mask = translating_texture()
    static = video[:1].expand_as(video).clone()  # no motion: the hole is never uncovered
    filled, seen = propagate_fill(static, mask)
    assert seen.sum() == 0
    assert torch.allclose(filled, telea_fill(static, mask))


def test_bad_inputs_are_clear_errors():
    video, mask = translating_texture()
    with pytest.raises(ValueError, match="method must be one of"):
        ClassicSystem("copy")
    with pytest.raises(ValueError, match="smooth_iterations"):
        ClassicSystem("propagate", smooth_iterations=-1)
    with pytest.raises(ValueError, match="passes"):
        ClassicSystem("propagate", passes=0)
    with pytest.raises(ValueError, match="passes must be >= 1"):
        propagate_fill(video, mask, passes=0)
    with pytest.raises(ValueError, match="mask must be T,1,H,W"):
        ClassicSystem("telea").inpaint(video, mask[:, :, :-1])
    with pytest.raises(ValueError, match="covers every pixel"):
        ClassicSystem("propagate").inpaint(video, torch.ones_like(mask))


@pytest.mark.parametrize("method", ["telea", "propagate"])
def test_cli_method_selects_the_baseline(method):
    cfg = compose_config("inpaint", [f"method={method}", "input=x", "mask=y"])
    assert cfg.model.method == method
    assert cfg.model._target_ == "vidinpaint.models.classic.ClassicSystem"


def test_inpaint_command_runs_propagate_at_the_input_size(tmp_path):
    video, mask = translating_texture()
    write_video(tmp_path / "in.mp4", video, fps=10, lossless=True)
    Image.fromarray(mask[0, 0].numpy().astype("uint8") * 255).save(tmp_path / "mask.png")
    overrides = [f"input={tmp_path / 'in.mp4'}", f"mask={tmp_path / 'mask.png'}"]
    overrides += [f"output={tmp_path / 'out.mp4'}", "method=propagate", "resolution=[48,64]"]
    run(compose_config("inpaint", overrides, tmp_path / "run"))
    decoded, _ = read_video(tmp_path / "in.mp4")
    out, _ = read_video(tmp_path / "out.mp4")
    assert out.shape == decoded.shape
    known = mask[:, 0, :, :, None].expand_as(out) == 0
    assert torch.equal(out[known], decoded[known])
    error = (out.float() - video.permute(0, 2, 3, 1) * 255).abs()[~known].mean() / 255
    assert error < 0.02
