"""Internal learning (ICCV'19): noise, the window sampler, flow targets, tiny fits, configs."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import hydra
import pytest
import torch

from helpers import compose_config
from vidinpaint.losses import MissingWeightsError
from vidinpaint.models.internal import FitCheckpoint, InternalLearningSystem
from vidinpaint.models.internal.windows import (
    FlowTargets,
    Window,
    WindowDataset,
    WindowSampler,
    all_windows,
    middle_window,
)
from vidinpaint.nets.skipnet import make_noise

T, H, W = 8, 64, 128


def tiny(method: str, speed: dict | None = None, **fit) -> InternalLearningSystem:
    """``method`` with replication padding, no L_p and the ``fit`` options given."""
    return InternalLearningSystem(
        method, fit=fit, loss={"perceptual": 0.0}, speed=speed, pad_mode="replicate"
    )


def synthetic_clip() -> tuple[torch.Tensor, torch.Tensor]:
    """8 frames 64x128 of a smooth pattern panning right 2 px per frame; a 16x32 box hole."""
    y, x = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    frames = []
    for t in range(T):
        u = x - 2 * t
        red = 0.5 + 0.4 * torch.sin(u / 9)
        green = 0.5 + 0.4 * torch.cos(y / 7)
        blue = 0.5 + 0.3 * torch.sin((u + y) / 13)
        frames.append(torch.stack([red, green, blue]))
    mask = torch.zeros(T, 1, H, W)
    mask[:, :, 24:40, 48:80] = 1
    return torch.stack(frames), mask


# ---------------------------------------------------------------- noise
def test_noise_range_and_fixity():
    noise = make_noise(T, H, W, seed=3)
    assert noise.shape == (T, 1, H, W)
    assert noise.min() >= 0 and noise.max() < 0.1
    assert noise.max() > 0.09 and noise.min() < 0.01  # spans the range, not a constant
    assert torch.equal(noise, make_noise(T, H, W, seed=3))
    assert not torch.equal(noise, make_noise(T, H, W, seed=4))


def test_each_frame_keeps_its_noise_in_every_window():
    video, mask = synthetic_clip()
    noise = make_noise(T, H, W, seed=0)
    data = WindowDataset(video, mask, noise)
    first, later = data[Window(0, 5)], data[Window(2, 5)]
    assert torch.equal(first["noise"][2], later["noise"][0])
    assert torch.equal(data[Window(1, 3, 3)]["noise"][1], noise[4])
    assert data[Window(1, 3, 3)]["index"].tolist() == [1, 4, 7]


# ---------------------------------------------------------------- windows and sampler
def test_windows_cover_every_start_interval_direction():
    windows = all_windows(20, 5, (1, 3, 5), ("f", "b"))
    expected = {(s, t, d) for t in (1, 3, 5) for d in "fb" for s in range(20) if s + 4 * t <= 19}
    assert {(w.start, w.interval, w.direction) for w in windows} == expected
    assert len(windows) == 2 * (16 + 8)  # t = 5 needs 21 frames: none
    assert Window(2, 5, 3).frames == [2, 5, 8, 11, 14]
    assert middle_window(20, 5) == Window(10, 5, 1, "f")
    assert middle_window(8, 5) == Window(3, 5, 1, "f")  # kept inside the video


def runs_of(sampler: WindowSampler) -> list[tuple[Window, int]]:
    """(window, repeat count) of consecutive repeats in one epoch."""
    runs: list[tuple[Window, int]] = []
    for window in sampler:
        if runs and runs[-1][0] == window:
            runs[-1] = (window, runs[-1][1] + 1)
        else:
            runs.append((window, 1))
    return runs


def test_sampled_epoch_counts_and_enumeration():
    windows = all_windows(20, 5, (1, 3), ("f", "b"))  # 48 windows
    middle = middle_window(20, 5)
    sampler = WindowSampler(windows, 7, "sampled", batches_per_epoch=10, middle=middle, seed=1)
    assert len(sampler) == (10 + 1) * 7
    seen = []
    for _ in range(5):  # 5 x 10 = 50 draws: one full pass of the 48 windows, then 2 more
        runs = runs_of(sampler)
        assert all(count == 7 for _, count in runs)
        assert len(runs) == 11 and runs[-1][0] == middle
        seen += [w for w, _ in runs[:-1]]
    assert sorted(seen[:48], key=str) == sorted(windows, key=str)
    assert len({w.direction for w in seen[:10]}) == 2  # random order mixes directions


def test_paper_schedule_is_102k_iterations():
    windows = all_windows(80, 5, (1, 3, 5), ("f", "b"))
    sampler = WindowSampler(windows, 100, "sampled", 50, middle_window(80, 5))
    assert 20 * len(sampler) == 102_000


def test_sweep_epoch_visits_every_window_once_middle_last():
    windows = all_windows(12, 5)
    middle = middle_window(12, 5)
    sampler = WindowSampler(windows, 3, "sweep", middle=middle, seed=0)
    assert len(sampler) == 8 * 3
    runs = runs_of(sampler)
    assert [c for _, c in runs] == [3] * 8
    assert sorted(w.start for w, _ in runs) == list(range(8)) and runs[-1][0] == middle
    other = runs_of(WindowSampler(windows, 3, "sweep", middle=middle, seed=5))
    assert [w for w, _ in other] != [w for w, _ in runs]  # seed changes the order
    again = runs_of(WindowSampler(windows, 3, "sweep", middle=middle, seed=0))
    assert [w for w, _ in again] == [w for w, _ in runs]


def test_dip_frames_in_order():
    sampler = WindowSampler(all_windows(4, 1), 5, "sweep", shuffle=False)
    assert [w.start for w in sampler] == [f for f in range(4) for _ in range(5)]


# ---------------------------------------------------------------- flow targets
def test_flow_targets_masks_and_normalisation():
    """Every frame moves 2 px right: fw = +2 (x), bw = -2; checked against slicing."""
    num, h, w = 4, 8, 16
    hole = torch.zeros(num, 1, h, w)
    hole[1, :, 2:4, 6:8] = 1
    fw = torch.zeros(num - 1, 2, h, w)
    fw[:, 0] = 2.0
    flows = {(1, "f"): fw, (1, "b"): -fw}
    targets = FlowTargets(flows, hole, normalize=True)
    assert targets.scale[1] == 2.0
    pairs = targets.pairs(Window(0, 3, 1, "f"))  # pairs (0,1), (1,2)
    assert torch.allclose(pairs["flow_target"][:, 0], torch.ones(2, h, w))
    # forward pair (0, 1): frame 1's hole warped to frame 0 sits 2 px to the left
    expected = torch.zeros(h, w)
    expected[2:4, 4:6] = 1
    assert torch.equal(pairs["flow_region"][0, 0], expected)
    # pair (1, 2): frame 1's own hole
    own = hole[1, 0]
    assert torch.equal(pairs["flow_region"][1, 0], own)
    # valid: outside the region, and the forward target must stay inside (last 2 columns out)
    valid = pairs["flow_valid"][0, 0]
    assert valid[:, -2:].sum() == 0 and valid[2:4, 4:6].sum() == 0
    assert valid[0, :-2].sum() == w - 2
    raw = FlowTargets(flows, hole, normalize=False)
    assert raw.scale[1] == 1.0 and raw.pairs(Window(0, 3))["flow_target"][0, 0, 0, 0] == 2.0


# ---------------------------------------------------------------- systems
def test_flow_channel_order_matches_code():
    system = tiny("dip_vid_flow")
    order = [system.flow_channel(t, d) for t in (1, 3, 5) for d in "fb"]
    assert order == [0, 2, 4, 6, 8, 10]
    assert system.net.flow_head.conv.out_channels == 12


def test_an_unknown_perceptual_input_is_one_line():
    with pytest.raises(ValueError, match=r"^loss.perceptual_input must be one of .*'half'$"):
        InternalLearningSystem("dip_vid", loss={"perceptual": 0, "perceptual_input": "half"})


def test_missing_vgg_weights_stop_the_run(tmp_path):
    with pytest.raises(MissingWeightsError, match="model.loss.perceptual=0"):
        InternalLearningSystem(
            "dip_vid", loss={"perceptual": 0.01, "vgg_weights": str(tmp_path / "vgg16.pth")}
        )


def known_pixels_intact(out: torch.Tensor, video: torch.Tensor, mask: torch.Tensor) -> bool:
    return torch.equal(out * (1 - mask), video * (1 - mask))


@pytest.mark.parametrize("method", ["dip_vid", "dip_vid_flow"])
def test_tiny_fit_lowers_known_loss_and_keeps_known_pixels(method):
    video, mask = synthetic_clip()
    system = tiny(method, epochs=1, iters_per_batch=6, batches_per_epoch=2)
    out = system.inpaint(video, mask, progress=False)
    assert out.shape == video.shape and torch.isfinite(out).all()
    assert known_pixels_intact(out, video, mask)
    assert (out * mask - video * mask).abs().sum() > 0  # the holes were filled
    history = system.recon_history
    assert len(history) == (2 + 1) * 6  # 2 sampled windows + the middle one, 6 iterations each
    assert max(history[-3:]) < 0.9 * history[0]


def test_hole_pixels_are_never_read():
    video, mask = synthetic_clip()
    garbage = video * (1 - mask) + torch.rand_like(video) * mask
    kwargs = dict(method="dip_vid_flow", epochs=1, iters_per_batch=2, batches_per_epoch=2)
    first = tiny(**kwargs).fit_video(video, mask, progress=False)
    second = tiny(**kwargs).fit_video(garbage, mask, progress=False)
    assert torch.allclose(first, second, atol=1e-5)


def test_flow_losses_reach_the_flow_head():
    video, mask = synthetic_clip()
    from vidinpaint.flow import video_flows

    system = tiny("dip_vid_flow", intervals=(1,))
    flows = FlowTargets(video_flows(video * (1 - mask), (1,)), mask)
    batch = WindowDataset(video, mask, make_noise(T, H, W, 0), flows)[Window(1, 5, 1, "b")]
    out = system.losses(batch)
    assert out["flow"] > 0 and out["consistency"] > 0
    expected = out["recon"] + 0.1 * out["flow"] + out["consistency"]
    assert torch.allclose(out["loss"], expected)
    out["loss"].backward()
    assert system.net.flow_head.conv.weight.grad.abs().sum() > 0


def test_dip_keeps_the_lowest_loss_scored_iterate():
    video, mask = synthetic_clip()
    video, mask = video[:2], mask[:2]
    iters, every = 12, 4
    system = tiny("dip", dip_iters=iters, dip_check_every=every)
    out = system.inpaint(video, mask, progress=False)
    assert out.shape == video.shape and known_pixels_intact(out, video, mask)
    history = system.recon_history
    assert len(history) == 2 * iters
    for frame in range(2):
        scored = [history[frame * iters + k] for k in range(every - 1, iters, every)]
        loss, image = system.dip_best[frame]
        assert loss == min(scored)
        assert torch.equal(out[frame] * mask[frame], image[0] * mask[frame])


def test_3d_variant_runs():
    video, mask = synthetic_clip()
    system = tiny("dip_vid_3dcn", epochs=1, iters_per_batch=1, epoch_mode="sweep")
    out = system.inpaint(video[:6], mask[:6], progress=False)
    assert out.shape == (6, 3, H, W) and known_pixels_intact(out, video[:6], mask[:6])
    assert len(system.recon_history) == 2  # windows starting at 0 (the middle, last) and 1


def test_odd_sizes_are_padded_and_cropped_back():
    video, mask = synthetic_clip()
    video, mask = video[:5, :, :60, :100], mask[:5, :, :60, :100]
    system = tiny("dip_vid", epochs=1, iters_per_batch=1, batches_per_epoch=1)
    out = system.inpaint(video, mask, progress=False)
    assert out.shape == video.shape and known_pixels_intact(out, video, mask)


def test_bad_shapes_and_masks_are_clear_errors():
    video, mask = synthetic_clip()
    system = tiny("dip_vid")
    with pytest.raises(ValueError, match="mask must be T,1,H,W"):
        system.inpaint(video, mask[:, :, :32], progress=False)
    with pytest.raises(ValueError, match="covers every pixel"):
        system.inpaint(video, torch.ones_like(mask), progress=False)
    reflect = InternalLearningSystem("dip_vid", loss={"perceptual": 0})
    with pytest.raises(ValueError, match="model.pad_mode=replicate"):
        reflect.inpaint(video, mask, progress=False)


# ---------------------------------------------------------------- configs
# the public code's loss weights: L_p for DIP-Vid-Flow only (the supplementary: the baselines
# apply the image loss only), its VGG16 fed BGR in [0, 1]
PAPER_LOSS = {"recon": 1.0, "flow": 0.1, "consistency": 1.0, "perceptual_input": "code"}


@pytest.mark.parametrize("method", ["dip", "dip_vid", "dip_vid_3dcn", "dip_vid_flow"])
def test_paper_recipes_keep_the_papers_settings(method):
    cfg = compose_config("inpaint", [f"experiment=iccv19/{method}", "input=x", "mask=y"])
    model = cfg.model
    assert model.method == method and list(cfg.resolution) == [192, 384]
    assert cfg.mask_coverage == 0.5  # the code: INTER_AREA resize, then > 127
    fit = model.fit
    assert {k: model.loss[k] for k in PAPER_LOSS} == PAPER_LOSS
    assert model.loss.perceptual == (0.01 if method == "dip_vid_flow" else 0.0)
    assert model.loss.perceptual_input == "code"  # BGR in [0, 1]
    assert (model.flow.fill, model.flow.valid_margin) == ("mean", 0)
    assert (fit.lr, fit.batch_frames) == (1e-2, 5)
    assert list(fit.intervals) == ([1, 3, 5] if method == "dip_vid_flow" else [1])
    assert fit.epoch_mode == ("sampled" if method == "dip_vid_flow" else "sweep")
    assert (fit.epochs, fit.iters_per_batch, fit.batches_per_epoch) == (20, 100, 50)
    assert (fit.dip_iters, fit.dip_check_every) == (5000, 100)
    assert model.loss.vgg_weights.endswith("/vgg16.pth")


@pytest.mark.parametrize("method", ["dip", "dip_vid", "dip_vid_3dcn", "dip_vid_flow"])
def test_method_configs_instantiate(method):
    cfg = compose_config("inpaint", [f"method={method}", "schedule=tiny"])
    system = hydra.utils.instantiate(cfg.model)
    assert isinstance(system, InternalLearningSystem) and system.method == method
    assert system.fit_options.epochs == cfg.schedule.il_epochs
    assert math.isclose(system.fit_options.lr, 1e-2) and system.perceptual is None
    assert system.loss_weights.perceptual_input == "imagenet" and cfg.mask_coverage == "any"
    assert system.hparams.fit["intervals"] == list(cfg.model.fit.intervals)


# ---------------------------------------------------------------- fit loop: sync, resume, speed
SHORT = dict(epochs=2, iters_per_batch=2, batches_per_epoch=1)


class Interrupt(Exception):
    pass


def interrupt_at(monkeypatch, iteration: int) -> None:
    """The fit stops (as a killed process would) at ``iteration``."""
    step = InternalLearningSystem.training_step

    def stopping_step(self, batch, batch_idx):
        if batch_idx == iteration:
            raise Interrupt
        return step(self, batch, batch_idx)

    monkeypatch.setattr(InternalLearningSystem, "training_step", stopping_step)


@pytest.mark.parametrize(
    ("method", "frames", "stop"),
    [("dip_vid_flow", 8, 7), ("dip_vid", 8, 5), ("dip", 2, 7)],
)
def test_interrupted_fit_resumes_to_the_uninterrupted_output(
    method, frames, stop, tmp_path, monkeypatch
):
    """Stopped at iteration ``stop`` (a state was written at a multiple of 3 before), then
    resumed from the state file: the output and the loss history equal those of a fit that
    never stopped, bit for bit; once ended, the state hands the output back without a fit."""
    video, mask = synthetic_clip()
    video, mask = video[:frames], mask[:frames]
    kwargs = dict(method=method, dip_iters=6, dip_check_every=2)
    uninterrupted = tiny(**kwargs, **SHORT)
    expected = uninterrupted.fit_video(video, mask, progress=False)
    checkpoint = FitCheckpoint(tmp_path / "fit.pt", every=3)
    with monkeypatch.context() as patch:
        interrupt_at(patch, stop)
        with pytest.raises(Interrupt):
            tiny(**kwargs, **SHORT).fit_video(video, mask, progress=False, checkpoint=checkpoint)
    saved = torch.load(checkpoint.path, weights_only=True)
    assert saved["output"] is None
    assert saved["fit"]["iteration"] == stop // 3 * 3
    resumed = tiny(**kwargs, **SHORT)
    steps = []
    step = InternalLearningSystem.training_step
    with monkeypatch.context() as patch:
        patch.setattr(
            InternalLearningSystem,
            "training_step",
            lambda self, batch, i: steps.append(i) or step(self, batch, i),
        )
        output = resumed.fit_video(video, mask, progress=False, checkpoint=checkpoint)
    assert steps[0] == saved["fit"]["iteration"]  # no iteration reruns
    assert len(steps) == len(uninterrupted.recon_history) - steps[0]
    assert torch.equal(output, expected)
    assert resumed.recon_history == uninterrupted.recon_history
    steps.clear()
    with monkeypatch.context() as patch:
        patch.setattr(InternalLearningSystem, "training_step", lambda *_: steps.append(1))
        again = tiny(**kwargs, **SHORT).fit_video(
            video, mask, progress=False, checkpoint=checkpoint
        )
    assert not steps and torch.equal(again, expected)


def test_state_of_another_video_is_refused(tmp_path):
    video, mask = synthetic_clip()
    checkpoint = FitCheckpoint(tmp_path / "fit.pt", every=0)
    system = tiny("dip_vid", **SHORT)
    system.fit_video(video[:5], mask[:5], progress=False, checkpoint=checkpoint)
    with pytest.raises(ValueError, match="written for another video"):
        system.fit_video(video[1:6], mask[1:6], progress=False, checkpoint=checkpoint)


def host_reads_from_vidinpaint(monkeypatch) -> list[str]:
    """Records every ``item``/``float``/``int``/``bool``/``tolist`` of a tensor called from
    vidinpaint's own code (the reads that synchronise with a GPU)."""
    import inspect

    import vidinpaint

    package = str(Path(vidinpaint.__file__).parent)
    calls: list[str] = []
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name):
            caller = inspect.currentframe().f_back
            if caller is not None and caller.f_code.co_filename.startswith(package):
                calls.append(f"{_name} {caller.f_code.co_name}")
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def test_no_host_read_per_iteration(monkeypatch):
    """Host reads of a fit do not grow with its iterations; the history is a device tensor."""
    video, mask = synthetic_clip()
    counts = []
    for iters in (1, 4):
        system = tiny("dip_vid_flow", epochs=1, iters_per_batch=iters, batches_per_epoch=2)
        with monkeypatch.context() as patch:
            calls = host_reads_from_vidinpaint(patch)
            system.fit_video(video[:6], mask[:6], progress=False)
        counts.append(len(calls))
        assert isinstance(system.loss_history, torch.Tensor)
        assert system.loss_history.shape == (3 * iters,)
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("perceptual_input", ["imagenet", "code"])
def test_cached_target_features_give_the_same_perceptual_loss(tmp_path, perceptual_input):
    from vidinpaint.bench.training import random_vgg_weights

    video, mask = synthetic_clip()
    weights = str(random_vgg_weights(tmp_path))
    loss = {"perceptual": 0.01, "vgg_weights": weights, "perceptual_input": perceptual_input}
    system = InternalLearningSystem("dip_vid", loss=loss, pad_mode="replicate")
    assert system.perceptual.input_mode == perceptual_input
    batch = WindowDataset(video, mask, make_noise(T, H, W, 0))[Window(2, 3)]
    per_step = system.losses(batch)["perceptual"]
    system._target_features = system.perceptual.target_features(video)
    cached = system.losses(batch)["perceptual"]
    assert per_step > 0 and torch.allclose(cached, per_step, rtol=1e-5)


