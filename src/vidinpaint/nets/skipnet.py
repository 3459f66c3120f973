"""Encoder-decoder with skips for internal learning (Zhang et al. ICCV'19, supplementary 1.1).

This is Deep Image Prior's ``skip`` network as configured in the public code
(Haotianz94/IL_video_inpainting): 6 levels with encoder channels 16,32,64,128,128,128.

- Encoder level i: 5x5 conv stride 2 -> BN -> LeakyReLU(0.2) -> 5x5 conv -> BN -> LeakyReLU.
- Skip from the input of encoder level i: 1x1 conv to 4 channels -> BN -> LeakyReLU.
- Decoder level i (deepest first): nearest x2 upsample, concat [skip_i, features], BN on the
  concatenation, 3x3 conv -> BN -> LeakyReLU, 1x1 conv -> BN -> LeakyReLU (decoder channels
  equal encoder channels, as in the code).
- Heads on the 16-channel full-resolution map: 1x1 conv to 3 channels + sigmoid (image) and,
  optionally, a parallel 1x1 conv to ``flow_channels`` with no activation (DIP-Vid-Flow: 12 =
  flows of intervals 1, 3, 5, order f1, b1, f3, b3, f5, b5).
- Reflection padding (``pad_mode="reflect"``, as in the code). Reflection needs every padded
  map larger than the pad, which at the deepest level (H/64) means H, W >= 192;
  ``pad_mode="replicate"`` allows any multiple of 64 (small frames, tests).
- ``dims=3`` (DIP-Vid-3DCN): Conv3d with kernels (3,5,5) down (stride
  (1,2,2), no temporal striding), (3,3,3) up, (1,1,1) skip and heads; space is reflection padded
  and time replicate padded (as the code does); upsampling is spatial only.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NOISE_SCALE = 0.1


def make_noise(num_frames: int, height: int, width: int, seed: int) -> Tensor:
    """Fixed network input: (T,1,H,W) uniform in [0, 0.1), identical for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(num_frames, 1, height, width, generator=generator) * NOISE_SCALE


PAD_MODES = ("reflect", "replicate")


