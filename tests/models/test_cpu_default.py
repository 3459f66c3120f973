"""vidinpaint-inpaint's default for internal learning: schedule=cpu (DIP-Vid-Flow refining the
propagate fill), and schedule=paper left as the paper's method."""

from __future__ import annotations

import torch

from helpers import compose_config
from vidinpaint.models.classic import propagate_fill
from vidinpaint.models.internal import InternalLearningSystem
from vidinpaint.nets.skipnet import make_noise


def test_default_schedule_is_the_named_cpu_variant():
    cfg = compose_config("inpaint", ["method=dip_vid_flow", "input=x", "mask=y"])
    assert cfg.model.method == "dip_vid_flow"
    assert cfg.model.hole_init == "propagate" and cfg.model.residual is True
    assert cfg.model.hole_weight == 0
    # one epoch of 10 windows (+ the middle one) x 10 iterations = 110 iterations
    assert (cfg.model.epochs, cfg.model.batches_per_epoch, cfg.model.iters_per_batch) == (1, 10, 10)
    assert cfg.model.perceptual_weight == 0 and cfg.model.lr == 1e-2


def test_paper_and_fast_schedules_keep_the_papers_method():
    for schedule in ("paper", "fast"):
        cfg = compose_config("inpaint", ["method=dip_vid_flow", f"schedule={schedule}"])
        assert cfg.model.hole_init == "mean" and cfg.model.residual is False
        assert cfg.model.hole_weight == 0
    paper = compose_config("inpaint", ["method=dip_vid_flow", "schedule=paper"]).model
    assert (paper.epochs, paper.batches_per_epoch, paper.iters_per_batch) == (20, 50, 100)


def test_residual_network_starts_at_the_fill_and_keeps_known_pixels():
    gen = torch.Generator().manual_seed(0)
    video = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=gen), (64, 64))
    mask = torch.zeros(4, 1, 64, 64)
    mask[:, :, 20:40, 24:44] = 1
    system = InternalLearningSystem(
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
    image, _ = system(make_noise(3, 64, 64, seed=0))
    assert torch.equal(image, torch.full_like(image, 0.5))  # zero image head: fill unchanged
    fill, _ = propagate_fill(video, mask)
    out = system.inpaint(video, mask, progress=False)
    assert torch.equal(out * (1 - mask), video * (1 - mask))
    # one Adam step (lr 0.01) moves the hole only a little away from the fill
    change = ((out - fill).abs() * mask).sum() / (3 * mask.sum())
    assert 0 < change < 0.05
