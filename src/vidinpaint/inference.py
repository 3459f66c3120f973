"""Applying a method to a video of any length and size.

``sliding_window``: windows of ``clip_len`` frames overlap by ``overlap`` frames and are
blended with linear ramps; frames are padded (replicate) to a multiple of ``spatial_multiple``
and cropped back; known pixels are pasted back at the end.

``stream_inpaint``: the same over a stream, for videos that do not fit in memory: chunks of
``chunk_frames`` frames are read, brought to the working resolution, inpainted, blended with
the previous chunk over their overlap, pasted into the original frames and handed on; only
one chunk (and the blended overlap) is held at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from rich.progress import track
from torch import Tensor

from vidinpaint.errors import check_video_mask

log = logging.getLogger(__name__)

ClipFn = Callable[[Tensor, Tensor], Tensor]
ChunkFn = Callable[[Tensor, Tensor, int], Tensor]
Box = tuple[int, int, int, int]
"""``(top, bottom, left, right)`` pixel rows and columns of a frame region (ends excluded)."""
RESIZE_FRAMES = 8
"""Frames resized or pasted at a time (bounds the float copies of full-size frames)."""
ANY_COVERAGE = "any"
"""``resize_holes``' default coverage: a pixel is a hole if any of its source pixels is."""
Coverage = float | str


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
    if overlap and not first:
        weights[:overlap] = ramp(overlap)
    if overlap and not last:
        weights[-overlap:] = ramp(overlap).flip(0)
    return weights


def ramp(length: int) -> Tensor:
    """``(length,)`` weights rising linearly from 0 to 1, both ends excluded."""
    return torch.arange(1, length + 1, dtype=torch.float32) / (length + 1)


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
    check_video_mask(video, mask)
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


