"""vidinpaint-inpaint as a Python call, with the command's options, checks and errors.

    import vidinpaint

    path = vidinpaint.inpaint_video("clip.mp4", "box:1600,40,200,80", method="telea")
    path = vidinpaint.inpaint_video("clip.mp4", "masks/", "clean.mp4", mask_dilate=2,
                                    frames="100:250", **{"model.passes": 2})
    filled = vidinpaint.inpaint_frames(video, mask)   # T,3,H,W float and T,1,H,W -> T,3,H,W

Options are the keys of ``conf/inpaint.yaml`` (``lossless=False``, ``chunk_frames=50``,
``schedule="fast"``; nested ones as ``"model.passes"``). Bad input raises the error whose
one line the command prints (``errors.UserError`` and the other ``ValueError``s).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError
from torch import Tensor

from vidinpaint import CONF_DIR, inpaint, inpaint_many
from vidinpaint.errors import UserError
from vidinpaint.video_io import FOLDER_FPS

GROUPS = {entry.name for entry in Path(CONF_DIR).iterdir() if entry.is_dir()}
"""Options that pick a config group (``method``, ``schedule``, ...), given as overrides."""


def _override(key: str, value: Any) -> str:
    if value is None:
        return f"{key}=null"
    return f"{key}={str(value).lower() if isinstance(value, bool) else value}"


def compose_inpaint(method: str, options: dict[str, Any]) -> DictConfig:
    """``conf/inpaint.yaml`` composed as the command does, with ``method`` and ``options``
    (group choices as overrides, the rest set on the result; an unknown key is an error)."""
    groups = [_override(key, value) for key, value in options.items() if key in GROUPS]
    if GlobalHydra.instance().is_initialized():
        raise UserError("vidinpaint.inpaint_video cannot run inside a Hydra app's composition")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("inpaint", overrides=[f"method={method}", *groups])
    for key, value in options.items():
        if key in GROUPS:
            continue
        try:
            OmegaConf.update(cfg, key, value, merge=False)
        except (ConfigAttributeError, ConfigKeyError) as err:
            raise UserError(f"unknown option {key}= (conf/inpaint.yaml lists them)") from err
    return cfg


def default_output(input: str | os.PathLike) -> Path:
    """``<input stem>_inpainted.mp4`` beside the input (a folder's name for a frame folder)."""
    path = Path(input)
    name = path.name if path.is_dir() else path.stem
    return path.with_name(f"{name}_inpainted.mp4")


def inpaint_video(
    input: str | os.PathLike,
    mask: str | os.PathLike,
    output: str | os.PathLike | None = None,
    method: str = "propagate",
    **options: Any,
) -> Path:
    """Inpaints the video (file or frame folder; a folder of clips or a list) ``input`` where
    ``mask`` (a file, folder, image or ``box:x,y,w,h``) holds holes, as ``vidinpaint-inpaint``
    does, into ``output`` (default ``<input stem>_inpainted.mp4`` beside it; a path ending in
    ``/`` for PNG frames); returns the path written. The run folder (the internal methods'
    resumable state) is a temporary one unless ``state_dir=`` is given."""
    if "gt" in options:
        raise UserError("gt= scores a command's run: use vidinpaint.evaluation.hole_psnr_of_video")
    output = default_output(input) if output is None else output
    mask = mask if isinstance(mask, str) else os.fspath(mask)
    paths = [os.fspath(p) for p in input] if isinstance(input, list | tuple) else os.fspath(input)
    cfg = compose_inpaint(method, {"input": paths, "mask": mask, "output": str(output), **options})
    with tempfile.TemporaryDirectory(prefix="vidinpaint-") as run_dir:
        cfg.paths.output_dir = run_dir
        if inpaint_many.several_clips(cfg):
            return inpaint_many.run_clips(cfg, inpaint.run)
        return inpaint.run(cfg)


class TensorVideo:
    """Frames ``T,3,H,W`` float in [0, 1] with ``VideoSource``'s interface (uint8 chunks)."""

    def __init__(self, video: Tensor, fps: float) -> None:
        if video.ndim != 4 or video.shape[1] != 3 or not video.is_floating_point():
            raise UserError(f"video must be float T,3,H,W in [0, 1], got {_described(video)}")
        self.video, self.path, self.files, self.audio_streams = video, "<video tensor>", [], 0
        self.num_frames, _, self.height, self.width = video.shape
        self.fps = fps

    def chunks(self, chunk_frames: int) -> Iterator[Tensor]:
        for start in range(0, self.num_frames, chunk_frames):
            part = self.video[start : start + chunk_frames].detach().float().cpu().clamp(0, 1)
            yield (part * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class TensorMask:
    """Holes ``T,1,H,W`` (or ``1,1,H,W``, one for every frame; > 0.5 = hole) with
    ``MaskSource``'s interface."""

    def __init__(self, mask: Tensor) -> None:
        if mask.ndim != 4 or mask.shape[1] != 1:
            raise UserError(f"mask must be T,1,H,W or 1,1,H,W, got {_described(mask)}")
        self.mask, self.path = mask, "<mask tensor>"
        self.num_frames, _, self.height, self.width = mask.shape

    def chunks(self, chunk_frames: int) -> Iterator[Tensor]:
        for start in range(0, self.num_frames, chunk_frames):
            yield self.mask[start : start + chunk_frames].detach().cpu().float() > 0.5


def _described(tensor: object) -> str:
    if not isinstance(tensor, Tensor):
        return type(tensor).__name__
    return f"{tensor.dtype} {tuple(tensor.shape)}"


def inpaint_frames(
    video: Tensor, mask: Tensor, method: str = "propagate", **options: Any
) -> Tensor:
    """Inpaints frames in memory with the command's options (``mask_dilate``, ``frames``,
    ``resolution``, ...; not the output ones).

    video: ``T,3,H,W`` float in [0, 1]; mask: ``T,1,H,W`` or ``1,1,H,W`` (1 = hole).
    Returns ``T,3,H,W`` float on the CPU: the fill (8-bit values) in the (dilated) holes of the
    frames filled, ``video`` unchanged elsewhere. The run folder (the internal methods'
    resumable state) is a temporary one unless ``state_dir=`` is given.
    """
    fps = float(options.pop("fps", None) or FOLDER_FPS)
    source, holes = TensorVideo(video, fps), TensorMask(mask)
    cfg = compose_inpaint(method, {"input": source.path, "mask": holes.path, **options})
    with tempfile.TemporaryDirectory(prefix="vidinpaint-") as run_dir:
        cfg.paths.output_dir = run_dir
        _, chunks, _ = inpaint.inpainted_chunks(cfg, source, holes)
        parts = [(result, hole) for _, hole, result in chunks]
    filled = torch.cat([result for result, _ in parts]).permute(0, 3, 1, 2).float() / 255
    hole = torch.cat([hole for _, hole in parts])
    return torch.where(hole, filled, video.detach().float().cpu())
