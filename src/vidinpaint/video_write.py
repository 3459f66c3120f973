"""Writing videos (atomically, with the input's audio) and frame folders; sample panels.

Long videos stream: ``VideoWriter`` encodes chunk by chunk into a temp file renamed onto the
output when it is closed without error; ``FrameFolderWriter`` writes PNG frames the same way.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
import tempfile
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
