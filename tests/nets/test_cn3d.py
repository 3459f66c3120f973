"""CN3D (AAAI'19 Table 1 top): layer table, shapes, V-2 time sizes, skips, gradients."""

import pytest
import torch
from torch import nn

from vidinpaint.nets.cn3d import CN3D

# Table 1 (top): layer -> (kernel, stride, out channels, dilation), spatial values.
TABLE_3DCN = {
    1: (5, 1, 16, 1),
    2: (3, 2, 32, 1),
    3: (3, 1, 64, 1),
    4: (3, 2, 128, 1),
    5: (3, 1, 256, 2),
    6: (3, 1, 256, 4),
    7: (3, 1, 256, 8),
    8: (3, 1, 128, 1),
    9: (4, 2, 64, 1),
    10: (3, 1, 32, 1),
    11: (4, 2, 16, 1),
    12: (3, 1, 3, 1),
}
DECONVS = {9, 11}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _inputs(b: int = 1, t: int = 4, h: int = 16, w: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    masked = torch.rand(b, t, 3, h, w, generator=gen)
    mask = (torch.rand(b, t, 1, h, w, generator=gen) > 0.5).float()
    return masked, mask


@pytest.mark.parametrize("temporal_stride", [False, True])
def test_layer_table_matches_paper(temporal_stride: bool) -> None:
    net = CN3D(temporal_stride=temporal_stride)
    assert len(net.layers) == 12
    for number, (kernel, stride, channels, dilation) in TABLE_3DCN.items():
        layer = net.layers[number - 1]
        conv = layer.conv
        expected_type = nn.ConvTranspose3d if number in DECONVS else nn.Conv3d
        assert type(conv) is expected_type, number
        assert conv.kernel_size[1:] == (kernel, kernel), number
        assert conv.stride[1:] == (stride, stride), number
        assert conv.out_channels == channels, number
        assert conv.dilation == (1, dilation, dilation), number
        temporal = 2 if temporal_stride and number in {2, 4, 9, 11} else 1
        assert conv.stride[0] == temporal, number
        has_bn_relu = number != 12
        assert isinstance(layer.norm, nn.BatchNorm3d) == has_bn_relu, number
        assert isinstance(layer.act, nn.ReLU) == has_bn_relu, number
    assert net.layers[0].conv.in_channels == 4


def test_unet_skips_concatenate_mirror_encoder_layers() -> None:
    net = CN3D()
    out_ch = {n: net.layers[n - 1].conv.out_channels for n in TABLE_3DCN}
    for decoder, encoder in {9: 4, 10: 3, 11: 2, 12: 1}.items():
        assert net.layers[decoder - 1].conv.in_channels == out_ch[decoder - 1] + out_ch[encoder]


def test_output_shape_and_every_layer_keeps_time() -> None:
    net = CN3D()
    sizes = []
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[2:])))
        for layer in net.layers
    ]
    masked, mask = _inputs(b=2, t=4, h=16, w=12)
    out = net(masked, mask)
    for hook in hooks:
        hook.remove()
    assert out.shape == (2, 4, 3, 16, 12)
    assert [s[0] for s in sizes] == [4] * 12
    assert [s[1] for s in sizes] == [16, 8, 8, 4, 4, 4, 4, 4, 8, 8, 16, 16]


def test_v2_temporal_stride_halves_then_restores_time() -> None:
    net = CN3D(temporal_stride=True)
    frames = []
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out: frames.append(out.shape[2]))
        for layer in net.layers
    ]
    out = net(*_inputs(t=8))
    for hook in hooks:
        hook.remove()
    assert frames == [8, 4, 4, 2, 2, 2, 2, 2, 4, 4, 8, 8]
    assert out.shape == (1, 8, 3, 16, 16)


def test_output_is_linear() -> None:
    net = CN3D().eval()
    with torch.no_grad():
        net.layers[-1].conv.bias.fill_(-100.0)
        out = net(*_inputs())
    assert (out < 0).all()


def test_gradient_reaches_every_parameter() -> None:
    net = CN3D(temporal_stride=True)
    net(*_inputs(t=4)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert missing == []


def test_bad_shapes_raise_value_error() -> None:
    masked, mask = _inputs()
    with pytest.raises(ValueError, match="mask"):
        CN3D()(masked, mask[:, :, :, :8])
    with pytest.raises(ValueError, match="multiples of 4"):
        CN3D()(*_inputs(h=18))
    with pytest.raises(ValueError, match="T multiple of 4"):
        CN3D(temporal_stride=True)(*_inputs(t=6))
