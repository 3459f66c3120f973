"""Applying a clip network to a video of any length and size.

Windows of ``clip_len`` frames overlap by ``overlap`` frames and are blended with linear
ramps; frames are padded (replicate) to a multiple of ``spatial_multiple`` and cropped back;
known pixels are pasted back at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from rich.progress import track
from torch import Tensor

ClipFn = Callable[[Tensor, Tensor], Tensor]


def window_starts(num_frames: int, clip_len: int, overlap: int) -> list[int]:
    """First frames of the windows covering ``num_frames`` (the last window ends at the end)."""
    if not 0 <= overlap < clip_len:
        raise ValueError(f"overlap must be in [0, clip_len={clip_len}), got {overlap}")
    if num_frames <= clip_len:
        return [0]
    step = clip_len - overlap
    starts = list(range(0, num_frames - clip_len + 1, step))
    if starts[-1] + clip_len < num_frames:
        starts.append(num_frames - clip_len)
    return starts


def blend_weights(length: int, overlap: int, first: bool, last: bool) -> Tensor:
    """Per-frame weights ``(length,)``: linear ramps over the overlapping ends of a window."""
    weights = torch.ones(length)
    ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
    if overlap and not first:
        weights[:overlap] = ramp
    if overlap and not last:
        weights[-overlap:] = ramp.flip(0)
    return weights


def sliding_window(
    complete: ClipFn,
    video: Tensor,
    mask: Tensor,
    clip_len: int = 32,
    overlap: int = 8,
    spatial_multiple: int = 8,
    temporal_multiple: int = 1,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Tensor:
    """Runs ``complete(clip (1,t,3,H',W'), mask (1,t,1,H',W')) -> (1,t,3,H',W')`` over a video.

    Args:
        video: ``T,3,H,W`` in [0,1]; mask: ``T,1,H,W`` with 1 = hole.
    Returns:
        ``T,3,H,W`` on the CPU: network output in the holes, ``video`` elsewhere.
    """
    if video.dim() != 4 or video.shape[1] != 3:
        raise ValueError(f"video must be T,3,H,W, got {tuple(video.shape)}")
    expected = (video.shape[0], 1, *video.shape[2:])
    if mask.shape != expected:
        raise ValueError(f"mask must be T,1,H,W = {expected}, got {tuple(mask.shape)}")
    num_frames, _, h, w = video.shape
    pad_h, pad_w = -h % spatial_multiple, -w % spatial_multiple
    total = torch.zeros(video.shape, dtype=torch.float32)
    weight_sum = torch.zeros(num_frames, 1, 1, 1)
    starts = window_starts(num_frames, clip_len, overlap)
    for i, start in enumerate(track(starts, "inpainting", disable=not progress)):
        end = min(start + clip_len, num_frames)
        clip, clip_mask = video[start:end].float(), mask[start:end].float()
        pad_t = -(end - start) % temporal_multiple
        clip = F.pad(clip, (0, pad_w, 0, pad_h), mode="replicate")
        clip_mask = F.pad(clip_mask, (0, pad_w, 0, pad_h), mode="replicate")
        if pad_t:
            clip = torch.cat([clip, clip[-1:].expand(pad_t, -1, -1, -1)])
            clip_mask = torch.cat([clip_mask, clip_mask[-1:].expand(pad_t, -1, -1, -1)])
        out = complete(clip[None].to(device), clip_mask[None].to(device))[0].float().cpu()
        out = out[: end - start, :, :h, :w]
        weights = blend_weights(end - start, min(overlap, end - start), i == 0, end == num_frames)
        total[start:end] += out * weights.view(-1, 1, 1, 1)
        weight_sum[start:end] += weights.view(-1, 1, 1, 1)
    blended = (total / weight_sum).clamp(0, 1)
    hole = mask.float()
    return blended * hole + video.float() * (1 - hole)
