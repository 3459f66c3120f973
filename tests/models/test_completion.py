import pytest
import torch
from torch import nn

from vidinpaint.models.completion import CompletionSystem


def batch(b=1, t=4, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(b, t, 3, h, w, generator=g)
    mask = torch.zeros(b, t, 1, h, w)
    mask[..., 8:20, 6:22] = 1
    masked = video * (1 - mask) + 0.5 * mask
    return {"video": video, "mask": mask, "masked": masked}


def train_steps(system, steps=2):
    system.setup("fit")
    optimizer = system.configure_optimizers()
    system.train()
    for _ in range(steps):
        loss = system.training_step(batch(), 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss


@pytest.mark.parametrize(
    ("method", "ratio", "keys"),
    [
        ("cn3d", 2, {"cn3d", "cn3d_full"}),
        ("combcn", 2, {"cn3d", "combcn"}),
        ("combcn", 4, {"cn3d", "combcn"}),
        ("cn2d", 2, {"combcn"}),
    ],
)
def test_forward_outputs(method, ratio, keys):
    system = CompletionSystem(method=method, ratio=ratio)
    b = batch()
    out = system(b["masked"], b["mask"])
    assert keys <= set(out)
    if "cn3d" in out:
        assert out["cn3d"].shape == (1, 4, 3, 32 // ratio, 32 // ratio)
        assert out["cn3d_full"].shape == (1, 4, 3, 32, 32)
    if "combcn" in out:
        assert out["combcn"].shape == (1, 4, 3, 32, 32)
    assert system.prediction(out).shape == b["video"].shape


def test_cn2d_has_no_3dcn_and_cn3d_no_combcn():
    assert CompletionSystem(method="cn2d").cn3d is None
    assert CompletionSystem(method="cn3d").combcn is None


def test_downsample_marks_any_hole_pixel_and_fills_mean():
    system = CompletionSystem(method="cn3d", mean_pixel=(0.1, 0.2, 0.3))
    masked = torch.rand(1, 2, 3, 8, 8)
    mask = torch.zeros(1, 2, 1, 8, 8)
    mask[..., 0, 0] = 1  # one hole pixel -> its whole 2x2 cell is a hole at low resolution
    masked_low, mask_low = system.downsample(masked, mask)
    assert mask_low.shape == (1, 2, 1, 4, 4) and mask_low.sum() == 2
    assert torch.allclose(masked_low[0, 0, :, 0, 0], torch.tensor([0.1, 0.2, 0.3]))
    expected = masked[0, 0, :, 2:4, 2:4].mean(dim=(-1, -2))
    assert torch.allclose(masked_low[0, 0, :, 1, 1], expected)


def test_joint_loss_is_eq1_plus_alpha_eq2():
    system = CompletionSystem(method="combcn", alpha=0.7)
    b = batch(b=2)
    out = system(b["masked"], b["mask"])
    losses = system.losses(out, b["video"], b["mask"])
    # independent computation: eq. (1) on the low-resolution clip, eq. (2) frame by frame
    video_low = b["video"].reshape(2, 4, 3, 16, 2, 16, 2).mean(dim=(4, 6))
    m_low = out["mask_low"].expand_as(video_low)
    eq1 = ((out["cn3d"] - video_low).abs() * m_low).sum() / m_low.sum()
    per_frame = []
    for i in range(2):
        for k in range(4):
            m = b["mask"][i, k].expand(3, -1, -1)
            err = (out["combcn"][i, k] - b["video"][i, k]).abs()
            per_frame.append((err * m).sum() / m.sum())
    eq2 = torch.stack(per_frame).mean()
    assert torch.allclose(losses["loss_3dcn"], eq1, atol=1e-6)
    assert torch.allclose(losses["loss_combcn"], eq2, atol=1e-6)
    assert torch.allclose(losses["loss"], eq1 + 0.7 * eq2, atol=1e-6)


def test_t1_frozen_3dcn_keeps_its_weights_and_statistics():
    system = CompletionSystem(method="combcn", freeze_cn3d=True)
    before = {k: v.clone() for k, v in system.cn3d.state_dict().items()}
    combcn_before = [p.clone() for p in system.combcn.parameters()]
    train_steps(system)
    for key, value in system.cn3d.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert any(not torch.equal(a, b) for a, b in zip(combcn_before, system.combcn.parameters()))


def test_joint_training_updates_both_networks():
    system = CompletionSystem(method="combcn")
    before = [p.clone() for p in system.cn3d.parameters()]
    train_steps(system)
    assert any(not torch.equal(a, b) for a, b in zip(before, system.cn3d.parameters()))


def save_cn3d_checkpoint(path, **kwargs):
    system = CompletionSystem(method="cn3d", **kwargs)
    torch.save(
        {
            "state_dict": system.state_dict(),
            "hyper_parameters": dict(system.hparams),
            "global_step": 7,
        },
        path,
    )
    return system


def test_pretrained_3dcn_is_loaded_at_fit_setup(tmp_path):
    pre = save_cn3d_checkpoint(tmp_path / "cn3d.ckpt")
    system = CompletionSystem(method="combcn", cn3d_ckpt=str(tmp_path / "cn3d.ckpt"))
    assert not torch.equal(system.cn3d.layers[0].conv.weight, pre.cn3d.layers[0].conv.weight)
    system.setup("fit")
    for key, value in pre.cn3d.state_dict().items():
        assert torch.equal(system.cn3d.state_dict()[key], value), key


def test_t2_loads_nothing():
    torch.manual_seed(3)
    reference = CompletionSystem(method="combcn")
    torch.manual_seed(3)
    system = CompletionSystem(method="combcn", cn3d_ckpt=None)
    system.setup("fit")
    for key, value in reference.cn3d.state_dict().items():
        assert torch.equal(system.cn3d.state_dict()[key], value), key


def test_pretrained_3dcn_must_match_ablation_settings(tmp_path):
    save_cn3d_checkpoint(tmp_path / "v1.ckpt", ratio=4)
    system = CompletionSystem(method="combcn", cn3d_ckpt=str(tmp_path / "v1.ckpt"))
    with pytest.raises(ValueError, match="ratio=4"):
        system.setup("fit")


def test_missing_pretrained_3dcn_names_the_path(tmp_path):
    system = CompletionSystem(method="combcn", cn3d_ckpt=str(tmp_path / "nope.ckpt"))
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        system.setup("fit")


@pytest.mark.parametrize("method", ["combcn", "cn3d"])
def test_inpaint_any_length_and_size_keeps_known_pixels(method):
    system = CompletionSystem(method=method)
    video = torch.rand(11, 3, 20, 28)
    mask = torch.zeros(11, 1, 20, 28)
    mask[:, :, 5:12, 9:20] = 1
    out = system.inpaint(video, mask, progress=False, clip_len=8, overlap=2)
    assert out.shape == video.shape
    known = (mask == 0).expand_as(video)
    assert torch.equal(out[known], video[known])
    assert out.min() >= 0 and out.max() <= 1
    assert system.training  # the mode is restored


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        CompletionSystem(method="dip")
    with pytest.raises(ValueError, match="ratio"):
        CompletionSystem(ratio=3)


def test_weight_decay_groups_hold_exactly_the_conv_kernels():
    system = CompletionSystem(method="combcn", weight_decay=0.01)
    groups = system.parameter_groups()
    decayed = {id(p) for p in groups[0]["params"]}
    conv_types = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    kernels = {id(m.weight) for m in system.modules() if isinstance(m, conv_types)}
    assert decayed == kernels
    assert groups[0]["weight_decay"] == 0.01 and groups[1]["weight_decay"] == 0.0
    plain = {id(p) for p in groups[1]["params"]}
    assert decayed.isdisjoint(plain)
    assert decayed | plain == {id(p) for p in system.parameters()}
    batchnorm = {id(m.weight) for m in system.modules() if isinstance(m, nn.BatchNorm2d)}
    assert batchnorm and batchnorm <= plain
    optimizer = system.configure_optimizers()
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]


def test_decay_norm_and_bias_decays_every_parameter_and_frozen_ones_are_left_out():
    system = CompletionSystem(method="combcn", weight_decay=1e-4, decay_norm_and_bias=True)
    (group,) = system.parameter_groups()
    assert group["weight_decay"] == 1e-4
    assert {id(p) for p in group["params"]} == {id(p) for p in system.parameters()}
    frozen = CompletionSystem(method="combcn", freeze_cn3d=True)
    frozen.setup("fit")
    kept = {id(p) for g in frozen.parameter_groups() for p in g["params"]}
    assert kept == {id(p) for p in frozen.combcn.parameters()}


def test_low_resolution_3dcn_score_is_255_times_eq1():
    """val/l1_hole_3dcn_low == 255 x eq. (1) at H/r, computed here independently: area-mean
    target, max-pooled hole, |G - V| summed over hole pixels and channels of each clip over
    (3 x hole pixels), averaged over clips."""
    system = CompletionSystem(method="combcn").eval()
    b = batch(b=2, t=3, h=16, w=16, seed=4)
    b["mask"][1, :, :, 2:5, 3:11] = 1  # clips with different hole areas
    logged = {}
    system.log_dict = lambda values, **kwargs: logged.update(values)
    with torch.no_grad():
        system.validation_step(b, 0)
        low = system(b["masked"], b["mask"])["cn3d"]
    errors = []
    for clip in range(2):
        target = b["video"][clip].reshape(3, 3, 8, 2, 8, 2).mean(dim=(3, 5))
        hole = b["mask"][clip].reshape(3, 1, 8, 2, 8, 2).amax(dim=(3, 5))
        error = ((low[clip] - target).abs() * hole).sum() / (3 * hole.sum())
        errors.append(255 * error)
    expected = sum(errors) / 2
    assert torch.allclose(logged["val/l1_hole_3dcn_low"], expected, rtol=1e-5)
    assert "val/l1_hole_3dcn" in logged and "val/psnr_3dcn" in logged  # up-sampled score kept
    assert not torch.allclose(logged["val/l1_hole_3dcn"], expected)
    # the mean-fill baseline on the same holes: the network input's error, over all hole pixels
    fill_error = ((b["masked"] - b["video"]).abs() * b["mask"]).sum() / (3 * b["mask"].sum())
    assert torch.allclose(logged["val/l1_hole_fill"], 255 * fill_error, rtol=1e-5)


@pytest.mark.parametrize("paste", [False, True])
def test_guide_paste_known(paste):
    """The guide is the raw 3DCN frame (paper) or has the known low-res pixels pasted in."""
    system = CompletionSystem(method="combcn", guide_paste_known=paste).eval()
    b = batch(seed=5)
    seen = {}
    system.combcn.forward = lambda masked, mask, guide: seen.setdefault("guide", guide)
    with torch.no_grad():
        out = system(b["masked"], b["mask"])
        masked_low, mask_low = system.downsample(b["masked"], b["mask"])
    known = mask_low.expand_as(masked_low) == 0
    expected = masked_low if paste else out["cn3d"]
    assert torch.equal(seen["guide"][known], expected[known])
    assert torch.equal(seen["guide"][~known], out["cn3d"][~known])


def test_guide_init_option_and_protocol_record():
    zero = CompletionSystem(method="combcn", guide_init="zero")
    assert zero.combcn.guide_first.weight.abs().sum() == 0
    default = CompletionSystem(method="combcn")
    assert default.combcn.guide_first.weight.abs().sum() > 0
    assert default.protocol["protocol/guide_init"] == "default"
    assert default.protocol["protocol/guide_paste_known"] is False
    assert default.protocol["protocol/decay_norm_and_bias"] is False
    with pytest.raises(ValueError, match="guide_init"):
        CompletionSystem(method="combcn", guide_init="ones")


def test_cosine_lr_schedule_decays_to_zero_at_max_steps():
    import math

    from lightning.pytorch import Trainer

    system = CompletionSystem(method="cn2d", lr=1e-3, lr_schedule="cosine")
    system.trainer = Trainer(max_steps=8, logger=False, enable_checkpointing=False)
    config = system.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([1e-3 * (1 + math.cos(math.pi * k / 8)) / 2 for k in range(8)])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    constant = CompletionSystem(method="cn2d", lr=1e-3).configure_optimizers()
    assert isinstance(constant, torch.optim.Adam) and constant.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        CompletionSystem(method="cn2d", lr_schedule="step")
