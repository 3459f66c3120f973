"""CombCN / 2DCN (AAAI'19 Table 1 bottom): layer table, shapes, guidance wiring, gradients."""

import pytest
import torch
from torch import nn

from vidinpaint.nets.combcn import CombCN, cn2d

# Table 1 (bottom): layer -> (kernel, stride, out channels, dilation).
TABLE_COMBCN = {
    1: (5, 1, 64, 1),
    2: (3, 2, 128, 1),
    3: (3, 1, 128, 1),
    4: (3, 2, 256, 1),
    5: (3, 1, 256, 1),
    6: (3, 1, 256, 1),
    7: (3, 1, 256, 2),
    8: (3, 1, 256, 4),
    9: (3, 1, 256, 8),
    10: (3, 1, 256, 16),
    11: (3, 1, 256, 1),
    12: (3, 1, 256, 1),
    13: (4, 2, 128, 1),
    14: (3, 1, 128, 1),
    15: (4, 2, 64, 1),
    16: (3, 1, 32, 1),
    17: (3, 1, 3, 1),
}
DECONVS = {13, 15}
H = W = 32


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _inputs(t: int = 2, r: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    masked = torch.rand(1, t, 3, H, W, generator=gen)
    mask = (torch.rand(1, t, 1, H, W, generator=gen) > 0.5).float()
    guide = torch.rand(1, t, 3, H // r, W // r, generator=gen)
    return masked, mask, guide


@pytest.mark.parametrize("guided", [True, False])
def test_layer_table_matches_paper(guided: bool) -> None:
    net = CombCN(guided=guided)
    assert len(net.layers) == 17
    for number, (kernel, stride, channels, dilation) in TABLE_COMBCN.items():
        layer = net.layers[number - 1]
        conv = layer.conv
        assert type(conv) is (nn.ConvTranspose2d if number in DECONVS else nn.Conv2d), number
        assert conv.kernel_size == (kernel, kernel), number
        assert conv.stride == (stride, stride), number
        assert conv.out_channels == channels, number
        assert conv.dilation == (dilation, dilation), number
        assert isinstance(layer.norm, nn.BatchNorm2d) == (number != 17), number
        assert isinstance(layer.act, nn.ReLU) == (number != 17), number
    assert net.layers[0].conv.in_channels == 4


def test_unet_skips_concatenate_mirror_encoder_layers() -> None:
    net = CombCN()
    out_ch = {n: net.layers[n - 1].conv.out_channels for n in TABLE_COMBCN}
    for decoder, encoder in {13: 4, 14: 3, 15: 2, 16: 1}.items():
        assert net.layers[decoder - 1].conv.in_channels == out_ch[decoder - 1] + out_ch[encoder]
    assert net.layers[16].conv.in_channels == out_ch[16]


@pytest.mark.parametrize(("r", "first_ch", "last_ch"), [(2, 128, 128), (4, 256, 256)])
def test_guided_output_shape_and_guidance_convs(r: int, first_ch: int, last_ch: int) -> None:
    net = CombCN(guide_scale=r)
    assert net.guide_first.in_channels == net.guide_last.in_channels == 3
    assert (net.guide_first.out_channels, net.guide_last.out_channels) == (first_ch, last_ch)
    out = net(*_inputs(t=3, r=r))
    assert out.shape == (1, 3, 3, H, W)


def _layer_inputs(net: CombCN, guide: torch.Tensor, masked, mask) -> list[torch.Tensor]:
    """Inputs of layers 1..17 (after guidance addition and skip concatenation) and the output."""
    seen: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
        for layer in net.layers
    ]
    with torch.no_grad():
        seen.append(net(masked, mask, guide))
    for hook in hooks:
        hook.remove()
    return seen


def _first_changed_layer(net: CombCN, r: int) -> int:
    masked, mask, guide_a = _inputs(r=r, seed=1)
    guide_b = _inputs(r=r, seed=2)[2]
    a = _layer_inputs(net, guide_a, masked, mask)
    b = _layer_inputs(net, guide_b, masked, mask)
    changed = [not torch.allclose(x, y) for x, y in zip(a, b, strict=True)]
    assert changed[-1], "guidance must change the output"
    return changed.index(True) + 1


@pytest.mark.parametrize(("r", "first_layer", "last_layer"), [(2, 2, 15), (4, 4, 13)])
def test_guidance_enters_only_at_the_chosen_layers(r: int, first_layer: int, last_layer: int):
    net = CombCN(guide_scale=r).eval()
    assert (net.guide_after_layer, net.guide_before_layer) == (first_layer, last_layer)
    for conv in (net.guide_first, net.guide_last):
        nn.init.normal_(conv.weight, std=0.5)
    saved = {k: v.clone() for k, v in net.guide_last.state_dict().items()}
    with torch.no_grad():
        # only the first guidance conv active: the first changed map is the output of layer
        # `first_layer`, i.e. the input of the next layer
        net.guide_last.weight.zero_()
        net.guide_last.bias.zero_()
        assert _first_changed_layer(net, r) == first_layer + 1
        # only the last guidance conv active: layers before `last_layer` see no change
        net.guide_last.load_state_dict(saved)
        net.guide_first.weight.zero_()
        net.guide_first.bias.zero_()
        assert _first_changed_layer(net, r) == last_layer


def test_frames_are_independent_in_eval_mode() -> None:
    net = CombCN().eval()
    masked, mask, guide = _inputs(t=2)
    with torch.no_grad():
        out = net(masked, mask, guide)
        masked2, guide2 = masked.clone(), guide.clone()
        masked2[:, 0] = 1 - masked2[:, 0]
        guide2[:, 0] = 1 - guide2[:, 0]
        out2 = net(masked2, mask, guide2)
    assert torch.allclose(out[:, 1], out2[:, 1])
    assert not torch.allclose(out[:, 0], out2[:, 0])


def test_2dcn_has_no_guidance_and_ignores_guide() -> None:
    net = cn2d().eval()
    assert isinstance(net, CombCN) and not net.guided
    assert not any("guide" in name for name, _ in net.named_parameters())
    guided = CombCN()
    extra = sum(
        p.numel() for p in (*guided.guide_first.parameters(), *guided.guide_last.parameters())
    )
    count = sum(p.numel() for p in net.parameters())
    assert count == sum(p.numel() for p in guided.parameters()) - extra
    masked, mask, guide = _inputs()
    with torch.no_grad():
        assert torch.equal(net(masked, mask), net(masked, mask, guide))


def test_output_is_linear() -> None:
    net = cn2d().eval()
    with torch.no_grad():
        net.layers[-1].conv.bias.fill_(-100.0)
        assert (net(*_inputs()[:2]) < 0).all()


def test_gradient_reaches_every_parameter() -> None:
    net = CombCN()
    net(*_inputs()).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert missing == []


def test_bad_inputs_raise_value_error() -> None:
    masked, mask, guide = _inputs()
    with pytest.raises(ValueError, match="H/2"):
        CombCN()(masked, mask, guide[..., :8, :8])
    with pytest.raises(ValueError, match="got None"):
        CombCN()(masked, mask)
    with pytest.raises(ValueError, match="mask"):
        CombCN()(masked, mask[:, :1], guide)
    with pytest.raises(ValueError, match="guide_scale"):
        CombCN(guide_scale=3)
    with pytest.raises(ValueError, match="multiples of 4"):
        cn2d()(masked[..., :30], mask[..., :30])


def test_zero_guide_starts_at_zero_and_learns():
    """zero_guide: the guide has no effect at first, but the guidance convs receive gradient."""
    torch.manual_seed(0)
    net = CombCN(guided=True, guide_scale=2, zero_guide=True)
    masked, mask = torch.rand(1, 2, 3, 16, 16), torch.zeros(1, 2, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    guide_a, guide_b = torch.rand(1, 2, 3, 8, 8), torch.rand(1, 2, 3, 8, 8)
    assert torch.equal(net(masked, mask, guide_a), net(masked, mask, guide_b))
    net(masked, mask, guide_a).abs().mean().backward()
    assert net.guide_first.weight.grad.abs().sum() > 0
    assert net.guide_last.weight.grad.abs().sum() > 0


def test_default_guide_init_is_pytorchs():
    """Without zero_guide the guidance convs keep nn.Conv2d's initialisation (uniform within
    its kaiming bound, not zero) and the guide changes the output from the start."""
    torch.manual_seed(3)
    net = CombCN(guided=True, guide_scale=2).eval()
    bound = 1 / (3 * 3 * 3) ** 0.5  # kaiming_uniform(a=sqrt(5)) bound of a 3-channel 3x3 conv
    for conv in (net.guide_first, net.guide_last):
        assert conv.weight.abs().max() <= bound and conv.weight.std() > bound / 4
    masked, mask = torch.rand(1, 2, 3, 16, 16), torch.zeros(1, 2, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    with torch.no_grad():
        a = net(masked, mask, torch.rand(1, 2, 3, 8, 8))
        b = net(masked, mask, torch.rand(1, 2, 3, 8, 8))
    assert not torch.allclose(a, b)
