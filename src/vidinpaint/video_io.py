"""Reading videos, frame folders and masks; writing mp4 files atomically; sample panels."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vidinpaint.atomic import atomic_path

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LOSSY_SUFFIXES = (*VIDEO_SUFFIXES, ".jpg", ".jpeg")
FOLDER_FPS = 25.0
"""Frame rate reported for frame folders, which carry none."""


class VideoReadError(ValueError):
    """A video, frame folder or mask cannot be read (missing, unreadable or empty)."""


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _decode_with_pyav(path: Path) -> tuple[np.ndarray, float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        rate = stream.average_rate or stream.guessed_rate
    if not frames:
        raise VideoReadError(f"video {path} has no frames")
    return np.stack(frames), float(rate) if rate else FOLDER_FPS


def _decode_video(path: Path) -> tuple[np.ndarray, float]:
    """All frames of a video file as uint8 (T, H, W, 3) RGB, and its average fps.

    Decodes with decord; if decord fails (it rejects some small frame widths such as 48 with a
    buffer-size check) the file is decoded with PyAV instead, and only if both fail the file is
    reported unreadable.
    """
    import decord

    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
        num_frames = len(reader)
        if num_frames == 0:
            raise VideoReadError(f"video {path} has no frames")
        return reader.get_batch(list(range(num_frames))).asnumpy(), float(reader.get_avg_fps())
    except VideoReadError:
        raise
    except Exception as err:  # decord raises its own DECORDError/RuntimeError types
        lines = str(err).strip().splitlines()
        message = lines[0] if lines else type(err).__name__
    try:
        frames, fps = _decode_with_pyav(path)
    except VideoReadError:
        raise
    except Exception as err:
        raise VideoReadError(f"cannot decode video {path}: {message}") from err
    log.debug("decord could not read %s (%s); decoded with PyAV", path, message)
    return frames, fps


def _load_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except Exception as err:
        raise VideoReadError(f"cannot read image {path}: {err}") from err
    return image


def _stack_frames(arrays: list[np.ndarray], folder: Path) -> np.ndarray:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise VideoReadError(f"frames in {folder} differ in size: {sorted(shapes)}")
    return np.stack(arrays)


def read_video(path: str | os.PathLike) -> tuple[Tensor, float]:
    """Read a video file (decord) or a folder of jpg/png frames (sorted by file name).

    Returns (frames uint8 (T, H, W, 3) RGB, fps). Frame folders report FOLDER_FPS (25).
    Raises VideoReadError (one line naming the path) if missing, unreadable or empty.
    """
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"video not found: {path}")
    if path.is_dir():
        files = _frame_files(path)
        if not files:
            raise VideoReadError(f"frame folder {path} has no {'/'.join(IMAGE_SUFFIXES)} files")
        arrays = [np.asarray(_load_image(f).convert("RGB")) for f in files]
        return torch.from_numpy(_stack_frames(arrays, path)), FOLDER_FPS
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoReadError(f"unsupported video type {path.suffix!r}: {path}")
    frames, fps = _decode_video(path)
    return torch.from_numpy(frames), fps


def _image_to_hole(image: Image.Image, threshold: int) -> np.ndarray:
    """(H, W) bool: palette index / gray value / any RGB channel > threshold (alpha ignored)."""
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert(image.mode[:-1])
    values = np.asarray(image)
    if values.ndim == 3:
        values = values.max(axis=2)
    return values > threshold


def read_masks(path: str | os.PathLike, threshold: int | None = None) -> Tensor:
    """Read hole masks: a mask video, a folder of mask frames, or one static image (T = 1).

    Returns bool (T, 1, H, W), True = hole: value > threshold, for colour masks in any channel,
    for palette PNGs (DAVIS) the palette index (object id). threshold None picks 0 (non-zero =
    hole) for lossless files (png, bmp, tif) and 127 for lossy ones (video codecs, jpg), whose
    compression noise would otherwise turn into holes. Raises VideoReadError when unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"mask not found: {path}")
    if path.is_dir():
        files = _frame_files(path)
        if not files:
            raise VideoReadError(f"mask folder {path} has no {'/'.join(IMAGE_SUFFIXES)} files")
        lossy = any(f.suffix.lower() in LOSSY_SUFFIXES for f in files)
        cut = (127 if lossy else 0) if threshold is None else threshold
        holes = _stack_frames([_image_to_hole(_load_image(f), cut) for f in files], path)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        cut = 127 if threshold is None else threshold
        frames, _ = _decode_video(path)
        holes = frames.max(axis=3) > cut
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        lossy = path.suffix.lower() in LOSSY_SUFFIXES
        cut = (127 if lossy else 0) if threshold is None else threshold
        holes = _image_to_hole(_load_image(path), cut)[None]
    else:
        raise VideoReadError(f"unsupported mask type {path.suffix!r}: {path}")
    return torch.from_numpy(np.ascontiguousarray(holes))[:, None]


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


def write_video(
    path: str | os.PathLike,
    frames: Tensor | np.ndarray,
    fps: float,
    crf: int = 17,
    lossless: bool = False,
) -> Path:
    """Write an H.264 mp4 with PyAV (libx264), atomically; creates parent folders.

    frames: uint8 (T, H, W, 3) RGB or float (T, 3, H, W) in [0, 1]. Even sizes use yuv420p (plays
    everywhere); odd widths/heights use yuv444p, which needs no padding, so the file decodes back
    with exactly T frames of H x W (some players lack 4:4:4 support). crf: x264 quality
    (lower = better). lossless: RGB H.264 at qp 0 (libx264rgb), which decodes back to exactly
    these pixels; browsers and many players cannot play it. The file is written to a temp file
    in the same folder, then renamed.
    """
    array = _to_uint8_thwc(frames)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    import av

    path = Path(path)
    _, height, width, _ = array.shape
    if lossless:
        codec, pix_fmt, options = "libx264rgb", "rgb24", {"qp": "0"}
    else:
        codec, options = "libx264", {"crf": str(crf)}
        pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream(
            codec, rate=Fraction(fps).limit_denominator(1001), options=options
        )
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for image in array:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


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
