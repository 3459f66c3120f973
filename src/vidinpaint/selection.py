"""What ``vidinpaint-inpaint`` fills: box masks given as coordinates, frame ranges, the hole's
dilation.

- ``mask=box:x,y,w,h``: a rectangle in pixels of the input (``x, y`` its top-left corner);
  several boxes separated by ``+`` (or ``;``), each optionally limited to frames
  ``@START:END`` (``END`` excluded, either end may be left out): ``box:0,0,200,80@0:50+
  1700,1000,200,60``. A box that reaches past the frame, or a range past the video's end, is
  an error.
- ``frames=START:END``: the same range syntax for the frames to fill.
- ``dilate_holes``: the hole grown by N pixels (a square of side 2N+1) before filling.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vidinpaint.errors import UserError

BOX_PREFIX = "box:"
_BOX = re.compile(r"(\d+),(\d+),(\d+),(\d+)(?:@(\d*:\d*))?")
_RANGE = re.compile(r"(\d*):(\d*)")


def is_box_spec(mask: object) -> bool:
    """``mask`` is a ``box:...`` specification, not a path."""
    return isinstance(mask, str) and mask.startswith(BOX_PREFIX)


def parse_range(text: str, num_frames: int, what: str) -> tuple[int, int]:
    """``START:END`` (END excluded; an empty end is the video's start or end) as
    ``(start, stop)`` within ``num_frames``; a range that is empty or past the end is an
    error naming ``what``."""
    match = _RANGE.fullmatch(text.strip())
    if match is None:
        raise UserError(f"{what}: {text!r} is not START:END (frame numbers from 0, END excluded)")
    start = int(match[1]) if match[1] else 0
    stop = int(match[2]) if match[2] else num_frames
    if stop > num_frames:
        raise UserError(f"{what}: frames {start}:{stop} run past the video's {num_frames} frames")
    if start >= stop:
        raise UserError(f"{what}: frames {start}:{stop} hold no frame (END is excluded)")
    return start, stop


@dataclass(frozen=True)
class Box:
    """A rectangle ``x, y, w, h`` in pixels over frames ``[start, stop)``."""

    x: int
    y: int
    w: int
    h: int
    start: int
    stop: int


def parse_boxes(spec: str, height: int, width: int, num_frames: int) -> list[Box]:
    """The boxes of ``box:x,y,w,h[@START:END]+...``, checked against a video of ``num_frames``
    frames of ``height`` x ``width``."""
    boxes = []
    for part in re.split(r"[+;]", spec[len(BOX_PREFIX) :]):
        match = _BOX.fullmatch(part.strip())
        if match is None:
            raise UserError(
                f"mask={spec}: {part!r} is not x,y,w,h or x,y,w,h@START:END (pixels of the "
                "input, boxes separated by +; e.g. mask=box:10,20,200,80@0:50)"
            )
        x, y, w, h = (int(v) for v in match.groups()[:4])
        if w < 1 or h < 1:
            raise UserError(f"mask={spec}: box {x},{y},{w},{h} is empty (w and h must be >= 1)")
        if x + w > width or y + h > height:
            raise UserError(
                f"mask={spec}: box {x},{y},{w},{h} reaches past the {width}x{height} frame "
                f"(x + w <= {width}, y + h <= {height})"
            )
        start, stop = 0, num_frames
        if match[5] is not None:
            start, stop = parse_range(match[5], num_frames, f"mask={spec}")
        boxes.append(Box(x, y, w, h, start, stop))
    return boxes


class BoxMask:
    """Holes drawn from ``box:`` specifications, with ``MaskSource``'s interface: one static
    mask (``num_frames`` 1) unless a box has a frame range, then one per video frame."""

    def __init__(self, spec: str, height: int, width: int, num_frames: int) -> None:
        self.path = spec
        self.height, self.width = height, width
        self.boxes = parse_boxes(spec, height, width, num_frames)
        ranged = any((b.start, b.stop) != (0, num_frames) for b in self.boxes)
        self.num_frames = num_frames if ranged else 1

    def chunks(self, chunk_frames: int) -> Iterator[Tensor]:
        """Holes bool ``(t, 1, H, W)`` in order, ``chunk_frames`` at a time."""
        for first in range(0, self.num_frames, chunk_frames):
            last = min(first + chunk_frames, self.num_frames)
            holes = torch.zeros(last - first, 1, self.height, self.width, dtype=torch.bool)
            for box in self.boxes:
                frames = slice(max(box.start, first) - first, max(min(box.stop, last) - first, 0))
                holes[frames, :, box.y : box.y + box.h, box.x : box.x + box.w] = True
            yield holes


def dilate_holes(holes: Tensor, pixels: int) -> Tensor:
    """bool ``(t, 1, H, W)`` holes grown by ``pixels`` (a square of side ``2 pixels + 1``)."""
    if pixels == 0:
        return holes
    grown = F.max_pool2d(holes.float(), 2 * pixels + 1, stride=1, padding=pixels)
    return grown > 0.5
