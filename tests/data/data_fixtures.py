"""Writers of tiny test inputs: videos (helpers.py), Norpix .seq files, .pts landmark files."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from helpers import make_video, random_frames

__all__ = ["make_video", "random_frames", "write_pts", "write_seq"]


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
