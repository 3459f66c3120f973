"""Reading videos, frame folders and masks; writing mp4 files atomically; sample panels.

Long videos stream: ``VideoSource`` and ``MaskSource`` know a video's frame count, size and
rate without decoding it and yield its frames chunk by chunk; ``VideoWriter`` encodes chunk
by chunk into a temp file renamed onto the output when it is closed without error.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vidinpaint.atomic import atomic_path
from vidinpaint.errors import UserError, one_line

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


def _to_uint8_thwc(frames: Tensor | np.ndarray) -> np.ndarray:
    frames = torch.as_tensor(frames)
    if frames.dtype == torch.uint8:
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"uint8 frames: expected (T,H,W,3), got {tuple(frames.shape)}")
        array = frames
    elif frames.is_floating_point():
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"float frames: expected (T,3,H,W), got {tuple(frames.shape)}")
        array = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
        array = array.permute(0, 2, 3, 1)
    else:
        raise ValueError(f"frames must be uint8 (T,H,W,3) or float (T,3,H,W), got {frames.dtype}")
    if array.shape[0] == 0:
        raise ValueError("cannot write a video with no frames")
    return np.ascontiguousarray(array.cpu().numpy())


VIDEO_CODECS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9"}
"""``codec=`` names and their encoders."""
CONTAINERS = {".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
"""Containers by file suffix; any other suffix gets mp4."""


def container_format(path: str | os.PathLike) -> str:
    return CONTAINERS.get(Path(path).suffix.lower(), "mp4")


def check_codec(path: str | os.PathLike, codec: str, crf: int, lossless: bool) -> None:
    """``codec``, ``crf`` and ``lossless`` for a video written at ``path``, checked before any
    work (one-line ``UserError``)."""
    import av

    if codec not in VIDEO_CODECS:
        raise UserError(f"unknown codec {codec!r} (codec= one of {', '.join(VIDEO_CODECS)})")
    if lossless and codec != "h264":
        raise UserError(
            f"lossless=true writes RGB H.264: with codec={codec} set lossless=false (crf= sets "
            "the quality)"
        )
    if not 0 <= crf <= 51:
        raise UserError(f"crf must be in [0, 51] (lower = better), got {crf}")
    form = container_format(path)
    with av.open(io.BytesIO(), mode="w", format=form) as container:
        encoder = "libx264rgb" if lossless else VIDEO_CODECS[codec]
        if av.codec.Codec(encoder, "w").name not in container.supported_codecs:
            raise UserError(f"a {Path(path).suffix} file ({form}) cannot hold codec={codec}")
        stream = add_video_stream(container, 25, 64, 64, codec, crf, lossless)
        try:
            stream.codec_context.open()
        except av.error.FFmpegError as err:
            # decord's wheel bundles an older libvpx that breaks PyAV's vp9 encoder once loaded
            hint = " (decord, imported in this process, loads its own libvpx)"
            raise UserError(
                f"codec={codec} cannot be opened: {one_line(err)}"
                + (hint if codec == "vp9" and "decord" in sys.modules else "")
            ) from err


def add_video_stream(
    container, rate: Fraction | int, height: int, width: int, codec: str, crf: int, lossless: bool
):
    """A video stream of ``container``: RGB H.264 at qp 0 (``lossless``), else ``codec`` at
    ``crf`` in yuv420p (yuv444p for odd sizes, which need no padding)."""
    if lossless:
        encoder, pix_fmt, options = "libx264rgb", "rgb24", {"qp": "0"}
    else:
        encoder, options = VIDEO_CODECS[codec], {"crf": str(crf)}
        if codec == "vp9":
            options["b"] = "0"  # constant quality
        if codec == "hevc":
            options["x265-params"] = "log-level=error"
        pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
    stream = container.add_stream(encoder, rate=rate, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    return stream


class AudioCopy:
    """The audio streams of a video file added to an output container: copied packet by
    packet where the container takes the codec, else decoded and encoded with the container's
    default audio codec (AAC in mp4, Opus in webm). Timestamps
    are shifted by the start of the input's video stream, which the output's starts at 0."""

    def __init__(self, source: Path, container) -> None:
        import av

        self.source = av.open(str(source))
        self.container = container
        self.streams = {}
        video = self.source.streams.video
        start = video[0].start_time if video and video[0].start_time else 0
        self.start = float(start * video[0].time_base) if start else 0.0
        for stream in self.source.streams.audio:
            if stream.codec_context.name in container.supported_codecs:
                self.streams[stream.index] = (container.add_stream_from_template(stream), True)
            else:
                codec = container.default_audio_codec
                rates = av.codec.Codec(codec, "w").audio_rates  # Opus: 48 kHz and divisors
                rate = stream.rate if not rates or stream.rate in rates else max(rates)
                out = container.add_stream(codec, rate=rate, layout=stream.layout.name)
                self.streams[stream.index] = (out, False)
        copied = [s.codec_context.name for s in self.source.streams.audio]
        if copied:
            log.info("audio %s from %s", ", ".join(copied), source)

    def mux(self) -> None:
        """Every audio packet of the source, into the output."""
        if not self.streams:
            return
        for packet in self.source.demux(self.source.streams.audio):
            out, copy = self.streams[packet.stream.index]
            if packet.dts is None:
                continue
            if copy:
                shift = round(self.start / packet.time_base)
                packet.pts = None if packet.pts is None else packet.pts - shift
                packet.dts -= shift
                packet.stream = out
                self.container.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    self.container.mux(out.encode(frame))
        for out, copy in self.streams.values():
            if not copy:
                self.container.mux(out.encode())

    def close(self) -> None:
        self.source.close()


def write_error(path: Path, err: OSError) -> UserError:
    """A failed write (a full disk, a lost drive) as one line; the temp file goes."""
    reason = err.strerror or str(err).splitlines()[0]
    return UserError(f"cannot write {path}: {reason} (no file was written)")


class VideoWriter(AbstractContextManager):
    """A video (H.264 mp4 by default) written chunk by chunk with PyAV, atomically.

    Frames go to a temp file beside ``path`` (parent folders are created), renamed onto
    ``path`` when the ``with`` block ends without error; an error removes it. Even sizes use
    yuv420p (plays everywhere); odd widths/heights use yuv444p, which needs no padding, so the
    file decodes back with exactly the frames written (some players lack 4:4:4 support).
    codec: ``h264``, ``hevc`` or ``vp9`` (``VIDEO_CODECS``); crf: its quality (lower =
    better). lossless: RGB H.264 at qp 0 (libx264rgb), which decodes back to exactly these
    pixels; browsers and many players cannot play it. The container follows the suffix (mp4,
    mov, mkv, webm, avi; mp4 for others). audio_from: a video file whose audio streams the
    output keeps (``AudioCopy``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        crf: int = 17,
        lossless: bool = False,
        codec: str = "h264",
        audio_from: str | os.PathLike | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps, self.crf, self.lossless, self.codec = fps, crf, lossless, codec
        self.audio_from = None if audio_from is None else Path(audio_from)
        self.frames_written = 0
        self._atomic = atomic_path(self.path)
        self._container = None
        self._stream = None
        self._audio: AudioCopy | None = None

    def __enter__(self) -> VideoWriter:
        import av

        tmp = self._atomic.__enter__()
        self._container = av.open(str(tmp), mode="w", format=container_format(self.path))
        return self

    def _add_stream(self, height: int, width: int):
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = add_video_stream(
            self._container, rate, height, width, self.codec, self.crf, self.lossless
        )
        if self.audio_from is not None:
            self._audio = AudioCopy(self.audio_from, self._container)
        return stream

    def write(self, frames: Tensor | np.ndarray) -> None:
        """Appends uint8 ``(T, H, W, 3)`` RGB or float ``(T, 3, H, W)`` in [0, 1] frames."""
        import av

        array = _to_uint8_thwc(frames)
        height, width = array.shape[1:3]
        if self._stream is None:
            self._stream = self._add_stream(height, width)
        elif (height, width) != (self._stream.height, self._stream.width):
            raise ValueError(
                f"frames of {height}x{width} in a video of "
                f"{self._stream.height}x{self._stream.width}"
            )
        try:
            for image in array:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                self._container.mux(self._stream.encode(frame))
        except OSError as err:
            raise self._write_error(err) from err
        self.frames_written += len(array)

    def _write_error(self, err: OSError) -> UserError:
        return write_error(self.path, err)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        error = exc
        try:
            if error is None:
                if self._stream is None:
                    raise ValueError("cannot write a video with no frames")
                self._container.mux(self._stream.encode())
                if self._audio is not None:
                    self._audio.mux()
        except OSError as err:
            error = self._write_error(err)
        except Exception as err:
            error = err
        finally:
            if self._audio is not None:
                self._audio.close()
            try:
                self._container.close()
            except OSError as err:
                error = error or self._write_error(err)
            except Exception as err:
                error = error or err
        if error is None:
            self._atomic.__exit__(None, None, None)
            return False
        self._atomic.__exit__(type(error), error, error.__traceback__)
        if error is not exc:
            raise error
        return False


class FrameFolderWriter(AbstractContextManager):
    """PNG frames ``00000.png``, ``00001.png``, ... written chunk by chunk into a temp folder
    beside ``path``, which becomes ``path`` when the ``with`` block ends without error (an
    existing ``path`` may hold only frames, which are replaced: ``checks.check_output_folder``);
    an error removes the temp folder."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.frames_written = 0
        self._tmp: Path | None = None

    def __enter__(self) -> FrameFolderWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}."))
        return self

    def write(self, frames: Tensor | np.ndarray) -> None:
        """Appends uint8 ``(T, H, W, 3)`` RGB or float ``(T, 3, H, W)`` in [0, 1] frames."""
        for image in _to_uint8_thwc(frames):
            try:
                Image.fromarray(image).save(self._tmp / f"{self.frames_written:05d}.png")
            except OSError as err:
                raise write_error(self.path, err) from err
            self.frames_written += 1

    def __exit__(self, *exc_info: object) -> bool:
        try:
            if exc_info[1] is None:
                if self.frames_written == 0:
                    raise ValueError("cannot write a video with no frames")
                if self.path.is_dir():
                    for frame in self.path.iterdir():
                        frame.unlink()
                    self.path.rmdir()
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self._tmp, 0o777 & ~umask)
                os.replace(self._tmp, self.path)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False


def write_video(
    path: str | os.PathLike,
    frames: Tensor | np.ndarray,
    fps: float,
    crf: int = 17,
    lossless: bool = False,
) -> Path:
    """Write frames (uint8 (T, H, W, 3) RGB or float (T, 3, H, W) in [0, 1]) as one H.264 mp4,
    atomically (``VideoWriter``); returns the path."""
    array = _to_uint8_thwc(frames)
    with VideoWriter(path, fps, crf=crf, lossless=lossless) as writer:
        writer.write(array)
    return Path(path)


def hstack_panel(videos: list[Tensor]) -> Tensor:
    """Side-by-side panel, e.g. input | outputs | target.

    videos: list of (T, 3, H, W_i) sharing T, C, H -> (T, 3, H, sum W_i).
    """
    if not videos:
        raise ValueError("hstack_panel needs at least one video")
    reference = tuple(videos[0].shape)
    for video in videos:
        if video.ndim != 4 or tuple(video.shape[:3]) != reference[:3]:
            raise ValueError(
                f"panel videos must share (T,C,H): got {tuple(video.shape)} vs {reference}"
            )
    return torch.cat(list(videos), dim=-1)