def resize_frames(frames: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 ``T,H,W,3`` -> float ``T,3,h,w`` in [0,1] (antialiased bilinear)."""
    parts = []
    for start in range(0, frames.shape[0], RESIZE_FRAMES):
        video = frames[start : start + RESIZE_FRAMES].permute(0, 3, 1, 2).float() / 255
        if tuple(video.shape[-2:]) != tuple(size):
            video = F.interpolate(
                video, size=size, mode="bilinear", antialias=True, align_corners=False
            )
        parts.append(video)
    return torch.cat(parts)


def check_coverage(coverage: object) -> Coverage:
    """``coverage`` of ``resize_holes``: ``any`` or a number in (0, 1]; else a ValueError."""
    number = isinstance(coverage, int | float) and not isinstance(coverage, bool)
    if coverage != ANY_COVERAGE and not (number and 0 < coverage <= 1):
        raise ValueError(f"mask_coverage must be {ANY_COVERAGE!r} or in (0, 1], got {coverage!r}")
    return coverage


def resize_holes(holes: Tensor, size: tuple[int, int], coverage: Coverage = ANY_COVERAGE) -> Tensor:
    """bool ``T,1,H,W`` -> float ``T,1,h,w``: a pixel is a hole if the fraction of its area
    that is hole (area interpolation) is > 0 (``coverage="any"``) or >= ``coverage`` (a number
    in (0, 1]; 0.5 is the public ICCV'19 code's INTER_AREA resize thresholded at 127)."""
    check_coverage(coverage)
    parts = []
    for start in range(0, holes.shape[0], RESIZE_FRAMES):
        area = holes[start : start + RESIZE_FRAMES].float()
        if tuple(area.shape[-2:]) != tuple(size):
            area = F.interpolate(area, size=size, mode="area")
        parts.append((area > 0 if coverage == ANY_COVERAGE else area >= coverage).float())
    return torch.cat(parts)


def paste(frames: Tensor, filled: Tensor, holes: Tensor, box: Box | None = None) -> Tensor:
    """Original uint8 ``T,H,W,3`` with the up-sampled ``filled`` (``T,3,h,w``: the frames'
    ``box`` region, or the whole frames) in the holes (bool ``T,1,H,W``)."""
    if box is not None:
        top, bottom, left, right = box
        result = frames.clone()
        region = (slice(None), slice(top, bottom), slice(left, right))
        result[region] = paste(frames[region], filled, holes[..., top:bottom, left:right])
        return result
    height, width = frames.shape[1:3]
    result = frames.clone()
    for start in range(0, frames.shape[0], RESIZE_FRAMES):
        part = slice(start, start + RESIZE_FRAMES)
        up = filled[part]
        if tuple(up.shape[-2:]) != (height, width):
            up = F.interpolate(up, size=(height, width), mode="bilinear", align_corners=False)
        up = (up.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        result[part] = torch.where(holes[part].permute(0, 2, 3, 1), up, frames[part])
    return result


class ForwardBuffer:
    """Frames ``[start, stop)`` of a stream of chunks (``T,...`` tensors), for ranges that
    only move forward: chunks wholly before the last ``start`` are dropped, chunks read as
    needed, and each range is copied out once."""

    def __init__(self, chunks: Iterator[Tensor], name: str) -> None:
        self.chunks, self.name = chunks, name
        self.held: list[Tensor] = []
        self.offset = 0  # frame number of held[0][0]

    def take(self, start: int, stop: int) -> Tensor:
        if start < self.offset:
            raise ValueError(f"{self.name}: frame {start} was already dropped")
        while self.held and self.offset + self.held[0].shape[0] <= start:
            self.offset += self.held.pop(0).shape[0]
        if self.held and self.offset < start:  # keep a copy of the tail, free the rest
            self.held[0] = self.held[0][start - self.offset :].clone()
        self.offset = start
        end = start + sum(chunk.shape[0] for chunk in self.held)
        while end < stop:
            chunk = next(self.chunks, None)
            if chunk is None:
                raise ValueError(f"{self.name} ended at frame {end}, {stop} were expected")
            self.held.append(chunk)
            end += chunk.shape[0]
        self.held = [torch.cat(self.held)]
        return self.held[0][: stop - start]


def stream_inpaint(
    complete: ChunkFn,
    frames: Iterator[Tensor],
    holes: Iterator[Tensor],
    num_frames: int,
    resolution: tuple[int, int],
    chunk_frames: int,
    overlap: int,
    box: Box | None = None,
    coverage: Coverage = ANY_COVERAGE,
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Inpaints a stream chunk by chunk; yields each frame once, in order, when it is final.

    Args:
        complete: ``(video T,3,h,w in [0,1], hole T,1,h,w {0,1}, chunk index) -> T,3,h,w``,
            e.g. a system's ``inpaint``; not called for a chunk without holes.
        frames: uint8 ``(t,H,W,3)`` chunks of any length; holes: bool ``(t,1,H,W)`` chunks.
        num_frames: frames in the stream; resolution: ``(h, w)`` the method works at.
        chunk_frames, overlap: chunk length and frames shared by consecutive chunks (the last
            chunk ends at the last frame, so it may share more).
        box: the frame region the method sees (brought to ``resolution``) and whose holes it
            fills, holding every hole (None: the whole frame).
        coverage: how the holes are shrunk to ``resolution`` (``resize_holes``).
    Yields:
        ``(frames, holes, result)``: the input frames, their holes and the uint8 result (the
        up-sampled fill pasted into the holes), over consecutive ranges of at most
        ``RESIZE_FRAMES`` frames. In a shared range the fills of the two chunks are mixed with
        linear ramps (no seam).
    """
    starts = window_starts(num_frames, chunk_frames, overlap)
    frame_buffer, hole_buffer = ForwardBuffer(frames, "video"), ForwardBuffer(holes, "mask")
    shared: Tensor | None = None  # the previous chunk's fill of frames it shares with this one
    for index, start in enumerate(starts):
        stop = min(start + chunk_frames, num_frames)
        final = starts[index + 1] if index + 1 < len(starts) else stop
        if len(starts) > 1:
            log.info("chunk %d/%d: frames %d-%d", index + 1, len(starts), start, stop - 1)
        chunk, chunk_holes = frame_buffer.take(start, stop), hole_buffer.take(start, stop)
        top, bottom, left, right = box or (0, chunk.shape[1], 0, chunk.shape[2])
        video = resize_frames(chunk[:, top:bottom, left:right], resolution)
        hole = resize_holes(chunk_holes[..., top:bottom, left:right], resolution, coverage)
        filled = complete(video, hole, index).float().cpu() if hole.any() else video
        if shared is not None:
            weight = ramp(shared.shape[0]).view(-1, 1, 1, 1)
            filled[: shared.shape[0]] = shared * (1 - weight) + filled[: shared.shape[0]] * weight
        keep = final - start
        shared = filled[keep:] if index + 1 < len(starts) else None
        for first in range(0, keep, RESIZE_FRAMES):  # no full-size copy of the whole chunk
            part = slice(first, min(first + RESIZE_FRAMES, keep))
            frames_part, holes_part = chunk[part], chunk_holes[part]
            yield frames_part, holes_part, paste(frames_part, filled[part], holes_part, box)
