"""Tests for vidinpaint.losses against independent numpy loops and the papers' formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidinpaint.losses import (
    MissingWeightsError,
    PerceptualLoss,
    consistency_loss,
    flow_loss,
    framewise_masked_l1,
    masked_l1,
    reconstruction_loss,
)


def clip_inputs(seed: int = 0, shape=(2, 3, 3, 6, 5)):
    gen = torch.Generator().manual_seed(seed)
    b, t, _, h, w = shape
    pred, target = torch.rand(shape, generator=gen), torch.rand(shape, generator=gen)
    mask = (torch.rand(b, t, 1, h, w, generator=gen) > 0.6).float()
    mask[0, 1] = 0  # a frame without holes
    return pred, target, mask


def eq1_loop(pred, target, mask) -> float:
    p, g, m = pred.numpy(), target.numpy(), mask.numpy()
    values = []
    for b in range(p.shape[0]):
        num = den = 0.0
        for t in range(p.shape[1]):
            for c in range(p.shape[2]):
                for y in range(p.shape[3]):
                    for x in range(p.shape[4]):
                        if m[b, t, 0, y, x]:
                            num += abs(p[b, t, c, y, x] - g[b, t, c, y, x])
                            den += 1
        values.append(num / den)
    return float(np.mean(values))


def eq2_loop(pred, target, mask) -> float:
    p, g, m = pred.numpy(), target.numpy(), mask.numpy()
    values = []
    for b in range(p.shape[0]):
        total = 0.0
        frames = p.shape[1]
        for t in range(frames):
            hole = m[b, t, 0] > 0
            if hole.any():
                diff = np.abs(p[b, t] - g[b, t])[:, hole]
                total += diff.sum() / (frames * diff.size)
        values.append(total)
    return float(np.mean(values))


def test_masked_l1_matches_eq1_loop():
    pred, target, mask = clip_inputs()
    assert masked_l1(pred, target, mask).item() == pytest.approx(eq1_loop(pred, target, mask))


def test_framewise_masked_l1_matches_eq2_loop_and_differs_from_eq1():
    pred, target, mask = clip_inputs(1)
    value = framewise_masked_l1(pred, target, mask).item()
    assert value == pytest.approx(eq2_loop(pred, target, mask))
    assert value != pytest.approx(masked_l1(pred, target, mask).item())


def test_masked_l1_constant_error_and_known_pixels_ignored():
    target = torch.rand(1, 2, 3, 4, 4)
    mask = torch.zeros(1, 2, 1, 4, 4)
    mask[..., 1:3, 1:3] = 1
    pred = target + 0.1 * mask - 0.7 * (1 - mask)  # known pixels far off, holes off by 0.1
    assert masked_l1(pred, target, mask).item() == pytest.approx(0.1, abs=1e-6)
    assert framewise_masked_l1(pred, target, mask).item() == pytest.approx(0.1, abs=1e-6)


def test_clip_losses_reject_bad_mask_shape():
    pred, target, _ = clip_inputs()
    with pytest.raises(ValueError, match="mask: expected"):
        masked_l1(pred, target, torch.ones(2, 3, 3, 6, 5))


def frame_inputs(seed: int = 0, n: int = 2, c: int = 3, h: int = 8, w: int = 8):
    gen = torch.Generator().manual_seed(seed)
    pred, target = torch.rand(n, c, h, w, generator=gen), torch.rand(n, c, h, w, generator=gen)
    known = (torch.rand(n, 1, h, w, generator=gen) > 0.3).float()
    return pred, target, known


def test_reconstruction_loss_code_semantics_and_holes_ignored():
    pred, target, known = frame_inputs()
    expected = (((pred - target).numpy() * known.numpy()) ** 2).sum() / pred.numel()
    assert reconstruction_loss(pred, target, known).item() == pytest.approx(expected, rel=1e-5)
    changed = pred + 5 * (1 - known)  # change hole pixels only
    assert reconstruction_loss(changed, target, known).item() == pytest.approx(expected, rel=1e-5)


def test_flow_loss_only_on_valid_pixels():
    pred, target, valid = frame_inputs(1, c=2)
    expected = (((pred - target).numpy() * valid.numpy()) ** 2).mean()
    assert flow_loss(pred, target, valid).item() == pytest.approx(expected, rel=1e-5)
    assert flow_loss(pred + 3 * (1 - valid), target, valid).item() == pytest.approx(expected)


def test_consistency_loss_zero_for_consistent_frames_and_stop_gradient():
    frame_j = torch.rand(1, 3, 8, 10)
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0] = 2.0  # pixel x of frame i is pixel x+2 of frame j
    frame_i = torch.zeros_like(frame_j)
    frame_i[..., :8] = frame_j[..., 2:]
    region = torch.ones(1, 1, 8, 10)
    assert consistency_loss(frame_i, frame_j, flow, region).item() == pytest.approx(0, abs=1e-10)

    pred_i = torch.rand(1, 3, 8, 10, requires_grad=True)
    pred_j = frame_j.clone().requires_grad_(True)
    flow = flow.clone().requires_grad_(True)
    region = torch.zeros(1, 1, 8, 10)
    region[..., 2:6, 2:6] = 1
    loss = consistency_loss(pred_i, pred_j, flow, region)
    # independent: only region pixels, warped = frame_j shifted by 2 columns
    diff = (frame_j[..., 2:6, 4:8] - pred_i.detach()[..., 2:6, 2:6]).numpy()
    assert loss.item() == pytest.approx((diff**2).sum() / pred_i.numel(), rel=1e-5)
    loss.backward()
    assert pred_i.grad is None
    assert pred_j.grad.abs().sum() > 0 and flow.grad.abs().sum() > 0


def test_consistency_loss_ignores_samples_outside_frame():
    frame = torch.rand(1, 3, 6, 6)
    flow = torch.zeros(1, 2, 6, 6)
    flow[:, 0] = 10.0  # every sample lands outside
    assert consistency_loss(frame, frame, flow, torch.ones(1, 1, 6, 6)).item() == 0


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """A random state dict with torchvision's full vgg16 key names (classifier kept tiny)."""
    from torchvision.models import vgg16

    with torch.device("meta"):
        reference = vgg16(weights=None).state_dict()
    gen = torch.Generator().manual_seed(0)
    state = {
        key: 0.05 * torch.randn(value.shape if key.startswith("features.") else (1,), generator=gen)
        for key, value in reference.items()
    }
    path = tmp_path_factory.mktemp("weights") / "vgg16_random.pth"
    torch.save(state, path)
    return path


