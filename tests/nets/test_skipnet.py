"""SkipEncoderDecoder (ICCV'19 supplementary 1.1, DIP skip net) and make_noise."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidinpaint.nets.skipnet import PaddedConv, SkipEncoderDecoder, make_noise

CHANNELS = (16, 32, 64, 128, 128, 128)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _expected_parameter_count(flow_channels: int) -> int:
    """Independent count from the supplementary's description (2D, 1 input channel)."""
    total, level_in = 0, 1
    for level, ch in enumerate(CHANNELS):
        deeper = CHANNELS[level + 1] if level + 1 < len(CHANNELS) else ch
        total += level_in * 4 + 4 + 2 * 4  # 1x1 skip conv + BN
        total += level_in * ch * 25 + ch + 2 * ch  # 5x5 stride-2 conv + BN
        total += ch * ch * 25 + ch + 2 * ch  # 5x5 conv + BN
        total += 2 * (4 + deeper)  # BN on the concatenation
        total += (4 + deeper) * ch * 9 + ch + 2 * ch  # 3x3 conv + BN
        total += ch * ch + ch + 2 * ch  # 1x1 conv + BN
        level_in = ch
    return total + 16 * 3 + 3 + (16 * flow_channels + flow_channels)


@pytest.mark.parametrize("flow_channels", [0, 12])
def test_parameter_count_about_3_07_million(flow_channels: int) -> None:
    net = SkipEncoderDecoder(flow_channels=flow_channels)
    count = sum(p.numel() for p in net.parameters())
    assert count == _expected_parameter_count(flow_channels)
    assert 3.0e6 <= count <= 3.15e6
    assert count == (3_071_935 if flow_channels == 0 else 3_072_139)


@pytest.mark.parametrize("dims", [2, 3])
def test_layer_structure(dims: int) -> None:
    net = SkipEncoderDecoder(dims=dims)
    down = (3, 5, 5) if dims == 3 else (5, 5)
    up = (3, 3, 3) if dims == 3 else (3, 3)
    one = (1,) * dims
    stride2 = (1, 2, 2) if dims == 3 else (2, 2)
    norm = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d
    assert len(net.encoders) == len(net.decoders) == len(net.skips) == 6
    level_in = 1
    for level, ch in enumerate(CHANNELS):
        first, second = net.encoders[level]
        assert first[0].conv.kernel_size == down and first[0].conv.stride == stride2
        assert second[0].conv.kernel_size == down and second[0].conv.stride == (1,) * dims
        assert (first[0].conv.in_channels, first[0].conv.out_channels) == (level_in, ch)
        assert second[0].conv.out_channels == ch
        skip = net.skips[level][0].conv
        assert (skip.kernel_size, skip.in_channels, skip.out_channels) == (one, level_in, 4)
        cat_bn, conv_up, conv_one = net.decoders[level]
        deeper = CHANNELS[min(level + 1, 5)]
        assert isinstance(cat_bn, norm) and cat_bn.num_features == 4 + deeper
        assert conv_up[0].conv.kernel_size == up and conv_up[0].conv.out_channels == ch
        assert conv_one[0].conv.kernel_size == one and conv_one[0].conv.out_channels == ch
        for block in (first, second, net.skips[level], conv_up, conv_one):
            assert isinstance(block[1], norm)
            assert isinstance(block[2], nn.LeakyReLU) and block[2].negative_slope == 0.2
        level_in = ch
    assert net.image_head.conv.kernel_size == one and net.image_head.conv.out_channels == 3
    assert net.flow_head is None


def test_padding_is_reflection_in_space_and_replicate_in_time() -> None:
    x = torch.rand(1, 2, 3, 8, 8)
    layer = PaddedConv(3, 2, 4, (3, 5, 5))
    # independent padding by index arithmetic: reflect 2 in H, W; replicate 1 in T
    space = torch.tensor([2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 6, 5])
    time = torch.tensor([0, 0, 1, 2, 2])
    padded = x[:, :, time][:, :, :, space][:, :, :, :, space]
    expected = F.conv3d(padded, layer.conv.weight, layer.conv.bias)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert layer(x).shape == (1, 4, 3, 8, 8)


def test_2d_heads_image_in_unit_range_and_linear_flow() -> None:
    net = SkipEncoderDecoder(flow_channels=12)
    with torch.no_grad():
        net.flow_head.conv.weight.zero_()
        net.flow_head.conv.bias.fill_(5.0)
        image, flow = net(make_noise(2, 192, 192, seed=0))
    assert image.shape == (2, 3, 192, 192) and flow.shape == (2, 12, 192, 192)
    assert image.min() > 0 and image.max() < 1
    assert torch.all(flow == 5.0)  # no activation on the flow head


def test_image_only_net_returns_no_flow() -> None:
    net = SkipEncoderDecoder(pad_mode="replicate")
    image, flow = net(make_noise(1, 64, 128, seed=0))
    assert image.shape == (1, 3, 64, 128) and flow is None


def test_3d_variant_keeps_time_and_size() -> None:
    net = SkipEncoderDecoder(dims=3, flow_channels=12, pad_mode="replicate")
    noise = make_noise(3, 64, 64, seed=0).permute(1, 0, 2, 3).unsqueeze(0)  # 1,1,T,H,W
    image, flow = net(noise)
    assert image.shape == (1, 3, 3, 64, 64) and flow.shape == (1, 12, 3, 64, 64)
    assert image.min() > 0 and image.max() < 1


def test_gradient_reaches_every_parameter() -> None:
    net = SkipEncoderDecoder(flow_channels=12, pad_mode="replicate")
    image, flow = net(make_noise(2, 64, 64, seed=0))
    (image.mean() + flow.square().mean()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert missing == []


def test_bad_sizes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="multiples of 64"):
        SkipEncoderDecoder(pad_mode="replicate")(torch.rand(1, 1, 96, 64))
    with pytest.raises(ValueError, match="multiples of 64"):
        SkipEncoderDecoder(pad_mode="replicate")(torch.rand(1, 1, 64, 100))
    with pytest.raises(ValueError, match=">= 192"):
        SkipEncoderDecoder()(torch.rand(1, 1, 128, 192))
    with pytest.raises(ValueError, match="C=1"):
        SkipEncoderDecoder()(torch.rand(1, 2, 192, 192))
    with pytest.raises(ValueError, match="B,C,T,H,W"):
        SkipEncoderDecoder(dims=3)(torch.rand(1, 1, 192, 192))
    with pytest.raises(ValueError, match="pad_mode"):
        SkipEncoderDecoder(pad_mode="zeros")
    with pytest.raises(ValueError, match="dims"):
        SkipEncoderDecoder(dims=1)


def test_noise_range_shape_and_determinism() -> None:
    noise = make_noise(5, 64, 128, seed=3)
    assert noise.shape == (5, 1, 64, 128) and noise.dtype == torch.float32
    assert noise.min() >= 0 and noise.max() < 0.1
    assert noise.max() > 0.09 and 0.04 < noise.mean() < 0.06  # fills the range uniformly
    assert torch.equal(noise, make_noise(5, 64, 128, seed=3))
    assert not torch.equal(noise, make_noise(5, 64, 128, seed=4))
