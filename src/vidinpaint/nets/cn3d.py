"""3D completion network (3DCN), Wang et al. AAAI'19, Table 1 (top).

Layer table (kernel, stride, out channels, dilation); stride and dilation act inside a frame
only, so every feature map keeps the F input frames (unless ``temporal_stride``, ablation V-2):

    1  conv        5  1   16        7  dilated  3  1  256  8
    2  conv down   3  2   32        8  conv     3  1  128
    3  conv        3  1   64        9  deconv   4  2   64  (up)
    4  conv down   3  2  128       10  conv     3  1   32
    5  dilated     3  1  256  2    11  deconv   4  2   16  (up)
    6  dilated     3  1  256  4    12  conv     3  1    3  (linear output)

Choices where the paper is silent:
- Kernels are cubic in time (5x5x5, 3x3x3). A deconv with temporal stride 1 cannot keep F frames
  with a temporal kernel of 4 and symmetric padding, so deconvs 9 and 11 use a 3x4x4 kernel;
  with ``temporal_stride`` they use 4x4x4, stride 2 in time, which exactly doubles F.
- U-Net skips concatenate (channel axis) each encoder layer's output onto the input of its
  mirror decoder layer, which works at the same resolution: 4 -> 9, 3 -> 10, 2 -> 11, 1 -> 12.
  The dilated bottleneck (5-8) has no skips: it never changes the resolution.
"""

import torch
from torch import Tensor, nn

# Layer number -> number of the encoder layer whose output is concatenated onto its input.
CN3D_SKIPS: dict[int, int] = {9: 4, 10: 3, 11: 2, 12: 1}


class ConvLayer(nn.Module):
    """One table row: a (transposed) convolution, then BN + ReLU unless it is the output layer.

    ``conv`` is kept as an attribute so the layer's kernel/stride/channels/dilation can be read.
    """

    def __init__(self, conv: nn.Module, batch_norm: nn.Module | None) -> None:
        super().__init__()
        self.conv = conv
        self.norm = batch_norm
        self.act = nn.ReLU(inplace=True) if batch_norm is not None else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.act(self.norm(x))
        return x


def _conv3d(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: tuple[int, int, int] = (1, 1, 1),
    dilation: int = 1,
    last: bool = False,
) -> ConvLayer:
    """Conv3d with 'same' padding (for stride 1; exact halving for stride 2 on even sizes)."""
    pad_hw = dilation * (kernel - 1) // 2
    conv = nn.Conv3d(
        in_ch,
        out_ch,
        kernel_size=kernel,
        stride=stride,
        padding=((kernel - 1) // 2, pad_hw, pad_hw),
        dilation=(1, dilation, dilation),
    )
    return ConvLayer(conv, None if last else nn.BatchNorm3d(out_ch))


def _deconv3d(in_ch: int, out_ch: int, temporal_stride: bool) -> ConvLayer:
    """Transposed Conv3d doubling H and W (and T when ``temporal_stride``)."""
    if temporal_stride:
        conv = nn.ConvTranspose3d(in_ch, out_ch, kernel_size=4, stride=2, padding=1)
    else:
        conv = nn.ConvTranspose3d(
            in_ch, out_ch, kernel_size=(3, 4, 4), stride=(1, 2, 2), padding=(1, 1, 1)
        )
    return ConvLayer(conv, nn.BatchNorm3d(out_ch))


class CN3D(nn.Module):
    """3DCN: completes a low-resolution clip with 3D convolutions.

    Args:
        temporal_stride: ablation V-2: layers 2 and 4 also stride 2 in time (F/2, F/4) and the
            deconvs 9 and 11 upsample time by 2; F must then be a multiple of 4.

    ``layers[i]`` is table row ``i + 1`` (a :class:`ConvLayer`).
    """

    def __init__(self, temporal_stride: bool = False) -> None:
        super().__init__()
        self.temporal_stride = temporal_stride
        down = (2, 2, 2) if temporal_stride else (1, 2, 2)
        self.layers = nn.ModuleList(
            [
                _conv3d(4, 16, 5),  # 1
                _conv3d(16, 32, 3, stride=down),  # 2
                _conv3d(32, 64, 3),  # 3
                _conv3d(64, 128, 3, stride=down),  # 4
                _conv3d(128, 256, 3, dilation=2),  # 5
                _conv3d(256, 256, 3, dilation=4),  # 6
                _conv3d(256, 256, 3, dilation=8),  # 7
                _conv3d(256, 128, 3),  # 8
                _deconv3d(128 + 128, 64, temporal_stride),  # 9  (+ skip from 4)
                _conv3d(64 + 64, 32, 3),  # 10 (+ skip from 3)
                _deconv3d(32 + 32, 16, temporal_stride),  # 11 (+ skip from 2)
                _conv3d(16 + 16, 3, 3, last=True),  # 12 (+ skip from 1), linear
            ]
        )

    def forward(self, masked: Tensor, mask: Tensor) -> Tensor:
        """masked (B,T,3,h,w) with holes pre-filled, mask (B,T,1,h,w) 1 = hole -> (B,T,3,h,w).

        h and w must be multiples of 4 (T too with ``temporal_stride``).
        """
        check_video_pair(masked, mask, "CN3D")
        _, t, _, h, w = masked.shape
        if h % 4 or w % 4:
            raise ValueError(f"CN3D: expected h, w multiples of 4, got {h}x{w}")
        if self.temporal_stride and t % 4:
            raise ValueError(f"CN3D(temporal_stride=True): expected T multiple of 4, got {t}")
        x = torch.cat([masked, mask], dim=2).permute(0, 2, 1, 3, 4)  # B,4,T,h,w
        outputs: dict[int, Tensor] = {}
        for number, layer in enumerate(self.layers, start=1):
            if number in CN3D_SKIPS:
                x = torch.cat([x, outputs[CN3D_SKIPS[number]]], dim=1)
            x = layer(x)
            if number in CN3D_SKIPS.values():
                outputs[number] = x
        return x.permute(0, 2, 1, 3, 4)


def check_video_pair(masked: Tensor, mask: Tensor, name: str) -> None:
    """Raise ValueError unless masked is (B,T,3,H,W) and mask is (B,T,1,H,W)."""
    if masked.dim() != 5 or masked.shape[2] != 3:
        raise ValueError(f"{name}: expected masked (B,T,3,H,W), got {tuple(masked.shape)}")
    expected = (*masked.shape[:2], 1, *masked.shape[3:])
    if tuple(mask.shape) != expected:
        raise ValueError(f"{name}: expected mask {expected}, got {tuple(mask.shape)}")
