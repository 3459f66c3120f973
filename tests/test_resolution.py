"""Tests for vidinpaint.resolution: the working size of each method family."""

from __future__ import annotations

import math

import pytest

from helpers import compose_config
from vidinpaint.errors import UserError
from vidinpaint.resolution import (
    ASPECT_TOLERANCE,
    check_resolution,
    classic_resolution,
    learned_resolution,
    resolve_resolution,
)


def aspect_ratio_change(size: tuple[int, int], height: int, width: int) -> float:
    """Relative change of the aspect ratio (an independent formula: no logarithm)."""
    return max((size[1] / size[0]) / (width / height), (width / height) / (size[1] / size[0])) - 1


@pytest.mark.parametrize(
    ("size", "smallest", "expected"),
    [
        ((272, 640), 64, (128, 320)),
        ((240, 432), 64, (192, 320)),  # 64x192 (the old rule) changed the aspect ratio by 41%
        ((144, 176), 64, (192, 256)),  # up-sampled: 128x128 would squash it by 18%
        ((720, 1280), 64, (192, 320)),
        ((272, 640), 192, (192, 448)),  # reflection padding: sides of at least 192
        ((144, 176), 192, (192, 256)),
    ],
)
def test_learned_auto_size_keeps_the_aspect_ratio(size, smallest, expected):
    chosen = learned_resolution(*size, max_pixels=65536, smallest=smallest)
    assert chosen == expected
    assert all(side % 64 == 0 and side >= smallest for side in chosen)
    assert aspect_ratio_change(chosen, *size) <= ASPECT_TOLERANCE + 1e-9


@pytest.mark.parametrize("size", [(37, 1000), (1000, 37), (480, 640), (1080, 1920), (50, 50)])
@pytest.mark.parametrize("smallest", [64, 192])
def test_learned_auto_size_is_the_largest_within_the_budget(size, smallest):
    """No other multiple of 64 within the budget and the tolerance is larger (brute force)."""
    height, width = size
    chosen = learned_resolution(height, width, max_pixels=65536, smallest=smallest)
    budget = min(65536, height * width)
    better = [
        (h, w)
        for h in range(smallest, 4096, 64)
        for w in range(smallest, 4096, 64)
        if h * w <= budget
        and h * w > chosen[0] * chosen[1]
        and aspect_ratio_change((h, w), height, width) <= ASPECT_TOLERANCE
    ]
    assert chosen[0] % 64 == 0 and chosen[1] % 64 == 0 and min(chosen) >= smallest
    assert not better


@pytest.mark.parametrize(
    ("size", "expected"),
    [((240, 432), (240, 432)), ((1080, 1920), (1080, 1920)), ((2160, 3840), (1080, 1920))],
)
def test_classic_fills_work_at_the_input_size_up_to_the_cap(size, expected):
    chosen = classic_resolution(*size, max_pixels=1920 * 1080)
    assert chosen == expected
    assert math.isclose(chosen[1] / chosen[0], size[1] / size[0], rel_tol=0.01)


def test_the_default_method_works_at_the_input_size():
    cfg = compose_config("inpaint", ["input=x", "mask=y"])
    assert cfg.model.method == "propagate"
    assert resolve_resolution(cfg, 240, 432) == (240, 432)
    cfg = compose_config("inpaint", ["input=x", "mask=y", "method=dip_vid_flow"])
    assert resolve_resolution(cfg, 272, 640) == (192, 448)  # reflection padding: sides >= 192
    cfg = compose_config(
        "inpaint", ["input=x", "mask=y", "method=dip_vid_flow", "model.pad_mode=replicate"]
    )
    assert resolve_resolution(cfg, 272, 640) == (128, 320)


@pytest.mark.parametrize("schedule", ["cpu", "fast", "paper"])
def test_every_schedule_fits_a_small_video(schedule):
    cfg = compose_config(
        "inpaint", ["input=x", "mask=y", "method=dip_vid_flow", f"schedule={schedule}"]
    )
    check_resolution(cfg)
    height, width = resolve_resolution(cfg, 144, 176)
    smallest = 192 if cfg.model.pad_mode == "reflect" else 64
    assert min(height, width) >= smallest and height % 64 == 0 and width % 64 == 0


def test_explicit_sizes_a_method_cannot_take_are_refused():
    overrides = ["input=x", "mask=y", "method=dip_vid_flow", "schedule=fast"]
    cfg = compose_config("inpaint", [*overrides, "resolution=[64,192]"])
    with pytest.raises(UserError, match="pad_mode=reflect needs sides of at least 192"):
        check_resolution(cfg)
    cfg = compose_config("inpaint", [*overrides, "resolution=[200,384]"])
    with pytest.raises(UserError, match="multiples of 64"):
        check_resolution(cfg)
    cfg = compose_config("inpaint", ["input=x", "mask=y", "resolution=half"])
    with pytest.raises(UserError, match="resolution must be"):
        check_resolution(cfg)
    check_resolution(compose_config("inpaint", ["input=x", "mask=y", "resolution=[61,97]"]))
