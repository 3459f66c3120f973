"""Hole mask generators (config group data/mask): 1 = hole.

Every generator is called as `mask(num_frames, height, width, generator, clip)` and returns a
float (T, 1, H, W) tensor of {0, 1}; all randomness comes from the torch.Generator, so a seed
gives the same holes on every machine (validation masks are seeded per clip index).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from vidinpaint.data.sources import Box, SourceError, probe_frames, probe_video
from vidinpaint.video_io import VIDEO_SUFFIXES, read_masks


@dataclass(frozen=True)
class ClipSource:
    """Where a clip comes from: its source video (frame count, size), its own mask source if
    any, first frame and crop box. Only the `file` generator needs it."""

    path: Path
    num_frames: int
    height: int
    width: int
    start: int = 0
    box: Box | None = None
    mask_path: Path | None = None


class MaskGenerator(ABC):
    @abstractmethod
    def __call__(
        self,
        num_frames: int,
        height: int,
        width: int,
        generator: torch.Generator,
        clip: ClipSource | None = None,
    ) -> Tensor:
        """Holes for one clip: float (num_frames, 1, height, width) in {0, 1}."""

    def check(self, clip: ClipSource) -> None:  # noqa: B027 (optional hook)
        """Raise ValueError if this generator cannot make masks for the clip's video."""


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    """Uniform integer in [low, high] (inclusive)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


class BoxMask(MaskGenerator):
    """One rectangle with sides drawn in [min_side, max_side] x the frame side (AAAI'19:
    [0.375 l, 0.5 l], e.g. 48..64 px at 128), at the same place in all frames, or a new box
    in every frame (per_frame=True)."""

    def __init__(self, min_side: float = 0.375, max_side: float = 0.5, per_frame: bool = False):
        if not 0 < min_side <= max_side <= 1:
            raise ValueError(f"need 0 < min_side <= max_side <= 1, got {min_side}, {max_side}")
        self.min_side, self.max_side, self.per_frame = min_side, max_side, per_frame

    def __call__(self, num_frames, height, width, generator, clip=None):
        mask = torch.zeros(num_frames, 1, height, width)
        for t in range(num_frames if self.per_frame else 1):
            box_h = _randint(
                max(1, int(np.ceil(self.min_side * height))), int(self.max_side * height), generator
            )
            box_w = _randint(
                max(1, int(np.ceil(self.min_side * width))), int(self.max_side * width), generator
            )
            y0 = _randint(0, height - box_h, generator)
            x0 = _randint(0, width - box_w, generator)
            frames = slice(t, t + 1) if self.per_frame else slice(None)
            mask[frames, :, y0 : y0 + box_h, x0 : x0 + box_w] = 1
        return mask


class FreeFormMask(MaskGenerator):
    """Random brush strokes (polylines of random walks with round joints), the same in all
    frames, or drifting with a constant velocity per stroke (moving=True).

    Lengths are fractions of the shorter frame side: each stroke has up to max_vertices
    segments of length <= max_segment, a brush width in brush_width, a speed <= max_speed.
    """

    def __init__(
        self,
        max_strokes: int = 4,
        max_vertices: int = 6,
        max_segment: float = 0.2,
        brush_width: tuple[float, float] = (0.03, 0.08),
        moving: bool = False,
        max_speed: float = 0.02,
    ):
        self.max_strokes, self.max_vertices, self.max_segment = (
            max_strokes,
            max_vertices,
            max_segment,
        )
        self.brush_width = (float(brush_width[0]), float(brush_width[1]))
        self.moving, self.max_speed = moving, max_speed

    def __call__(self, num_frames, height, width, generator, clip=None):
        side = min(height, width)
        strokes = []
        for _ in range(_randint(1, self.max_strokes, generator)):
            rand = torch.rand(4, generator=generator).tolist()
            point = np.array([rand[0] * width, rand[1] * height])
            thickness = max(
                1, round(side * (self.brush_width[0] + rand[2] * np.diff(self.brush_width)[0]))
            )
            points = [point]
            for _ in range(_randint(1, self.max_vertices, generator)):
                angle, length = torch.rand(2, generator=generator).tolist()
                step = length * self.max_segment * side
                point = point + step * np.array(
                    [np.cos(2 * np.pi * angle), np.sin(2 * np.pi * angle)]
                )
                points.append(point)
            velocity = (torch.rand(2, generator=generator).numpy() * 2 - 1) * self.max_speed * side
            strokes.append((np.array(points), thickness, velocity if self.moving else 0 * velocity))
        frames = []
        for t in range(num_frames if self.moving else 1):
            canvas = np.zeros((height, width), np.uint8)
            for points, thickness, velocity in strokes:
                shifted = np.round(points + t * velocity).astype(np.int32)
                cv2.polylines(canvas, [shifted], False, 1, thickness, lineType=cv2.LINE_8)
                for x, y in shifted:
                    cv2.circle(canvas, (int(x), int(y)), thickness // 2, 1, -1)
            frames.append(torch.from_numpy(canvas).float())
        mask = torch.stack(frames)[:, None]
        return mask.expand(num_frames, 1, height, width).clone()


@functools.lru_cache(maxsize=1)
def _cached_masks(path: str) -> Tensor:
    return read_masks(path)


def _mask_shape(path: Path) -> tuple[int, int, int]:
    """(frames, height, width) of a mask video, mask-frame folder or single image."""
    if not path.exists():
        raise FileNotFoundError(f"mask not found: {path}")
    try:
        if path.is_dir():
            info = probe_frames(path)
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            info = probe_video(path)
        else:
            with Image.open(path) as image:
                return 1, image.height, image.width
    except SourceError as err:
        raise ValueError(f"mask {path}: {err}") from err
    return info.num_frames, info.height, info.width


class FileMask(MaskGenerator):
    """Masks read from disk (non-zero = hole): a mask video, a folder of mask frames, or one
    static image used for every frame.

    path: one mask source for every video; null: each video's own masks (e.g. the frames
    adapter's mask folders). The mask must have the video's frame count (or be one image) and
    size; a different size is an error unless resize=True (nearest-neighbour resize). The
    clip's crop box and output size are applied like for the video.
    """

    def __init__(self, path: str | None = None, resize: bool = False):
        self.path = Path(path) if path is not None else None
        self.resize = resize

    def _source(self, clip: ClipSource | None) -> Path:
        if clip is None:
            raise ValueError("the file mask generator needs the clip's source (clip=...)")
        if self.path is not None:
            return self.path
        if clip.mask_path is None:
            raise ValueError(f"video {clip.path} has no mask folder; set data.mask.path")
        return clip.mask_path

    def _check_shape(self, source: Path, shape: tuple[int, int, int], clip: ClipSource) -> None:
        frames, height, width = shape
        if frames not in (1, clip.num_frames):
            raise ValueError(
                f"mask {source} has {frames} frames but video {clip.path} has {clip.num_frames}"
            )
        if (height, width) != (clip.height, clip.width) and not self.resize:
            raise ValueError(
                f"mask {source} is {height}x{width} but video {clip.path} is "
                f"{clip.height}x{clip.width} (set data.mask.resize=true to resize masks)"
            )

    def check(self, clip: ClipSource) -> None:  # noqa: B027 (optional hook)
        source = self._source(clip)
        self._check_shape(source, _mask_shape(source), clip)

    def __call__(self, num_frames, height, width, generator, clip=None):
        source = self._source(clip)
        masks = _cached_masks(str(source))
        self._check_shape(source, tuple(masks.shape[i] for i in (0, 2, 3)), clip)
        if masks.shape[0] == 1:
            masks = masks.expand(num_frames, -1, -1, -1)
        else:
            masks = masks[clip.start : clip.start + num_frames]
        masks = masks.float()
        if masks.shape[2:] != (clip.height, clip.width):
            masks = F.interpolate(masks, size=(clip.height, clip.width), mode="nearest")
        if clip.box is not None:
            x0, y0, x1, y1 = clip.box
            masks = masks[:, :, y0:y1, x0:x1]
        if masks.shape[2:] != (height, width):
            masks = F.interpolate(masks, size=(height, width), mode="nearest")
        return masks.contiguous()


MASKS = {
    "box_static": BoxMask,
    "box_random": functools.partial(BoxMask, per_frame=True),
    "freeform": FreeFormMask,
    "file": FileMask,
}
"""Generators by config name with their default options (conf/data/mask/<name>.yaml)."""


def make_mask(mask: MaskGenerator | str) -> MaskGenerator:
    """A generator, or one named in MASKS (so `data.mask=box_random` works like
    `data/mask=box_random`)."""
    if isinstance(mask, MaskGenerator):
        return mask
    if mask not in MASKS:
        raise ValueError(f"unknown mask {mask!r}, expected one of {sorted(MASKS)}")
    return MASKS[mask]()
