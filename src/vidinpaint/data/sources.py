"""Frame sources: video files (decord), frame folders (PIL) and Norpix .seq files (cv2).

Every source is described by plain data (path, kind, frame count, size, .seq offsets) so an
index can be cached as JSON; readers are opened per call (per item in a DataLoader worker),
never kept in the parent process.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vidinpaint.errors import one_line
from vidinpaint.video_io import frame_files

Box = tuple[int, int, int, int]
"""Crop box (x0, y0, x1, y1) in pixels, end exclusive."""

SEQ_MAGIC = 0xFEED
SEQ_HEADER_BYTES = 1024
SEQ_JPEG_FORMATS = (102, 201)


class SourceError(ValueError):
    """A source cannot be used; the message is the skip reason (one line)."""


@dataclass(frozen=True)
class SourceInfo:
    """What the index stores about one source: kind is "video", "frames" or "seq"."""

    num_frames: int
    height: int
    width: int
    seq_offsets: tuple[int, ...] | None = None


def probe_video(path: Path) -> SourceInfo:
    """Frame count and size of a video file; decodes its last frame to catch truncation."""
    import decord

    try:
        reader = decord.VideoReader(str(path), num_threads=1)
        num_frames = len(reader)
        if num_frames == 0:
            raise SourceError("no frames")
        height, width = reader[num_frames - 1].shape[:2]
    except SourceError:
        raise
    except Exception as err:  # decord raises DECORDError / RuntimeError / IndexError
        raise SourceError(f"unreadable: {one_line(err)}") from err
    return SourceInfo(num_frames, height, width)


def probe_frames(folder: Path) -> SourceInfo:
    """Frame count and size (of the first image) of a frame folder."""
    files = frame_files(folder)
    if not files:
        raise SourceError("no image files")
    try:
        with Image.open(files[0]) as image:
            width, height = image.size
    except Exception as err:
        raise SourceError(f"unreadable image {files[0].name}: {one_line(err)}") from err
    return SourceInfo(len(files), height, width)


def read_seq_header(path: Path) -> dict[str, float]:
    """Norpix .seq header fields: width, height, bit_depth, image_format, frame_count, fps."""
    with open(path, "rb") as f:
        header = f.read(SEQ_HEADER_BYTES)
    if len(header) < SEQ_HEADER_BYTES:
        raise SourceError(f"truncated header ({len(header)} of {SEQ_HEADER_BYTES} bytes)")
    (magic,) = struct.unpack_from("<I", header, 0)
    if magic != SEQ_MAGIC:
        raise SourceError(f"not a Norpix .seq file (magic {magic:#x}, expected {SEQ_MAGIC:#x})")
    fields = struct.unpack_from("<9I", header, 548)
    (fps,) = struct.unpack_from("<d", header, 584)
    return {
        "width": fields[0],
        "height": fields[1],
        "bit_depth": fields[2],
        "image_format": fields[5],
        "frame_count": fields[6],
        "fps": fps,
    }


def _is_frame_start(data: bytes) -> bool:
    """True if data (8 bytes) is a frame record start: uint32 size, then a JPEG SOI marker."""
    return len(data) == 8 and struct.unpack_from("<I", data)[0] > 4 and data[4:6] == b"\xff\xd8"


def index_seq(path: Path) -> SourceInfo:
    """Scan the frame records of a JPEG .seq file once (seeks only, no decoding).

    A record is uint32 nBytes (counting itself), nBytes - 4 bytes of JPEG, an 8-byte timestamp,
    and in Caltech files 8 more padding bytes; the padding is detected from the first frame.
    Raises SourceError if the file is not a JPEG .seq or ends before its header's frame count.
    """
    header = read_seq_header(path)
    if header["image_format"] not in SEQ_JPEG_FORMATS:
        raise SourceError(f"unsupported .seq image format {header['image_format']} (JPEG only)")
    expected = int(header["frame_count"])
    file_size = path.stat().st_size
    offsets: list[int] = []
    padding = 0
    offset = SEQ_HEADER_BYTES
    with open(path, "rb") as f:
        while len(offsets) < expected:
            f.seek(offset)
            start = f.read(8)
            if not _is_frame_start(start):
                break
            (num_bytes,) = struct.unpack_from("<I", start)
            if offset + num_bytes + 8 > file_size:
                break
            if not offsets and expected > 1:
                f.seek(offset + num_bytes + 8)
                padding = 0 if _is_frame_start(f.read(8)) else 8
            offsets.append(offset)
            offset += num_bytes + 8 + padding
    if len(offsets) < expected:
        raise SourceError(f"truncated: header says {expected} frames, found {len(offsets)}")
    return SourceInfo(
        expected, int(header["height"]), int(header["width"]), seq_offsets=tuple(offsets)
    )


def probe(path: Path, kind: str) -> SourceInfo:
    """SourceInfo of a source of the given kind ("video", "frames" or "seq")."""
    if kind == "video":
        return probe_video(path)
    if kind == "frames":
        return probe_frames(path)
    if kind == "seq":
        return index_seq(path)
    raise ValueError(f"unknown source kind {kind!r}, expected video, frames or seq")


def read_frames(
    path: Path,
    kind: str,
    start: int,
    count: int,
    seq_offsets: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Frames [start, start + count) as uint8 (T, H, W, 3) RGB.

    Video files are read at their own size: decord's in-decoder resizing (width=, height=)
    fails for some small widths (e.g. 16, 24, 48 px), so clips are resized with cv2 instead.
    """
    indices = list(range(start, start + count))
    if kind == "video":
        import decord

        return decord.VideoReader(str(path), num_threads=1).get_batch(indices).asnumpy()
    if kind == "frames":
        files = frame_files(path)
        return np.stack([np.asarray(Image.open(files[i]).convert("RGB")) for i in indices])
    if kind == "seq":
        if seq_offsets is None:
            raise ValueError(f"reading {path} needs its frame offsets (index_seq)")
        frames = []
        with open(path, "rb") as f:
            for i in indices:
                f.seek(seq_offsets[i])
                (num_bytes,) = struct.unpack("<I", f.read(4))
                jpeg = np.frombuffer(f.read(num_bytes - 4), dtype=np.uint8)
                image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f"corrupt JPEG in frame {i} of {path}")
                frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return np.stack(frames)
    raise ValueError(f"unknown source kind {kind!r}, expected video, frames or seq")