def test_bf16_and_channels_last_fit():
    video, mask = synthetic_clip()
    system = tiny("dip_vid", speed={"precision": "bf16-mixed", "channels_last": True}, **SHORT)
    out = system.inpaint(video[:5], mask[:5], progress=False)
    assert out.shape == (5, 3, H, W) and torch.isfinite(out).all()
    conv = next(m for m in system.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_compiled_fit_matches_eager(monkeypatch):
    """``compile=true`` traces the network with TorchDynamo (the aot_eager backend: Inductor's
    CPU code for replication-pad backward fails a stride check in torch 2.14)."""
    compile_module = torch.nn.Module.compile
    monkeypatch.setattr(
        torch.nn.Module, "compile", lambda self, mode: compile_module(self, backend="aot_eager")
    )
    video, mask = synthetic_clip()
    kwargs = dict(method="dip_vid", epochs=1, iters_per_batch=2, batches_per_epoch=1)
    eager = tiny(**kwargs).fit_video(video[:5], mask[:5], progress=False)
    compiled = tiny(**kwargs, speed={"compile": True})
    out = compiled.fit_video(video[:5], mask[:5], progress=False)
    assert compiled.net._compiled_call_impl is not None
    assert torch.allclose(out, eager, atol=1e-4)


def test_on_state_receives_the_fit_state_every_few_iterations_and_at_the_end():
    """The hook an experiment watches a fit with: states at iterations 2, 4, 6 and the last."""
    video, mask = synthetic_clip()
    states = []
    system = tiny("dip_vid", **SHORT)  # 2 epochs x (1 window + the middle one) x 2 iterations
    system.fit_video(video[:5], mask[:5], progress=False, on_state=states.append, state_every=2)
    assert [s["iteration"] for s in states] == [2, 4, 6, 8, 8]
    last = states[-1]["net"]
    assert all(torch.equal(last[k], v) for k, v in system.net.state_dict().items())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fit": {"epoch_mode": "all"}}, "fit.epoch_mode must be one of"),
        ({"fit": {"epochs": 0}}, "fit.epochs must be >= 1, got 0"),
        ({"fit": {"intervals": []}}, "fit.intervals must be positive"),
        ({"fit": {"epoch": 2}}, r"unknown FitOptions option\(s\) \['epoch'\]"),
        ({"loss": {"flow": -1}}, "loss weights must be >= 0"),
        ({"flow": {"method": "farneback"}}, "flow.method must be one of"),
        ({"speed": {"precision": "16"}}, "speed.precision must be one of"),
        ({"pad_mode": "zeros"}, "pad_mode must be one of"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message):
        InternalLearningSystem("dip_vid", **options)


def test_the_constructor_takes_a_few_option_groups():
    parameters = inspect.signature(InternalLearningSystem).parameters
    assert list(parameters) == ["method", "fit", "loss", "flow", "speed", "pad_mode"]


# ---------------------------------------------------------------- ICCV'19 code fidelity
def test_the_baselines_middle_window_is_centred_as_the_code_does():
    """DIP-Vid(-3DCN)'s loop trains frames (T-4)//2 .. +4 last, DIP-Vid-Flow's from T//2."""
    for num_frames in (5, 8, 9, 20, 21):
        centred = middle_window(num_frames, 5, centred=True)
        assert centred.start == min((num_frames - 4) // 2, num_frames - 5)
        assert middle_window(num_frames, 5).start == min(num_frames // 2, num_frames - 5)
    assert middle_window(20, 5, centred=True) == Window(8, 5, 1, "f")
    assert middle_window(20, 5) == Window(10, 5, 1, "f")


@pytest.mark.parametrize(("method", "start"), [("dip_vid", 5), ("dip_vid_flow", 7)])
def test_a_fit_trains_its_methods_middle_window_last(method, start, monkeypatch):
    """14 frames: DIP-Vid ends every epoch on the window from (14-4)//2 = 5, DIP-Vid-Flow on
    the one from 14//2 = 7 (recorded where the fit loop builds each window's batch)."""
    from vidinpaint.models.internal import fit_loop

    seen: list[Window] = []
    original = fit_loop.window_batch

    def record(system, data, window, device):
        seen.append(window)
        return original(system, data, window, device)

    monkeypatch.setattr(fit_loop, "window_batch", record)
    video = torch.rand(14, 3, 64, 64)
    mask = torch.zeros(14, 1, 64, 64)
    mask[:, :, 20:30, 20:30] = 1
    tiny(method, epochs=1, iters_per_batch=1, batches_per_epoch=2).fit_video(
        video, mask, progress=False
    )
    assert seen[-1] == Window(start, 5, 1, "f")


def test_the_flow_validity_margin_grows_the_excluded_region_by_a_square():
    """valid = outside the region dilated by a (2m+1)^2 square (an independent loop), and
    forward-backward consistent; the consistency region itself is unchanged."""
    num, h, w = 3, 16, 24
    hole = torch.zeros(num, 1, h, w)
    hole[:, :, 6:9, 10:13] = 1
    still = torch.zeros(num - 1, 2, h, w)
    flows = {(1, "f"): still, (1, "b"): still}
    for margin in (0, 1, 3):
        targets = FlowTargets(flows, hole, normalize=False, margin=margin)
        pairs = targets.pairs(Window(0, 3))
        expected = torch.ones(h, w)
        for y in range(h):
            for x in range(w):
                near = hole[
                    0, 0, max(y - margin, 0) : y + margin + 1, max(x - margin, 0) : x + margin + 1
                ]
                if near.any():
                    expected[y, x] = 0
        assert torch.equal(pairs["flow_valid"][0, 0], expected), margin
        assert torch.equal(pairs["flow_region"][0, 0], hole[0, 0])
        assert int(expected.numel() - expected.sum()) == (3 + 2 * margin) ** 2
    with pytest.raises(ValueError, match="valid_margin"):
        FlowTargets(flows, hole, margin=-1)


@pytest.mark.parametrize("fill", ["mean", "harmonic", "propagate"])
def test_the_flow_estimator_sees_the_chosen_fill_and_never_the_hole(fill):
    """flow_input: the known pixels as given; the hole as fill_holes (mean), as the harmonic
    fill or as the propagate method's fill, whatever the hole held before."""
    from vidinpaint.models.classic import propagate_fill
    from vidinpaint.models.internal.fit_loop import flow_input
    from vidinpaint.models.internal.options import FlowOptions
    from vidinpaint.models.propagation import fill_harmonic

    video, mask = synthetic_clip()
    filled = InternalLearningSystem.fill_holes(video, mask)
    out = flow_input(filled, mask, FlowOptions(fill=fill))
    noisy = InternalLearningSystem.fill_holes(
        torch.where(mask.bool(), torch.rand_like(video), video), mask
    )
    assert torch.equal(out, flow_input(noisy, mask, FlowOptions(fill=fill)))
    known = ~mask.bool().expand_as(video)
    assert torch.equal(out[known], video[known])
    expected = {
        "mean": filled,
        "harmonic": fill_harmonic(filled, mask),
        "propagate": propagate_fill(filled, mask)[0],
    }[fill]
    assert torch.allclose(out, expected)
    others = [f for f in ("mean", "harmonic", "propagate") if f != fill]
    for other in others:
        assert not torch.allclose(out, flow_input(filled, mask, FlowOptions(fill=other)))
    with pytest.raises(ValueError, match="flow.fill"):
        FlowOptions(fill="telea")
