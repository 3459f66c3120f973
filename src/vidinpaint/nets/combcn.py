"""Combined completion network (CombCN) and the 2DCN baseline, Wang et al. AAAI'19, Table 1.

Layer table (kernel, stride, out channels, dilation); * = where 3DCN guidance is combined:

    1   conv        5  1   64           10  dilated  3  1  256  16
    2*  conv down   3  2  128           11  conv     3  1  256
    3   conv        3  1  128           12  conv     3  1  256
    4   conv down   3  2  256           13  deconv   4  2  128  (up)
    5   conv        3  1  256           14  conv     3  1  128
    6   conv        3  1  256           15* deconv   4  2   64  (up)
    7   dilated     3  1  256   2       16  conv     3  1   32
    8   dilated     3  1  256   4       17  conv     3  1    3  (linear output)
    9   dilated     3  1  256   8

Choices where the paper is silent or ambiguous:
- U-Net skips concatenate each encoder layer's output onto the input of its mirror decoder
  layer at the same resolution: 4 -> 13, 3 -> 14, 2 -> 15, 1 -> 16 (as in our CN3D).
- Guidance ("added to the first and last layer of the same size", "the 2nd and the 15th
  layer"): a 3x3 conv maps the 3DCN frame (3 channels at H/r) to the channels of CombCN's FIRST
  map at H/r, which is added to that layer's output; a second 3x3 conv maps it to the channels of
  the LAST map at H/r, which is added to it before the skip is concatenated and the next
  (upsampling) layer runs. For r = 2: output of layer 2 and input of layer 15 (= output of
  layer 14, the last 64x64 map at H = 128). For r = 4 (ablation V-1): output of layer 4 and input
  of layer 13 (the first and last 32x32 maps). The guided layer-2 (or 4) output is also what the
  skip carries. The guidance convs are plain convolutions (bias, no BN, no activation), with
  PyTorch's default initialisation (the paper gives none) or, with ``zero_guide``, zeros: then
  CombCN starts out as the 2DCN and learns how much of the 3DCN's completion to take.
"""

import torch
from torch import Tensor, nn

from vidinpaint.nets.cn3d import ConvLayer, check_video_pair

# Layer number -> number of the encoder layer whose output is concatenated onto its input.
COMBCN_SKIPS: dict[int, int] = {13: 4, 14: 3, 15: 2, 16: 1}
# guide_scale r -> (layer whose output gets guidance, layer whose input gets guidance).
GUIDE_LAYERS: dict[int, tuple[int, int]] = {2: (2, 15), 4: (4, 13)}


def _conv2d(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1, last: bool = False
) -> ConvLayer:
    """Conv2d with 'same' padding (exact halving for stride 2 on even sizes)."""
    conv = nn.Conv2d(
        in_ch,
        out_ch,
        kernel_size=kernel,
        stride=stride,
        padding=dilation * (kernel - 1) // 2,
        dilation=dilation,
    )
    return ConvLayer(conv, None if last else nn.BatchNorm2d(out_ch))


def _deconv2d(in_ch: int, out_ch: int) -> ConvLayer:
    """Transposed Conv2d doubling H and W."""
    return ConvLayer(
        nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1),
        nn.BatchNorm2d(out_ch),
    )


