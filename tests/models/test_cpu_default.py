"""vidinpaint-inpaint's default for internal learning: schedule=cpu (DIP-Vid-Flow refining the
propagate fill; the working size chosen from the input),
and schedule=paper left as the paper's method."""

from __future__ import annotations

import pytest
import torch
from test_classic import hole_error, translating_texture

from helpers import compose_config
from vidinpaint.models.classic import propagate_fill
from vidinpaint.models.internal import InternalLearningSystem
from vidinpaint.nets.skipnet import make_noise

# the settings the paper's schedules keep (the cpu-only options off)
PAPER_OPTIONS = {
    "hole_init": "mean",
    "hole_weight": 0.0,
    "residual": False,
    "residual_in_hole": False,
    "hole_target": "fill",
    "hole_flow_target": False,
    "keep_seen": False,
    "consistency_flow": "predicted",
    "smooth_iterations": 0,
    "pad_mode": "reflect",
}


def test_default_schedule_is_the_named_cpu_variant():
    cfg = compose_config("inpaint", ["method=dip_vid_flow", "input=x", "mask=y"])
    model = cfg.model
    assert model.method == "dip_vid_flow"
    cpu_options = {
        **PAPER_OPTIONS,
        "hole_init": "propagate",
        "residual": True,
        "pad_mode": "replicate",
    }
    assert {key: model[key] for key in cpu_options} == cpu_options
    # one epoch of 10 windows (+ the middle one) x 10 iterations = 110 iterations
    assert (model.epochs, model.batches_per_epoch, model.iters_per_batch) == (1, 10, 10)
    assert model.perceptual_weight == 0 and model.lr == 1e-2
    assert cfg.resolution == "auto" and cfg.working_pixels == 65536


def test_paper_and_fast_schedules_keep_the_papers_method():
    for schedule in ("paper", "fast"):
        model = compose_config("inpaint", ["method=dip_vid_flow", f"schedule={schedule}"]).model
        assert {key: model[key] for key in PAPER_OPTIONS} == PAPER_OPTIONS
    paper = compose_config("inpaint", ["method=dip_vid_flow", "schedule=paper"]).model
    assert (paper.epochs, paper.batches_per_epoch, paper.iters_per_batch) == (20, 50, 100)


def test_residual_network_starts_at_the_fill_and_keeps_known_pixels():
    gen = torch.Generator().manual_seed(0)
    video = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=gen), (64, 64))
    mask = torch.zeros(4, 1, 64, 64)
    mask[:, :, 20:40, 24:44] = 1
    system = tiny_system()
    image, _ = system(make_noise(3, 64, 64, seed=0))
    assert torch.equal(image, torch.full_like(image, 0.5))  # zero image head: fill unchanged
    fill, _ = propagate_fill(video, mask)
    out = system.inpaint(video, mask, progress=False)
    assert torch.equal(out * (1 - mask), video * (1 - mask))
    # one Adam step (lr 0.01) moves the hole only a little away from the fill
    change = ((out - fill).abs() * mask).sum() / (3 * mask.sum())
    assert 0 < change < 0.05


def tiny_system(**options) -> InternalLearningSystem:
    """DIP-Vid-Flow with two iterations on 3-frame windows (cpu-default options overridable)."""
    settings = dict(
        method="dip_vid_flow",
        epochs=1,
        iters_per_batch=1,
        batches_per_epoch=1,
        batch_frames=3,
        intervals=(1,),
        perceptual_weight=0,
        pad_mode="replicate",
        hole_init="propagate",
        residual=True,
        accelerator="cpu",
    )
    return InternalLearningSystem(**{**settings, **options})


def texture_64() -> tuple[torch.Tensor, torch.Tensor]:
    """A translating texture (4 frames, 64x64) whose hole content shows in other frames."""
    return translating_texture(num_frames=4, height=64, width=64)


def test_seen_target_weights_only_the_pixels_propagation_saw():
    video, mask = texture_64()
    system = tiny_system(hole_weight=0.1, hole_target="seen")
    system.inpaint(video, mask, progress=False)
    _, seen = propagate_fill(video, mask)
    assert seen.sum() > 0
    assert torch.allclose(system._recon_weight, 1 - mask + 0.1 * mask * seen)
    static = video[:1].expand_as(video).clone()  # nothing is ever uncovered: weight 0
    system.inpaint(static, mask, progress=False)
    assert torch.equal(system._recon_weight, 1 - mask)


def test_keep_seen_and_residual_in_hole():
    video, mask = texture_64()
    fill, seen = propagate_fill(video, mask)
    kept = tiny_system(keep_seen=True, iters_per_batch=3).inpaint(video, mask, progress=False)
    assert torch.equal(kept * seen, fill * seen)  # every hole pixel was seen: the fill
    raw = tiny_system(residual_in_hole=True).fit_video(video, mask, progress=False)
    assert torch.equal(raw * (1 - mask), video * (1 - mask))  # the input, not a refinement


def test_smoothing_keeps_known_pixels_and_a_small_hole_error():
    video, mask = texture_64()
    out = tiny_system(smooth_iterations=8).inpaint(video, mask, progress=False)
    assert torch.equal(out * (1 - mask), video * (1 - mask))
    assert hole_error(out, video, mask) < 0.03


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"hole_target": "all"}, "hole_target"),
        ({"consistency_flow": "raft"}, "consistency_flow"),
        ({"smooth_iterations": -1}, "smooth_iterations"),
    ],
)
def test_bad_cpu_options_are_clear_errors(option, message):
    with pytest.raises(ValueError, match=message):
        tiny_system(**option)
