"""Writers of tiny test inputs: videos, Norpix .seq files, .pts landmark files."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from vidinpaint.video_write import write_video


def random_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth-ish random uint8 (T, H, W, 3) frames (blurred noise compresses well)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, height // 4 + 1, width // 4 + 1, 3), np.uint8)
    return np.stack(
        [cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames]
    )


def make_video(path: Path, num_frames: int = 16, height: int = 32, width: int = 32, seed: int = 0):
    """Write an mp4/avi of random frames; returns the path."""
    return write_video(path, random_frames(num_frames, height, width, seed), fps=25)


def write_seq(path: Path, frames: np.ndarray, padding: bool, fps: float = 30.0) -> list[bytes]:
    """Write a Norpix .seq of JPEG frames (Caltech layout when padding); returns the JPEGs."""
    num_frames, height, width, _ = frames.shape
    header = bytearray(1024)
    struct.pack_into("<I", header, 0, 0xFEED)
    struct.pack_into(
        "<9I", header, 548, width, height, 24, 8, width * height * 3, 102, num_frames, 0, width * 3
    )
    struct.pack_into("<d", header, 584, fps)
    jpegs = []
    body = bytearray()
    for i, frame in enumerate(frames):
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        assert ok
        jpegs.append(jpeg.tobytes())
        body += struct.pack("<I", len(jpegs[-1]) + 4) + jpegs[-1]
        body += struct.pack("<IHH", 1000 + i, 0, 0) + (b"\x00" * 8 if padding else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(header) + bytes(body))
    return jpegs


def write_pts(path: Path, points: np.ndarray) -> None:
    lines = ["version: 1", f"n_points:  {len(points)}", "{"]
    lines += [f"{x:.6f} {y:.6f}" for x, y in points]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*lines, "}"]) + "\n")
