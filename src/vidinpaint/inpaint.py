"""vidinpaint-inpaint: remove what a mask covers from one video.

    vidinpaint-inpaint input=clip.mp4 mask=mask.png output=out.mp4   # propagate, own size
    vidinpaint-inpaint input=clip.mp4 mask=mask.png method=dip_vid_flow output=out.mp4
    vidinpaint-inpaint input=frames/ mask=masks/ method=combcn ckpt=last.ckpt panel=true
    vidinpaint-inpaint input=clips/ mask=clip_masks/ concurrent_fits=4   # several clips
    python -m vidinpaint.inpaint input=clip.mp4 mask=masks.mp4 schedule=paper

The method works at ``resolution`` (``auto``: chosen from the input and the method,
``resolution.resolve_resolution``: the input's own size for the classic fills); only the
filled region is re-sized and pasted into the original frames, so the output keeps
the input's size, frame count, frame rate and (before video re-encoding) its known pixels.
Bad input stops the run with one line and no output.
The video streams through in overlapping chunks (``inference.stream_inpaint``): memory is
bounded by a chunk, not by the video's length. Internal fits write a resumable state into the
run folder (``resume=true`` continues a stopped run).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

from vidinpaint import CONF_DIR, batch, checks, errors, evaluation, models, runs
from vidinpaint.inference import ChunkFn, stream_inpaint
from vidinpaint.models.internal import FitCheckpoint
from vidinpaint.resolution import check_resolution, resolve_resolution
from vidinpaint.video_io import MaskSource, VideoSource, VideoWriter, hstack_panel

log = logging.getLogger(__name__)

COMMAND = "vidinpaint-inpaint"
READ_FRAMES = 16
"""Frames decoded at a time."""


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


def open_inputs(cfg: DictConfig) -> tuple[VideoSource, MaskSource]:
    """The video and mask sources, checked against each other before any work: sizes and
    frame counts (from the containers), at least one hole and one known pixel (one pass over
    the mask, a chunk at a time)."""
    video, mask = VideoSource(cfg.input), MaskSource(cfg.mask)
    height, width = video.height, video.width
    if (mask.height, mask.width) != (height, width) and not cfg.mask_resize:
        raise InputError(
            f"mask size {mask.height}x{mask.width} differs from the video's {height}x{width} "
            "(set mask_resize=true to resize the mask)"
        )
    if mask.num_frames not in (1, video.num_frames):
        raise InputError(
            f"mask has {mask.num_frames} frames, the video {video.num_frames} (give one mask "
            "per frame or a single static image)"
        )
    any_hole, all_hole = False, True
    for holes in mask_chunks(video, mask, READ_FRAMES, distinct_only=True):
        any_hole = any_hole or bool(holes.any())
        all_hole = all_hole and bool(holes.all())
    if not any_hole:
        raise InputError(f"mask {cfg.mask} has no hole pixel (non-zero = remove): nothing to do")
    if all_hole:
        raise InputError(f"mask {cfg.mask} covers every pixel: nothing is known to fill from")
    return video, mask


def mask_chunks(
    video: VideoSource, mask: MaskSource, chunk_frames: int, distinct_only: bool = False
) -> Iterator[Tensor]:
    """Holes bool ``(t,1,H,W)`` of the video's frames, ``chunk_frames`` at a time, resized
    (nearest) to the video's size; a one-frame mask is repeated as a view (``distinct_only``:
    yielded once)."""
    size = (video.height, video.width)

    def resized(holes: Tensor) -> Tensor:
        if tuple(holes.shape[-2:]) == size:
            return holes
        return F.interpolate(holes.float(), size=size, mode="nearest") > 0.5

    if mask.num_frames > 1:
        yield from (resized(holes) for holes in mask.chunks(chunk_frames))
        return
    one = resized(next(mask.chunks(1)))
    if distinct_only:
        yield one
        return
    for start in range(0, video.num_frames, chunk_frames):
        yield one.expand(min(chunk_frames, video.num_frames - start), -1, -1, -1)


def load_inputs(cfg: DictConfig) -> tuple[Tensor, float, Tensor]:
    """Frames uint8 ``T,H,W,3``, fps and holes bool ``T,1,H,W`` (checked as ``open_inputs``)
    all at once, for scoring and short videos."""
    video, mask = open_inputs(cfg)
    frames = torch.cat(list(video.chunks(READ_FRAMES)))
    return frames, video.fps, torch.cat(list(mask_chunks(video, mask, READ_FRAMES)))


def load_system(cfg: DictConfig) -> tuple[torch.nn.Module, bool]:
    """The method's system (from the method table) and whether it is fitted on the video."""
    method = models.method(cfg.model.method)
    if not method.trainable:
        return models.build_system(cfg.model), method.family == models.FITTED
    if not cfg.ckpt:
        raise InputError(f"method={method.name} needs ckpt=PATH (a vidinpaint-train checkpoint)")
    system = models.load_trained(cfg.ckpt, expected=method.name)
    if torch.cuda.is_available():
        system.cuda()
    return system, False