class PaddedConv(nn.Module):
    """Convolution padded in space with ``pad_mode`` (and replicate in time for dims=3): 'same'
    size for stride 1, exact halving of H and W for stride 2. Input (N,C,H,W) or (N,C,T,H,W)."""

    def __init__(
        self,
        dims: int,
        in_ch: int,
        out_ch: int,
        kernel: tuple[int, ...],
        stride: int = 1,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        self.pad_mode = pad_mode
        self.pad_hw = (kernel[-1] - 1) // 2
        self.pad_t = (kernel[0] - 1) // 2 if dims == 3 else 0
        # no temporal striding in the 3D variant
        strides = (1, stride, stride) if dims == 3 else (stride, stride)
        conv_cls = nn.Conv3d if dims == 3 else nn.Conv2d
        self.conv = conv_cls(in_ch, out_ch, kernel, stride=strides)

    def forward(self, x: Tensor) -> Tensor:
        if self.pad_hw:
            # space first; a 5D tensor is folded to 4D since time is padded differently
            shape = x.shape
            x = F.pad(x.flatten(1, -3), (self.pad_hw,) * 4, mode=self.pad_mode)
            x = x.reshape(*shape[:-2], *x.shape[-2:])
        if self.pad_t:
            x = F.pad(x, (0, 0, 0, 0, self.pad_t, self.pad_t), mode="replicate")
        return self.conv(x)


class SkipEncoderDecoder(nn.Module):
    """DIP skip net: noise -> (image in (0,1), optional flow), same spatial size.

    Args:
        dims: 2 (frames as a batch, (N,in_channels,H,W)) or 3 (clips, (B,in_channels,T,H,W)).
        in_channels: channels of the input noise.
        channels: encoder (and decoder) channels per level, shallow to deep.
        skip_channels: channels of each 1x1 skip branch.
        flow_channels: 0 (no flow head) or e.g. 12 for DIP-Vid-Flow.
        pad_mode: spatial padding, "reflect" (paper code; H, W >= 192) or "replicate".
    """

    def __init__(
        self,
        dims: int = 2,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64, 128, 128, 128),
        skip_channels: int = 4,
        flow_channels: int = 0,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"SkipEncoderDecoder: expected dims 2 or 3, got {dims}")
        if pad_mode not in PAD_MODES:
            raise ValueError(
                f"SkipEncoderDecoder: expected pad_mode in {PAD_MODES}, got {pad_mode}"
            )
        self.pad_mode = pad_mode
        self.dims = dims
        self.in_channels = in_channels
        self.channels = tuple(channels)
        self.flow_channels = flow_channels
        self.size_multiple = 2 ** len(channels)
        down_k = (3, 5, 5) if dims == 3 else (5, 5)
        up_k = (3, 3, 3) if dims == 3 else (3, 3)
        one_k = (1,) * dims
        norm = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d

        def conv(in_ch: int, out_ch: int, kernel: tuple[int, ...], stride: int = 1) -> PaddedConv:
            return PaddedConv(dims, in_ch, out_ch, kernel, stride, pad_mode)

        def block(layer: PaddedConv, out_ch: int) -> nn.Sequential:
            return nn.Sequential(layer, norm(out_ch), nn.LeakyReLU(0.2))

        self.skips = nn.ModuleList()
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        level_in = in_channels
        for level, ch in enumerate(channels):
            self.skips.append(block(conv(level_in, skip_channels, one_k), skip_channels))
            self.encoders.append(
                nn.Sequential(
                    block(conv(level_in, ch, down_k, stride=2), ch),
                    block(conv(ch, ch, down_k), ch),
                )
            )
            deeper_ch = channels[level + 1] if level + 1 < len(channels) else ch
            cat_ch = skip_channels + deeper_ch
            self.decoders.append(
                nn.Sequential(
                    norm(cat_ch),
                    block(conv(cat_ch, ch, up_k), ch),
                    block(conv(ch, ch, one_k), ch),
                )
            )
            level_in = ch
        self.image_head = conv(channels[0], 3, one_k)
        self.flow_head = conv(channels[0], flow_channels, one_k) if flow_channels else None

    def forward(self, noise: Tensor) -> tuple[Tensor, Tensor | None]:
        """noise (N,C,H,W) for dims=2 or (B,C,T,H,W) for dims=3, H and W multiples of 64
        -> image (N,3,H,W) / (B,3,T,H,W) in (0,1), flow (same layout, flow_channels) or None."""
        layout = "(N,C,H,W)" if self.dims == 2 else "(B,C,T,H,W)"
        if noise.dim() != self.dims + 2 or noise.shape[1] != self.in_channels:
            raise ValueError(
                f"SkipEncoderDecoder(dims={self.dims}): expected {layout} with "
                f"C={self.in_channels}, got {tuple(noise.shape)}"
            )
        h, w = noise.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(
                f"SkipEncoderDecoder: expected H, W multiples of {self.size_multiple}, got {h}x{w}"
            )
        if self.pad_mode == "reflect" and min(h, w) < 3 * self.size_multiple:
            raise ValueError(
                f"SkipEncoderDecoder(pad_mode='reflect'): expected H, W >= "
                f"{3 * self.size_multiple}, got {h}x{w} (use pad_mode='replicate' for small frames)"
            )
        x = noise
        skips = []
        for skip, encoder in zip(self.skips, self.encoders, strict=True):
            skips.append(skip(x))
            x = encoder(x)
        scale = (1, 2, 2) if self.dims == 3 else (2, 2)
        for level in reversed(range(len(self.channels))):
            x = F.interpolate(x, scale_factor=scale, mode="nearest")
            x = self.decoders[level](torch.cat([skips[level], x], dim=1))
        image = torch.sigmoid(self.image_head(x))
        flow = self.flow_head(x) if self.flow_head is not None else None
        return image, flow