def test_perceptual_loss_known_region_semantics(vgg_weights):
    loss_fn = PerceptualLoss(str(vgg_weights))
    target = torch.rand(2, 3, 32, 32)
    known = torch.ones(2, 1, 32, 32)
    known[..., 12:20, 12:20] = 0
    assert loss_fn(target, target, known).item() == 0
    # pred == target on the known region, different in the hole
    pred = target * known + torch.rand(2, 3, 32, 32) * (1 - known)
    assert loss_fn(pred, target, known).item() == 0
    assert loss_fn(pred, target, torch.ones_like(known)).item() > 0
    other = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = loss_fn(other, target, known)
    loss.backward()
    assert loss.item() > 0 and other.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss_fn.parameters())


def test_perceptual_hole_masks_dilate_by_max_pool(vgg_weights):
    loss_fn = PerceptualLoss(str(vgg_weights))
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 16, 16] = 1
    relu1_2, relu2_2, relu3_3 = loss_fn.layer_hole_masks(hole)
    assert relu1_2.shape[-1] == 32 and relu2_2.shape[-1] == 16 and relu3_3.shape[-1] == 8
    assert relu1_2.sum() == 25  # two 3x3 convs -> 5x5
    assert torch.equal(relu1_2[0, 0, 14:19, 14:19], torch.ones(5, 5))


def test_perceptual_loss_accepts_features_only_file(vgg_weights, tmp_path):
    full = torch.load(vgg_weights, weights_only=True)
    features_only = {k: v for k, v in full.items() if k.startswith("features.")}
    torch.save(features_only, tmp_path / "features.pth")
    a, b = PerceptualLoss(str(vgg_weights)), PerceptualLoss(str(tmp_path / "features.pth"))
    x, y, known = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16)
    assert a(x, y, known).item() == pytest.approx(b(x, y, known).item())


def test_perceptual_loss_missing_weights_message(tmp_path):
    for path in (None, str(tmp_path / "absent.pth")):
        with pytest.raises(MissingWeightsError) as info:
            PerceptualLoss(path)
        message = str(info.value)
        assert "model.loss.vgg_weights=" in message and "model.loss.perceptual=0" in message
        assert "\n" not in message
    assert issubclass(MissingWeightsError, FileNotFoundError)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="missing keys"):
        PerceptualLoss(str(tmp_path / "bad.pth"))


def torchvision_vgg_loss(weights_path, pred: torch.Tensor, target: torch.Tensor) -> float:
    """Sum over relu1_2, relu2_2, relu3_3 of the MSE of torchvision's vgg16 features of the
    inputs as given (no mask), run by hand."""
    from torchvision.models import vgg16

    with torch.device("meta"):
        model = vgg16(weights=None)
    model = model.to_empty(device="cpu")
    state = torch.load(weights_path, weights_only=True)
    model.features.load_state_dict(
        {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    )
    expected = 0.0
    with torch.no_grad():
        a, b = pred, target
        for start, stop in ((0, 4), (4, 9), (9, 16)):  # relu1_2, relu2_2, relu3_3
            a, b = model.features[start:stop](a), model.features[start:stop](b)
            expected += torch.nn.functional.mse_loss(a, b).item()
    return expected


def test_perceptual_loss_matches_independent_vgg_computation(vgg_weights):
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pred, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    expected = torchvision_vgg_loss(vgg_weights, (pred - mean) / std, (target - mean) / std)
    known = torch.ones(2, 1, 16, 16)
    assert PerceptualLoss(str(vgg_weights))(pred, target, known).item() == pytest.approx(
        expected, rel=1e-4
    )


def test_perceptual_loss_code_input_is_unnormalised_bgr(vgg_weights):
    """``code``: VGG16 sees the public code's BGR frames in [0, 1] as they are."""
    pred, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    expected = torchvision_vgg_loss(vgg_weights, pred[:, [2, 1, 0]], target[:, [2, 1, 0]])
    known = torch.ones(2, 1, 16, 16)
    code = PerceptualLoss(str(vgg_weights), input_mode="code")
    cached = code.target_features(target)
    assert code(pred, target, known).item() == pytest.approx(expected, rel=1e-4)
    assert code(pred, target, known, cached).item() == pytest.approx(expected, rel=1e-4)
    imagenet = PerceptualLoss(str(vgg_weights), input_mode="imagenet")
    assert imagenet(pred, target, known).item() != pytest.approx(expected, rel=0.1)
    with pytest.raises(ValueError, match="one of \\('imagenet', 'code'\\), got 'rgb'"):
        PerceptualLoss(str(vgg_weights), input_mode="rgb")
