"""Procedural videos, deterministic from a seed, in three scenes (``SCENES``):

- ``objects``: smooth textured objects moving over a slowly panning smooth background; a hole's
  content is mostly predictable from its surroundings in the same frame.
- ``occlusion``: what a static hole covers is visible in other frames of the clip and cannot be
  guessed from the frame itself: a blocky random texture pans past the hole (the same camera
  pan in every video, 3/16 of the frame side per frame: within 4 frames it moves past a hole
  of half the side) and a blocky object passes behind it.

A dozen 64-frame 128x128 videos take about a second to generate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidinpaint.errors import check_choice
from vidinpaint.video_write import write_video

FPS = 25.0
SCENES = ("objects", "occlusion", "shimmer")
# shimmer: stripe period in pixels (2 px of the 3DCN grid at r = 2) and stripe amplitude
SHIMMER_PERIOD = 4.0
SHIMMER_AMPLITUDE = 0.45


def _texture(rng: np.random.Generator, height: int, width: int, waves: int = 6) -> np.ndarray:
    """Smooth colourful texture (H, W, 3) in [0, 1]: a sum of random oriented sinusoids."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for _ in range(waves):
        freq = rng.uniform(0.02, 0.15)
        angle = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * (np.cos(angle) * x + np.sin(angle) * y) + phase)
        image += wave[..., None] * rng.uniform(-1, 1, size=3).astype(np.float32)
    image = image / (2 * np.abs(image).max() + 1e-6) + 0.5
    return image


def _blocks(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Random colour blocks (H, W, 3) in [0, 1], ``cell`` px square: no spatial prediction."""
    grid = rng.random((height // cell + 1, width // cell + 1, 3), dtype=np.float32)
    return np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)[:height, :width]


def synthetic_video(
    seed: int, num_frames: int = 64, size: int = 128, num_objects: int = 3, scene: str = "objects"
) -> np.ndarray:
    """One video of a scene of ``SCENES``, uint8 (T, size, size, 3) RGB, deterministic from seed."""
    check_choice("synthetic scene", scene, SCENES)
    if scene == "occlusion":
        return occlusion_video(seed, num_frames, size)
    if scene == "shimmer":
        return shimmer_video(seed, num_frames, size)
    rng = np.random.default_rng(seed)
    margin = num_frames * 2 + size
    background = _texture(rng, margin, margin)
    pan = rng.uniform(-2, 2, size=2)
    origin = np.array([margin / 2 - size / 2] * 2) - pan * num_frames / 2
    objects = []
    for _ in range(num_objects):
        radius = rng.uniform(0.08, 0.2) * size
        objects.append(
            {
                "texture": _texture(rng, size, size, waves=3) * 0.6 + rng.uniform(0, 0.4, 3),
                "radius": radius,
                "position": rng.uniform(radius, size - radius, size=2),
                "velocity": rng.uniform(-3, 3, size=2),
                "square": bool(rng.integers(2)),
            }
        )
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        oy, ox = np.round(origin + pan * t).astype(int)
        frame = background[oy : oy + size, ox : ox + size].copy()
        for obj in objects:
            cy, cx = obj["position"] + obj["velocity"] * t
            cy = size - abs(size - abs(cy) % (2 * size))  # bounce off the borders
            cx = size - abs(size - abs(cx) % (2 * size))
            if obj["square"]:
                inside = np.maximum(np.abs(y - cy), np.abs(x - cx)) < obj["radius"]
            else:
                inside = (y - cy) ** 2 + (x - cx) ** 2 < obj["radius"] ** 2
            shift = (int(cy) - size // 2, int(cx) - size // 2)  # texture moves with the object
            frame[inside] = np.roll(obj["texture"], shift, axis=(0, 1))[inside]
        frames[t] = np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8)
    return frames


def occlusion_video(seed: int, num_frames: int = 64, size: int = 128) -> np.ndarray:
    """The ``occlusion`` scene, uint8 (T, size, size, 3): a blocky texture (cells of 1/8 of the
    side) panning left to right at 3/16 of the side per frame in every video (a camera that
    always pans the same way, as a dash-cam moves forward), and a blocky object (a quarter to
    a third of the side) crossing vertically at 1/16 of the side per frame, bouncing off the
    borders."""
    rng = np.random.default_rng(seed)
    cell = max(2, size // 8)
    pan = np.array([0.0, 3 * size / 16])
    margin = int(np.ceil(np.abs(pan).max() * num_frames)) + 1
    canvas = size + 2 * margin
    background = 0.7 * _blocks(rng, canvas, canvas, cell) + 0.3 * _texture(rng, canvas, canvas)
    origin = np.full(2, margin) - pan * (num_frames - 1) / 2
    side = int(rng.uniform(0.25, 0.34) * size)
    pixels = _blocks(rng, side, side, cell) * 0.6 + rng.uniform(0, 0.4, 3)
    position = rng.uniform(0, size - side, size=2)
    velocity = np.array([rng.choice([-1, 1]) * size / 16, 0.0])
    span = size - side  # bounce: the object stays fully inside the frame
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        oy, ox = np.round(origin + pan * t).astype(int)
        frame = background[oy : oy + size, ox : ox + size].copy()
        y, x = np.abs((position + velocity * t + span) % (2 * span) - span).round().astype(int)
        frame[y : y + side, x : x + side] = pixels
        frames[t] = np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8)
    return frames


def shimmer_video(seed: int, num_frames: int = 64, size: int = 128) -> np.ndarray:
    """The ``shimmer`` scene, uint8 (T, size, size, 3): a static background (random colour
    blocks of 1/8 of the side at weight 0.3 over a smooth texture at 0.7) plus grey stripes of
    ``SHIMMER_PERIOD`` px and amplitude ``SHIMMER_AMPLITUDE`` at one random orientation per
    video and a random phase in every frame."""
    rng = np.random.default_rng(seed)
    background = 0.3 * _blocks(rng, size, size, max(2, size // 8)) + 0.7 * _texture(rng, size, size)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    across = (np.cos(angle) * x + np.sin(angle) * y) * (2 * np.pi / SHIMMER_PERIOD)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        stripes = SHIMMER_AMPLITUDE * np.sin(across + rng.uniform(0, 2 * np.pi))
        frames[t] = np.clip((background + stripes[..., None]) * 255 + 0.5, 0, 255).astype(np.uint8)
    return frames


def write_synthetic_videos(
    folder: Path, num_videos: int, num_frames: int, size: int, seed: int, scene: str = "objects"
) -> list[Path]:
    """Write video_000.mp4 ... of a scene of ``SCENES`` into folder (atomically); the paths."""
    paths = []
    for i in range(num_videos):
        frames = synthetic_video(seed * 100_003 + i, num_frames, size, scene=scene)
        paths.append(write_video(folder / f"video_{i:03d}.mp4", frames, FPS, crf=12))
    return paths
