"""The size a method works at (``vidinpaint-inpaint resolution=``), chosen before any decoding.

- Classic fills (``telea``, ``propagate``) copy real pixels: they work at the input's own size,
  scaled down (aspect ratio kept) only when a frame has more than ``classic_max_pixels``.
- Learned methods need sides in multiples of 64 (the internal-learning network; the AAAI'19
  networks need multiples of 4r, which 64 covers), and reflection padding
  (``model.pad_mode=reflect``, the ICCV'19 code) needs sides of at least 192. ``auto`` picks
  the largest such size within ``working_pixels`` pixels (and not above the input's) whose
  aspect ratio is within 10% of the input's; when none is that small, the smallest one the
  method supports (a small video is then up-sampled rather than squashed).
"""

from __future__ import annotations

import math
from typing import Any

from vidinpaint import models
from vidinpaint.errors import UserError

LEARNED_MULTIPLE = models.METHODS["dip_vid_flow"].pixel_multiple
"""Sides of the learned methods' working size: the skip net's multiple (which covers the
AAAI'19 networks' 4r)."""
REFLECT_MIN_SIDE = 3 * LEARNED_MULTIPLE
"""Reflection padding at the network's deepest level needs frames of at least 192x192."""
ASPECT_TOLERANCE = 0.1
"""A working size's aspect ratio may differ from the input's by at most this fraction."""


def min_side(pad_mode: str | None) -> int:
    """The smallest side a learned method supports with its padding."""
    return REFLECT_MIN_SIDE if pad_mode == "reflect" else LEARNED_MULTIPLE


def classic_resolution(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """The input's size, or scaled by one factor to at most ``max_pixels`` pixels (even sides,
    so that the aspect ratio is kept to within a pixel)."""
    if max_pixels < 1:
        raise UserError(f"classic_max_pixels must be >= 1, got {max_pixels}")
    if height * width <= max_pixels:
        return height, width
    scale = math.sqrt(max_pixels / (height * width))
    return max(2, int(height * scale) // 2 * 2), max(2, int(width * scale) // 2 * 2)


def aspect_error(size: tuple[int, int], height: int, width: int) -> float:
    """|log| of the ratio between ``size``'s aspect ratio and the input's (0: the same)."""
    return abs(math.log((size[1] / size[0]) / (width / height)))


def learned_resolution(
    height: int, width: int, max_pixels: int, smallest: int = LEARNED_MULTIPLE
) -> tuple[int, int]:
    """``resolution=auto`` for a learned method (module docstring): sides in multiples of 64,
    each at least ``smallest``, aspect ratio within 10% of ``height`` x ``width``.

    272x640 -> 128x320, 240x432 -> 192x320, 144x176 -> 192x256 (up-sampled: 128x128 would
    squash it by 18%); with reflection padding (``smallest=192``) 272x640 -> 192x448.
    """
    if max_pixels < LEARNED_MULTIPLE**2:
        raise UserError(f"working_pixels must be >= {LEARNED_MULTIPLE**2}, got {max_pixels}")
    tolerance = math.log(1 + ASPECT_TOLERANCE)
    budget = min(max_pixels, height * width)
    longest = max(height, width, smallest) * 4
    candidates = []
    for h in range(smallest, longest + 1, LEARNED_MULTIPLE):
        ideal = h * width / height / LEARNED_MULTIPLE
        for w in {math.floor(ideal) * LEARNED_MULTIPLE, math.ceil(ideal) * LEARNED_MULTIPLE}:
            if w >= smallest and aspect_error((h, w), height, width) <= tolerance:
                candidates.append((h, w))
    if not candidates:  # an extreme aspect ratio: the closest one at the smallest height
        w = max(smallest, round(smallest * width / height / LEARNED_MULTIPLE) * LEARNED_MULTIPLE)
        h = max(smallest, round(smallest * height / width / LEARNED_MULTIPLE) * LEARNED_MULTIPLE)
        return (smallest, w) if width >= height else (h, smallest)
    within = [size for size in candidates if size[0] * size[1] <= budget]
    if within:
        return max(within, key=lambda s: (s[0] * s[1], -aspect_error(s, height, width)))
    return min(candidates, key=lambda s: (s[0] * s[1], aspect_error(s, height, width)))


def check_learned_size(size: tuple[int, int], method: str, pad_mode: str | None) -> None:
    """An explicit ``resolution=[H, W]`` against what a learned method supports (one line)."""
    if any(s % LEARNED_MULTIPLE for s in size):
        raise UserError(
            f"method={method} needs a resolution in multiples of {LEARNED_MULTIPLE}, got "
            f"{list(size)} (or resolution=auto)"
        )
    smallest = min_side(pad_mode)
    if min(size) < smallest:
        raise UserError(
            f"method={method} with model.pad_mode={pad_mode} needs sides of at least "
            f"{smallest}, got resolution={list(size)} (use resolution=auto, a larger size, or "
            "model.pad_mode=replicate)"
        )


def explicit_size(resolution: Any) -> tuple[int, int] | None:
    """``resolution=[H, W]`` as a tuple, None for ``auto``; anything else is a one-line error."""
    if resolution == "auto":
        return None
    if isinstance(resolution, str) or len(resolution) != 2 or min(resolution) < 1:
        raise UserError(f"resolution must be [H, W] or auto, got {resolution!r}")
    return int(resolution[0]), int(resolution[1])


def check_resolution(cfg: Any) -> None:
    """Before decoding: the ``resolution`` option and, when explicit, an internal method's size
    rules (the AAAI'19 networks are padded to their multiples by ``inference.sliding_window``)."""
    size = explicit_size(cfg.resolution)
    method = cfg.model.method
    if size is not None and models.method(method).family == models.FITTED:
        check_learned_size(size, method, cfg.model.get("pad_mode"))


def resolve_resolution(cfg: Any, height: int, width: int) -> tuple[int, int]:
    """The working size of ``cfg.model.method`` on a ``height`` x ``width`` input."""
    size = explicit_size(cfg.resolution)
    if size is not None:
        return size
    if models.method(cfg.model.method).family == models.CLASSIC:
        return classic_resolution(height, width, int(cfg.classic_max_pixels))
    smallest = min_side(cfg.model.get("pad_mode"))
    return learned_resolution(height, width, int(cfg.working_pixels), smallest)
