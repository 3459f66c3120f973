"""Config values and output paths checked before any data is read or any network is built, so
that bad input stops a run in its first second with one line (errors.UserError)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from vidinpaint import models
from vidinpaint.checkpoints import read_checkpoint
from vidinpaint.errors import UserError
from vidinpaint.inference import ANY_COVERAGE, Coverage, check_coverage
from vidinpaint.resolution import check_resolution
from vidinpaint.video_io import IMAGE_SUFFIXES
from vidinpaint.video_write import check_codec

log = logging.getLogger(__name__)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def check_clip_shape(model: Any, size: Sequence[int], clip_len: int) -> None:
    """``data.size`` and ``data.clip_len`` against what ``model`` (an AAAI'19 method's config or
    hyperparameters: method, ratio, temporal_stride) can take."""
    if len(size) != 2 or min(int(s) for s in size) < 1:
        raise UserError(f"data.size must be [height, width] of positive sizes, got {list(size)}")
    if int(clip_len) < 1:
        raise UserError(f"data.clip_len must be >= 1, got {clip_len}")
    method = model.get("method")
    if method not in models.names(models.TRAINED):
        return
    ratio = int(model.get("ratio", 2))
    if ratio not in (2, 4):
        raise UserError(f"model.ratio (3DCN down-sampling r) must be 2 or 4, got {ratio}")
    frames, pixels = models.METHODS[method].multiples(
        ratio, bool(model.get("temporal_stride", False))
    )
    height, width = (int(s) for s in size)
    if height % pixels or width % pixels:
        raise UserError(
            f"data.size={[height, width]}: model={method} needs height and width in multiples "
            f"of {pixels} (e.g. data.size=[{round_up(height, pixels)},{round_up(width, pixels)}])"
        )
    if int(clip_len) % frames:
        raise UserError(
            f"data.clip_len={clip_len}: model={method} with temporal_stride needs a multiple of "
            f"{frames} frames (e.g. data.clip_len={round_up(int(clip_len), frames)})"
        )


def check_loader(data: DictConfig) -> None:
    """Batch size, workers, and clip length against a dataset whose videos' length is known
    from the config (the synthetic one); other datasets are checked when indexed."""
    if int(data.get("batch_size", 1)) < 1:
        raise UserError(f"data.batch_size must be >= 1, got {data.batch_size}")
    if int(data.get("num_workers", 0)) < 0:
        raise UserError(f"data.num_workers must be >= 0, got {data.num_workers}")
    num_frames = data.get("adapter", {}).get("num_frames")
    if num_frames is not None and int(data.clip_len) > int(num_frames):
        raise UserError(
            f"data.clip_len={data.clip_len} is longer than the {data.name} videos "
            f"({num_frames} frames, data.adapter.num_frames)"
        )


def check_train(cfg: DictConfig) -> None:
    """vidinpaint-train: a method it can train, the clip shape for the method, loader values,
    the checkpoints it reads."""
    models.check_trainable(cfg.model.method)
    check_clip_shape(cfg.model, cfg.data.size, cfg.data.clip_len)
    check_loader(cfg.data)
    cn3d_ckpt = cfg.model.get("cn3d_ckpt")
    if cn3d_ckpt and cfg.model.get("method") == "combcn":  # the other methods ignore it
        ckpt = read_checkpoint(cn3d_ckpt, "3DCN checkpoint (model.cn3d_ckpt)")
        if not any(key.startswith("cn3d.") for key in ckpt["state_dict"]):
            raise UserError(f"model.cn3d_ckpt={cn3d_ckpt} holds no 3DCN weights")
    if cfg.get("ckpt_path") not in (None, "last"):
        read_checkpoint(cfg.ckpt_path, "checkpoint to resume (ckpt_path)")


def check_writable_folder(path: str | Path, what: str) -> None:
    """``path``'s folder is writable, or can be created: its nearest existing parent is a
    folder where a (nameless, at once removed) file can be created."""
    folder = Path(path).absolute().parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write {what} {path}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UserError(
            f"cannot write {what} {path}: folder {existing} is not writable ({err.strerror})"
        ) from err


def check_output(output: str | Path, inputs: Sequence[str | Path], overwrite: bool) -> None:
    """An output file may not be one of ``inputs`` (also not a hard or symbolic link to one),
    nor replace an existing file unless ``overwrite``; its folder must be writable."""
    output = Path(output)
    if output.is_dir():
        raise UserError(f"output {output} is a folder: give a file path (e.g. {output}/out.mp4)")
    if output.exists():
        for source in inputs:
            if Path(source).exists() and os.path.samefile(output, source):
                raise UserError(f"output {output} is the input {source}: give another path")
        if not overwrite:
            raise UserError(f"output {output} exists (set overwrite=true to replace it)")
    check_writable_folder(output, "output")


def check_output_folder(output: str | Path, inputs: Sequence[str | Path], overwrite: bool) -> None:
    """A folder of output frames may not be one of ``inputs``; it may be new, empty, or (with
    ``overwrite``) hold only image files, which are replaced; its parent must be writable."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UserError(f"output {output}/ is a file: give a folder for PNG frames")
    for source in inputs:
        if output.exists() and Path(source).exists() and os.path.samefile(output, source):
            raise UserError(f"output {output}/ is the input {source}: give another folder")
    entries = list(output.iterdir()) if output.is_dir() else []
    if entries and not overwrite:
        raise UserError(f"output folder {output}/ is not empty (set overwrite=true to replace it)")
    others = [e.name for e in entries if not e.is_file() or e.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise UserError(
            f"output folder {output}/ holds {others[0]}, not only frames: give an empty or new "
            "folder"
        )
    check_writable_folder(output, "output")


# ------------------------------------------------------------------------ vidinpaint-inpaint


class InputError(UserError):
    """The user's input cannot be inpainted (reported as one line)."""


def panel_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_panel.mp4")


def writes_frames(cfg: DictConfig) -> bool:
    """``output=DIR/`` (a trailing slash, or an existing folder): PNG frames, not a video."""
    return str(cfg.output).endswith(("/", os.sep)) or Path(cfg.output).is_dir()


def check_inpaint_outputs(cfg: DictConfig) -> None:
    """Before any work: the output (and panel) is no input, replaces no file unless
    ``overwrite``, and its folder is writable; the codec options fit the output."""
    inputs = [cfg.input, cfg.mask, *([cfg.ckpt] if cfg.ckpt else [])]
    output = Path(cfg.output)
    if writes_frames(cfg):
        check_output_folder(output, inputs, overwrite=bool(cfg.overwrite))
    else:
        check_output(output, inputs, overwrite=bool(cfg.overwrite))
        check_codec(output, str(cfg.codec), int(cfg.crf), bool(cfg.lossless))
    if cfg.panel:
        check_output(panel_path(output), inputs, overwrite=bool(cfg.overwrite))


def check_inpaint_options(cfg: DictConfig) -> None:
    """Before any decoding: chunking, ``resolution``, ``mask_dilate``, ``mask_coverage``,
    ``crop_margin``."""
    chunk_frames, overlap = int(cfg.chunk_frames), int(cfg.chunk_overlap)
    if chunk_frames < 1 or not 0 <= overlap < chunk_frames:
        raise InputError(
            f"chunk_frames must be >= 1 and chunk_overlap in [0, chunk_frames), got "
            f"chunk_frames={chunk_frames} chunk_overlap={overlap}"
        )
    check_resolution(cfg)
    mask_dilation(cfg)
    mask_coverage(cfg)
    margin = cfg.get("crop_margin")
    if margin is not None and int(margin) < 0:
        raise InputError(f"crop_margin must be >= 0 pixels or null, got {margin}")


def mask_dilation(cfg: DictConfig) -> int:
    """``mask_dilate``: pixels (>= 0) the holes grow by."""
    dilate = int(cfg.get("mask_dilate", 0))
    if dilate < 0:
        raise InputError(f"mask_dilate must be >= 0 pixels, got {dilate}")
    return dilate


def mask_coverage(cfg: DictConfig) -> Coverage:
    """``mask_coverage``: how the holes are shrunk to the working size (``any`` or a number in
    (0, 1], ``inference.resize_holes``)."""
    return check_coverage(cfg.get("mask_coverage", ANY_COVERAGE))


def frame_rate(cfg: DictConfig) -> float | None:
    """``fps=``: a frame folder's rate (positive); a video file has its own."""
    fps = cfg.get("fps")
    if fps is not None and not Path(cfg.input).is_dir():
        raise InputError(f"fps={fps} is for a folder of frames; the video {cfg.input} has its own")
    if fps is not None and float(fps) <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    return None if fps is None else float(fps)


def check_mask_fits(video: Any, mask: Any, mask_resize: bool) -> None:
    """A mask source's size and frame count against the video source's (from the containers)."""
    if (mask.height, mask.width) != (video.height, video.width) and not mask_resize:
        raise InputError(
            f"mask size {mask.height}x{mask.width} differs from the video's "
            f"{video.height}x{video.width} (set mask_resize=true to resize the mask)"
        )
    if mask.num_frames not in (1, video.num_frames):
        raise InputError(
            f"mask has {mask.num_frames} frames, the video {video.num_frames} (give one mask "
            "per frame or a single static image)"
        )


def check_holes(cfg: DictConfig, fill: list[bool], all_hole: bool, within: str) -> None:
    """At least one frame to fill (``within``: the ``frames=`` range, or empty) and one known
    pixel."""
    if not any(fill):
        raise InputError(
            f"mask {cfg.mask} has no hole pixel{within} (non-zero = remove): nothing to do"
        )
    if all_hole:
        raise InputError(f"mask {cfg.mask} covers every pixel: nothing is known to fill from")


def state_folder(cfg: DictConfig, internal: bool) -> Path | None:
    """Where an internal fit keeps its resumable state (None for the other methods); a
    stopped run's state is continued only with ``resume=true``, never overwritten."""
    if not internal:
        return None
    folder = Path(cfg.state_dir)
    held = folder.is_dir() and any(folder.iterdir())
    if held and not cfg.resume:
        raise InputError(
            f"{folder} holds the state of a stopped run: add resume=true to continue it "
            "(or remove the folder)"
        )
    if cfg.resume and not held:
        log.info("resume=true but %s holds no state: starting from the beginning", folder)
    return folder