def check_chunks(chunk_frames: int, overlap: int) -> None:
    if chunk_frames < 1 or not 0 <= overlap < chunk_frames:
        raise InputError(
            f"chunk_frames must be >= 1 and chunk_overlap in [0, chunk_frames), got "
            f"chunk_frames={chunk_frames} chunk_overlap={overlap}"
        )


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


def chunk_method(system: torch.nn.Module, state: Path | None, state_every: int) -> ChunkFn:
    """``system.inpaint`` for a chunk; with a state folder each chunk's fit is resumable."""

    def complete(video: Tensor, hole: Tensor, index: int) -> Tensor:
        if state is None:
            return system.inpaint(video, hole)
        checkpoint = FitCheckpoint(state / f"chunk_{index:05d}.pt", state_every)
        return system.inpaint(video, hole, checkpoint=checkpoint)

    return complete


def panel_frames(frames: Tensor, holes: Tensor, result: Tensor) -> Tensor:
    """``T,3,H,2W`` float: input with the holes shaded | output."""
    shaded = frames.permute(0, 3, 1, 2).float() / 255 * (1 - 0.5 * holes.float())
    return hstack_panel([shaded, result.permute(0, 3, 1, 2).float() / 255])


def run(cfg: DictConfig) -> Path:
    """Reads, checks, inpaints and writes ``cfg.output`` (and the panel); returns the path."""
    check_outputs(cfg)
    chunk_frames, overlap = int(cfg.chunk_frames), int(cfg.chunk_overlap)
    check_chunks(chunk_frames, overlap)
    check_resolution(cfg)
    system, internal = load_system(cfg)  # absent weights stop the run before any decoding
    video, mask = open_inputs(cfg)
    resolution = resolve_resolution(cfg, video.height, video.width)
    state = state_folder(cfg, internal)
    log.info(
        "%s: %d frames %dx%d at %.2f fps, working at %dx%d",
        cfg.model.method,
        video.num_frames,
        video.height,
        video.width,
        video.fps,
        *resolution,
    )
    output = Path(cfg.output)
    chunks = stream_inpaint(
        chunk_method(system, state, int(cfg.state_every)),
        video.chunks(READ_FRAMES),
        mask_chunks(video, mask, READ_FRAMES),
        video.num_frames,
        resolution,
        chunk_frames,
        overlap,
    )
    panel_writer = VideoWriter(panel_path(output), video.fps) if cfg.panel else nullcontext()
    with VideoWriter(output, video.fps, lossless=bool(cfg.lossless)) as writer, panel_writer:
        for frames, holes, result in chunks:
            writer.write(result)
            if cfg.panel:
                panel_writer.write(panel_frames(frames, holes, result))
    log.info("wrote %s%s", output, f" and {panel_path(output)}" if cfg.panel else "")
    if state is not None:
        shutil.rmtree(state, ignore_errors=True)
    return output


@errors.one_line_errors(COMMAND)
def run_or_exit(cfg: DictConfig) -> Path:
    """``run``, or ``batch.run_clips`` for a folder or list of clips (each one ``run``), that
    turns bad input into one line on stderr and exit status 1."""
    if batch.several_clips(cfg):
        return batch.run_clips(cfg, run)
    return run(cfg)


@errors.one_line_errors(COMMAND)
def score_or_exit(cfg: DictConfig, output: Path) -> float:
    """Hole PSNR of the written ``output`` against ``cfg.gt``, also written to metrics.json."""
    _, _, holes = load_inputs(cfg)
    value = evaluation.hole_psnr_of_video(output, cfg.gt, holes)
    runs.write_metrics(
        Path(cfg.paths.output_dir),
        {"inpaint/psnr_hole": value},
        method=cfg.model.method,
        input=str(cfg.input),
        gt=str(cfg.gt),
    )
    log.info("hole PSNR against %s: %.2f dB", cfg.gt, value)
    return value


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="inpaint")
def hydra_main(cfg: DictConfig) -> float | None:
    """Returns the hole PSNR against ``gt`` when it is set: the objective of Optuna sweeps."""
    output = run_or_exit(cfg)
    return score_or_exit(cfg, output) if cfg.gt else None


def main() -> None:
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