class CombCN(nn.Module):
    """CombCN: per-frame 2D completion at full resolution, guided by the 3DCN output.

    Args:
        guided: False gives the 2DCN baseline (no guidance convolutions; ``guide`` is ignored).
        guide_scale: r, the 3DCN downsampling factor, 2 (paper) or 4 (ablation V-1).
        zero_guide: initialise the guidance convolutions to zero (default: PyTorch's init).

    ``layers[i]`` is table row ``i + 1`` (a :class:`ConvLayer`).
    """

    def __init__(self, guided: bool = True, guide_scale: int = 2, zero_guide: bool = False) -> None:
        super().__init__()
        if guide_scale not in GUIDE_LAYERS:
            raise ValueError(
                f"CombCN: expected guide_scale in {sorted(GUIDE_LAYERS)}, got {guide_scale}"
            )
        self.guided = guided
        self.guide_scale = guide_scale
        self.layers = nn.ModuleList(
            [
                _conv2d(4, 64, 5),  # 1
                _conv2d(64, 128, 3, stride=2),  # 2
                _conv2d(128, 128, 3),  # 3
                _conv2d(128, 256, 3, stride=2),  # 4
                _conv2d(256, 256, 3),  # 5
                _conv2d(256, 256, 3),  # 6
                _conv2d(256, 256, 3, dilation=2),  # 7
                _conv2d(256, 256, 3, dilation=4),  # 8
                _conv2d(256, 256, 3, dilation=8),  # 9
                _conv2d(256, 256, 3, dilation=16),  # 10
                _conv2d(256, 256, 3),  # 11
                _conv2d(256, 256, 3),  # 12
                _deconv2d(256 + 256, 128),  # 13 (+ skip from 4)
                _conv2d(128 + 128, 128, 3),  # 14 (+ skip from 3)
                _deconv2d(128 + 128, 64),  # 15 (+ skip from 2)
                _conv2d(64 + 64, 32, 3),  # 16 (+ skip from 1)
                _conv2d(32, 3, 3, last=True),  # 17, linear
            ]
        )
        if guided:
            self.guide_after_layer, self.guide_before_layer = GUIDE_LAYERS[guide_scale]
            first_ch = self.layers[self.guide_after_layer - 1].conv.out_channels
            last_ch = self.layers[self.guide_before_layer - 2].conv.out_channels
            self.guide_first = nn.Conv2d(3, first_ch, kernel_size=3, padding=1)
            self.guide_last = nn.Conv2d(3, last_ch, kernel_size=3, padding=1)
            if zero_guide:
                for conv in (self.guide_first, self.guide_last):
                    nn.init.zeros_(conv.weight)
                    nn.init.zeros_(conv.bias)

    def forward(self, masked: Tensor, mask: Tensor, guide: Tensor | None = None) -> Tensor:
        """masked (B,T,3,H,W), mask (B,T,1,H,W), guide (B,T,3,H/r,W/r) -> (B,T,3,H,W).

        Frames are folded into the batch. H and W must be multiples of 4; ``guide`` (the 3DCN
        output) is required when ``guided`` and ignored otherwise.
        """
        check_video_pair(masked, mask, "CombCN")
        b, t, _, h, w = masked.shape
        if h % 4 or w % 4:
            raise ValueError(f"CombCN: expected H, W multiples of 4, got {h}x{w}")
        x = torch.cat([masked, mask], dim=2).reshape(b * t, 4, h, w)
        if self.guided:
            r = self.guide_scale
            expected = (b, t, 3, h // r, w // r)
            if guide is None:
                raise ValueError(f"CombCN(guided=True): expected guide {expected}, got None")
            if tuple(guide.shape) != expected:
                raise ValueError(
                    f"CombCN: expected guide {expected} (H/{r}, W/{r}), got {tuple(guide.shape)}"
                )
            frames = guide.reshape(b * t, 3, h // r, w // r)
        outputs: dict[int, Tensor] = {}
        for number, layer in enumerate(self.layers, start=1):
            if self.guided and number == self.guide_before_layer:
                x = x + self.guide_last(frames)
            if number in COMBCN_SKIPS:
                x = torch.cat([x, outputs[COMBCN_SKIPS[number]]], dim=1)
            x = layer(x)
            if self.guided and number == self.guide_after_layer:
                x = x + self.guide_first(frames)
            if number in COMBCN_SKIPS.values():
                outputs[number] = x
        return x.reshape(b, t, 3, h, w)


def cn2d() -> CombCN:
    """The 2DCN baseline: CombCN without 3DCN guidance (an Iizuka-style image completion net)."""
    return CombCN(guided=False)
