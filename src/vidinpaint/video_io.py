"""Reading videos, frame folders and masks (writing them: ``video_write``).

Long videos stream: ``VideoSource`` and ``MaskSource`` know a video's frame count, size and
rate without decoding it and yield its frames chunk by chunk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vidinpaint.errors import one_line

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LOSSY_SUFFIXES = (*VIDEO_SUFFIXES, ".jpg", ".jpeg")
FOLDER_FPS = 25.0
"""Frame rate reported for frame folders, which carry none."""


class VideoReadError(ValueError):
    """A video, frame folder or mask cannot be read (missing, unreadable or empty)."""


def visible_entries(folder: Path) -> list[Path]:
    """A folder's entries, sorted by name, without hidden ones (``.name``: an index such as
    ``.vidinpaint/``, a temp file being written, ``.DS_Store``)."""
    return sorted(p for p in Path(folder).iterdir() if not p.name.startswith("."))


def frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder, sorted by name (hidden files ignored)."""
    return [p for p in visible_entries(folder) if p.suffix.lower() in IMAGE_SUFFIXES]


class _DecordFile:
    """A video file through decord, for files PyAV cannot open; frame count from the container.

    After a ``get_batch`` decord's decoder thread goes on decoding the following frames into
    memory while the caller works (a 2,000-frame 720p file: 5 GB within seconds); seeking back
    to frame 0 after each read stops it, at the cost of decoding from the last keyframe again
    on the next read.
    """

    def __init__(self, path: Path) -> None:
        import decord

        self.reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
        self.num_frames = len(self.reader)
        self.audio_streams = 0  # not read through decord
        if self.num_frames:
            # get_batch, not reader[0]: decord fails only there for some widths (48)
            self.height, self.width = self.reader.get_batch([0]).shape[1:3]
            self.reader.seek(0)
        self.fps = float(self.reader.get_avg_fps())

    def chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        for start in range(0, self.num_frames, chunk_frames):
            stop = min(start + chunk_frames, self.num_frames)
            frames = self.reader.get_batch(list(range(start, stop))).asnumpy()
            self.reader.seek(0)
            yield frames


class _PyAVFile:
    """A video file through PyAV, decoded in order: memory is bounded by the chunk being read
    (decord's decoder runs ahead of the reader, see ``_DecordFile``). The frame count comes
    from the container, or from counting its packets (no decoding)."""

    def __init__(self, path: Path) -> None:
        import av

        self.path = path
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            self.height, self.width = stream.codec_context.height, stream.codec_context.width
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else FOLDER_FPS
            self.num_frames = stream.frames or sum(
                1 for packet in container.demux(stream) if packet.size
            )
            self.audio_streams = len(container.streams.audio)
        if self.num_frames:
            with av.open(str(path)) as container:  # a file that opens but cannot be decoded
                next(container.decode(container.streams.video[0]))

    def chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        import av

        with av.open(str(self.path)) as container:
            batch = []
            for frame in container.decode(container.streams.video[0]):
                batch.append(frame.to_ndarray(format="rgb24"))
                if len(batch) == chunk_frames:
                    yield np.stack(batch)
                    batch = []
            if batch:
                yield np.stack(batch)


def _open_video_file(path: Path) -> _DecordFile | _PyAVFile:
    """PyAV, or decord where PyAV fails; the file is reported unreadable if both fail."""
    try:
        return _PyAVFile(path)
    except Exception as err:  # PyAV raises av.error.* types, or finds no video stream
        message = one_line(err)
    try:
        opened = _DecordFile(path)
    except Exception as err:  # decord raises its own DECORDError/RuntimeError types
        raise VideoReadError(f"cannot decode video {path}: {message}") from err
    log.debug("PyAV could not read %s (%s); decoding with decord", path, message)
    return opened


def _load_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except Exception as err:
        raise VideoReadError(f"cannot read image {path}: {err}") from err
    return image


def _check_frame_size(array: np.ndarray, size: tuple[int, int], file: Path, first: Path) -> None:
    if array.shape[:2] != size:
        raise VideoReadError(
            f"frames in {file.parent} differ in size: {file.name} is {array.shape[0]}x"
            f"{array.shape[1]}, {first.name} {size[0]}x{size[1]}"
        )


