"""vidinpaint-inpaint: remove what a mask covers from one video.

    vidinpaint-inpaint input=clip.mp4 mask=mask.png method=dip_vid_flow output=out.mp4
    vidinpaint-inpaint input=frames/ mask=masks/ method=combcn ckpt=last.ckpt panel=true
    python -m vidinpaint.inpaint input=clip.mp4 mask=masks.mp4 schedule=paper

The method works at ``resolution``; only the filled region is up-sampled and pasted into the
original frames, so the output keeps the input's size, frame count, frame rate and (before
video re-encoding) its known pixels. Bad input stops the run with one line and no output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

from vidinpaint import CONF_DIR, checkpoints, checks, errors
from vidinpaint.models.internal import METHODS as INTERNAL_METHODS
from vidinpaint.video_io import hstack_panel, read_masks, read_video, write_video

log = logging.getLogger(__name__)

COMMAND = "vidinpaint-inpaint"
INTERNAL_MULTIPLE = 64


class InputError(errors.UserError):
    """The user's input cannot be inpainted (reported as one line)."""


def panel_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_panel.mp4")


def check_outputs(cfg: DictConfig) -> None:
    """Before any work: the output (and panel) is no input, replaces no file unless
    ``overwrite``, and its folder is writable."""
    inputs = [cfg.input, cfg.mask, *([cfg.ckpt] if cfg.ckpt else [])]
    outputs = [Path(cfg.output), *([panel_path(Path(cfg.output))] if cfg.panel else [])]
    for output in outputs:
        checks.check_output(output, inputs, overwrite=bool(cfg.overwrite))


def load_inputs(cfg: DictConfig) -> tuple[Tensor, float, Tensor]:
    """Frames uint8 ``T,H,W,3``, fps and holes bool ``T,1,H,W`` checked against each other."""
    frames, fps = read_video(cfg.input)
    holes = read_masks(cfg.mask)
    num_frames, height, width = frames.shape[:3]
    mask_frames, mask_h, mask_w = holes.shape[0], *holes.shape[-2:]
    if (mask_h, mask_w) != (height, width):
        if not cfg.mask_resize:
            raise InputError(
                f"mask size {mask_h}x{mask_w} differs from the video's {height}x{width} "
                "(set mask_resize=true to resize the mask)"
            )
        holes = F.interpolate(holes.float(), size=(height, width), mode="nearest") > 0.5
    if mask_frames == 1:
        holes = holes.expand(num_frames, -1, -1, -1)
    elif mask_frames != num_frames:
        raise InputError(
            f"mask has {mask_frames} frames, the video {num_frames} (give one mask per frame "
            "or a single static image)"
        )
    if not holes.any():
        raise InputError(f"mask {cfg.mask} has no hole pixel (non-zero = remove): nothing to do")
    if holes.all():
        raise InputError(f"mask {cfg.mask} covers every pixel: nothing is known to fill from")
    return frames, fps, holes


def load_system(cfg: DictConfig) -> tuple[torch.nn.Module, bool]:
    """The method's system and whether it is internal (trains on the video)."""
    method = cfg.model.method
    if method in INTERNAL_METHODS:
        return hydra.utils.instantiate(cfg.model), True
    if not cfg.ckpt:
        raise InputError(f"method={method} needs ckpt=PATH (a vidinpaint-train checkpoint)")
    from vidinpaint.models.external import CompletionSystem

    system = checkpoints.load_system(CompletionSystem, cfg.ckpt)
    if system.hparams.method != method:
        raise InputError(
            f"checkpoint {cfg.ckpt} holds method={system.hparams.method}, not {method}"
        )
    if torch.cuda.is_available():
        system.cuda()
    return system, False


def check_resolution(resolution: tuple[int, int], internal: bool) -> None:
    if len(resolution) != 2 or min(resolution) < 1:
        raise InputError(f"resolution must be [H, W], got {list(resolution)}")
    if internal and any(s % INTERNAL_MULTIPLE for s in resolution):
        raise InputError(
            f"internal methods need a resolution in multiples of {INTERNAL_MULTIPLE}, "
            f"got {list(resolution)}"
        )


def resize_frames(frames: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 ``T,H,W,3`` -> float ``T,3,h,w`` in [0,1] (antialiased bilinear)."""
    video = frames.permute(0, 3, 1, 2).float() / 255
    return F.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False)


def resize_holes(holes: Tensor, size: tuple[int, int]) -> Tensor:
    """bool ``T,1,H,W`` -> float ``T,1,h,w``: a pixel is a hole if any source pixel is."""
    area = F.interpolate(holes.float(), size=size, mode="area")
    return (area > 0).float()


def paste(frames: Tensor, filled: Tensor, holes: Tensor) -> Tensor:
    """Original uint8 ``T,H,W,3`` with the up-sampled ``filled`` (``T,3,h,w``) in the holes."""
    height, width = frames.shape[1:3]
    up = F.interpolate(filled, size=(height, width), mode="bilinear", align_corners=False)
    up = (up.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    return torch.where(holes.permute(0, 2, 3, 1), up, frames)


def inpaint_video(
    system: torch.nn.Module,
    frames: Tensor,
    holes: Tensor,
    resolution: tuple[int, int],
    chunk_frames: int,
    progress: bool = True,
) -> Tensor:
    """Inpaints uint8 ``T,H,W,3`` frames chunk by chunk; returns uint8 ``T,H,W,3``."""
    if chunk_frames < 1:
        raise InputError(f"chunk_frames must be >= 1, got {chunk_frames}")
    result = frames.clone()
    num_frames = frames.shape[0]
    starts = range(0, num_frames, chunk_frames)
    for index, start in enumerate(starts):
        part = slice(start, start + chunk_frames)
        if len(starts) > 1:
            log.info(
                "chunk %d/%d: frames %d-%d",
                index + 1,
                len(starts),
                start,
                min(start + chunk_frames, num_frames) - 1,
            )
        if not holes[part].any():
            continue
        video = resize_frames(frames[part], resolution)
        mask = resize_holes(holes[part], resolution)
        filled = system.inpaint(video, mask, progress=progress)
        result[part] = paste(frames[part], filled.float().cpu(), holes[part])
    return result


def run(cfg: DictConfig) -> Path:
    """Reads, checks, inpaints and writes ``cfg.output`` (and the panel); returns the path."""
    check_outputs(cfg)
    resolution = tuple(int(s) for s in cfg.resolution)
    frames, fps, holes = load_inputs(cfg)
    system, internal = load_system(cfg)
    check_resolution(resolution, internal)
    log.info(
        "%s: %d frames %dx%d at %.2f fps, working at %dx%d",
        cfg.model.method,
        frames.shape[0],
        frames.shape[1],
        frames.shape[2],
        fps,
        *resolution,
    )
    result = inpaint_video(system, frames, holes, resolution, int(cfg.chunk_frames))
    output = write_video(cfg.output, result, fps, lossless=bool(cfg.lossless))
    log.info("wrote %s", output)
    if cfg.panel:
        shaded = frames.permute(0, 3, 1, 2).float() / 255 * (1 - 0.5 * holes.float())
        panel = hstack_panel([shaded, result.permute(0, 3, 1, 2).float() / 255])
        log.info("wrote %s", write_video(panel_path(output), panel, fps))
    return output


@errors.one_line_errors(COMMAND)
def run_or_exit(cfg: DictConfig) -> Path:
    """``run`` that turns bad input into one line on stderr and exit status 1."""
    return run(cfg)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="inpaint")
def hydra_main(cfg: DictConfig) -> None:
    run_or_exit(cfg)


def main() -> None:
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