def crop_resize(frames: np.ndarray, box: Box, size: tuple[int, int]) -> np.ndarray:
    """Crop (T, H, W, C) frames to box and resize to size (height, width) with INTER_AREA."""
    x0, y0, x1, y1 = box
    cropped = frames[:, y0:y1, x0:x1]
    height, width = size
    if cropped.shape[1:3] == (height, width):
        return np.ascontiguousarray(cropped)
    interpolation = cv2.INTER_AREA if cropped.shape[1] >= height else cv2.INTER_LINEAR
    resized = [cv2.resize(f, (width, height), interpolation=interpolation) for f in cropped]
    return np.stack(resized).reshape(len(frames), height, width, -1)


def center_box(height: int, width: int, aspect: float | None) -> Box:
    """Largest centred box of aspect width/height (None: the whole frame)."""
    if aspect is None:
        return (0, 0, width, height)
    if width / height > aspect:
        crop_w = min(width, round(height * aspect))
        x0 = (width - crop_w) // 2
        return (x0, 0, x0 + crop_w, height)
    crop_h = min(height, round(width / aspect))
    y0 = (height - crop_h) // 2
    return (0, y0, width, y0 + crop_h)


def square_box(
    x_min: float, y_min: float, x_max: float, y_max: float, scale: float, height: int, width: int
) -> Box:
    """Square of side scale * max(w, h) centred on a bounding box, shrunk to fit the frame."""
    side = max(min(int(round(scale * max(x_max - x_min, y_max - y_min))), height, width), 1)
    x0 = int(round((x_min + x_max) / 2 - side / 2))
    y0 = int(round((y_min + y_max) / 2 - side / 2))
    x0 = min(max(x0, 0), width - side)
    y0 = min(max(y0, 0), height - side)
    return (x0, y0, x0 + side, y0 + side)


def read_pts(path: Path) -> np.ndarray:
    """Landmarks of a .pts file (`version: 1`, `n_points: N`, `{`, N lines `x y`, `}`): (N, 2)."""
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:
        n_points = int(next(line for line in lines if line.startswith("n_points")).split(":")[1])
        begin = lines.index("{")
        end = lines.index("}", begin)
        points = np.array([[float(v) for v in line.split()] for line in lines[begin + 1 : end]])
    except (StopIteration, ValueError, IndexError) as err:
        raise SourceError(f"malformed .pts file {path.name}: {one_line(err)}") from err
    if points.shape != (n_points, 2):
        raise SourceError(
            f"malformed .pts file {path.name}: n_points {n_points}, got {len(points)} points"
        )
    return points