class VideoSource:
    """A video file (PyAV; decord where PyAV fails) or a folder of jpg/png frames (sorted by
    file name), read chunk by chunk.

    ``num_frames``, ``height``, ``width``, ``fps`` and ``audio_streams`` (a file read through
    PyAV; else 0) come from the container (or the file list
    and the first image) without decoding the video. Frame folders report ``fps``, by default
    FOLDER_FPS (25). Raises VideoReadError (one line naming the path) if missing, unreadable or
    empty.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None) -> None:
        path = Path(path)
        self.path = path
        if not path.exists():
            raise VideoReadError(f"video not found: {path}")
        self.files: list[Path] = []
        self._file: _DecordFile | _PyAVFile | None = None
        self.audio_streams = 0
        if path.is_dir():
            self.files = frame_files(path)
            if not self.files:
                raise VideoReadError(f"frame folder {path} has no {'/'.join(IMAGE_SUFFIXES)} files")
            self.num_frames, self.fps = len(self.files), fps or FOLDER_FPS
            self.width, self.height = _load_image(self.files[0]).size
            return
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise VideoReadError(f"unsupported video type {path.suffix!r}: {path}")
        self._file = _open_video_file(path)
        if self._file.num_frames == 0:
            raise VideoReadError(f"video {path} has no frames")
        self.num_frames, self.fps = self._file.num_frames, self._file.fps
        self.height, self.width = self._file.height, self._file.width
        self.audio_streams = self._file.audio_streams

    def chunks(self, chunk_frames: int) -> Iterator[Tensor]:
        """The frames in order as uint8 ``(t, H, W, 3)`` RGB, ``chunk_frames`` at a time."""
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        size = (self.height, self.width)
        if self._file is None:
            for start in range(0, self.num_frames, chunk_frames):
                files = self.files[start : start + chunk_frames]
                arrays = [np.asarray(_load_image(f).convert("RGB")) for f in files]
                for array, file in zip(arrays, files):
                    _check_frame_size(array, size, file, self.files[0])
                yield torch.from_numpy(np.stack(arrays))
            return
        decoded = 0
        try:
            for array in self._file.chunks(chunk_frames):
                decoded += len(array)
                yield torch.from_numpy(array)
        except VideoReadError:
            raise
        except Exception as err:
            raise VideoReadError(f"cannot decode video {self.path}: {one_line(err)}") from err
        if decoded != self.num_frames:
            raise VideoReadError(
                f"video {self.path} decoded to {decoded} frames, its container says "
                f"{self.num_frames}"
            )


def read_video(path: str | os.PathLike) -> tuple[Tensor, float]:
    """All frames of a video file or frame folder (``VideoSource``) at once.

    Returns (frames uint8 (T, H, W, 3) RGB, fps).
    """
    source = VideoSource(path)
    return torch.cat(list(source.chunks(source.num_frames))), source.fps


def _image_to_hole(image: Image.Image, threshold: int) -> np.ndarray:
    """(H, W) bool: palette index / gray value / any RGB channel > threshold (alpha ignored)."""
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert(image.mode[:-1])
    values = np.asarray(image)
    if values.ndim == 3:
        values = values.max(axis=2)
    return values > threshold


class MaskSource:
    """Hole masks read chunk by chunk: a mask video, a folder of mask frames, or one static
    image (``num_frames`` 1).

    True = hole: value > threshold, for colour masks in any channel, for palette PNGs (DAVIS)
    the palette index (object id). threshold None picks 0 (non-zero = hole) for lossless files
    (png, bmp, tif) and 127 for lossy ones (video codecs, jpg), whose compression noise would
    otherwise turn into holes. Raises VideoReadError (one line) when missing or unreadable.
    """

    def __init__(self, path: str | os.PathLike, threshold: int | None = None) -> None:
        path = Path(path)
        self.path = path
        if not path.exists():
            raise VideoReadError(f"mask not found: {path}")
        self.files: list[Path] = []
        self.video: VideoSource | None = None
        self.image: Tensor | None = None
        suffix = path.suffix.lower()
        if path.is_dir():
            self.files = frame_files(path)
            if not self.files:
                raise VideoReadError(f"mask folder {path} has no {'/'.join(IMAGE_SUFFIXES)} files")
            lossy = any(f.suffix.lower() in LOSSY_SUFFIXES for f in self.files)
            self.threshold = (127 if lossy else 0) if threshold is None else threshold
            self.num_frames = len(self.files)
            self.width, self.height = _load_image(self.files[0]).size
        elif suffix in VIDEO_SUFFIXES:
            self.threshold = 127 if threshold is None else threshold
            self.video = VideoSource(path)
            self.num_frames = self.video.num_frames
            self.height, self.width = self.video.height, self.video.width
        elif suffix in IMAGE_SUFFIXES:
            lossy = suffix in LOSSY_SUFFIXES
            self.threshold = (127 if lossy else 0) if threshold is None else threshold
            hole = _image_to_hole(_load_image(path), self.threshold)
            self.image = torch.from_numpy(np.ascontiguousarray(hole))[None, None]
            self.num_frames, (self.height, self.width) = 1, hole.shape
        else:
            raise VideoReadError(f"unsupported mask type {path.suffix!r}: {path}")

    def chunks(self, chunk_frames: int) -> Iterator[Tensor]:
        """Holes bool ``(t, 1, H, W)`` in order, ``chunk_frames`` at a time."""
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if self.image is not None:
            yield self.image
        elif self.video is not None:
            for frames in self.video.chunks(chunk_frames):
                yield (frames.amax(dim=3) > self.threshold)[:, None]
        else:
            size = (self.height, self.width)
            for start in range(0, self.num_frames, chunk_frames):
                files = self.files[start : start + chunk_frames]
                holes = [_image_to_hole(_load_image(f), self.threshold) for f in files]
                for hole, file in zip(holes, files):
                    _check_frame_size(hole, size, file, self.files[0])
                yield torch.from_numpy(np.stack(holes))[:, None]


def read_masks(path: str | os.PathLike, threshold: int | None = None) -> Tensor:
    """All hole masks of ``path`` (``MaskSource``) at once: bool (T, 1, H, W), T = 1 for a
    static image."""
    source = MaskSource(path, threshold)
    return torch.cat(list(source.chunks(source.num_frames)))
