"""vidinpaint-inpaint: remove what a mask covers from one video.

    vidinpaint-inpaint input=clip.mp4 mask=mask.png output=out.mp4   # propagate, own size
    vidinpaint-inpaint input=clip.mp4 mask=mask.png method=dip_vid_flow output=out.mp4
    vidinpaint-inpaint input=frames/ mask=masks/ method=combcn ckpt=last.ckpt panel=true
    vidinpaint-inpaint input=clips/ mask=clip_masks/ concurrent_fits=4   # several clips
    python -m vidinpaint.inpaint input=clip.mp4 mask=masks.mp4 schedule=paper
    vidinpaint-inpaint input=clip.mp4 mask=box:1700,40,180,60+0,980,1920,100@250:400 method=telea
    vidinpaint-inpaint input=frames/ mask=masks/ frames=100:250 fps=30 output=clean_frames/

The method works at ``resolution`` (``auto``: chosen from the input and the method,
``resolution.resolve_resolution``: the input's own size for the classic fills); only the
filled region is re-sized and pasted into the original frames, so the output keeps
the input's size, frame count, frame rate and (before video re-encoding) its known pixels.
``frames=`` and frames whose mask is empty are copied as decoded, never sent to the method;
``crop_margin=`` has it work on the holes' region only. The output keeps the input's audio
(``audio=``), as a video (``codec=``, ``crf=``, ``lossless=``) or PNG frames (``output=DIR/``).
Bad input stops the run with one line and no output.
The video streams through in overlapping chunks (``inference.stream_inpaint``): memory is
bounded by a chunk, not by the video's length. Internal fits write a resumable state into the
run folder (``resume=true`` continues a stopped run).
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

from vidinpaint import CONF_DIR, checks, errors, evaluation, inpaint_many, models, runs
from vidinpaint.inference import (
    ANY_COVERAGE,
    Box,
    ChunkFn,
    Coverage,
    ForwardBuffer,
    stream_inpaint,
    window_starts,
)
from vidinpaint.models import speed
from vidinpaint.models.internal import FitCheckpoint
from vidinpaint.resolution import resolve_resolution
from vidinpaint.selection import BoxMask, dilate_holes, is_box_spec, parse_range
from vidinpaint.video_io import MaskSource, VideoSource
from vidinpaint.video_write import FrameFolderWriter, VideoWriter, hstack_panel

log = logging.getLogger(__name__)

COMMAND = "vidinpaint-inpaint"
READ_FRAMES = 16
"""Frames decoded at a time."""


def open_writer(cfg: DictConfig, video: VideoSource) -> VideoWriter | FrameFolderWriter:
    """PNG frames for ``output=DIR/``, else a video with the input's audio (``audio=true``)."""
    if checks.writes_frames(cfg):
        if video.audio_streams and cfg.audio:
            log.info("output %s is PNG frames: the input's audio is not written", cfg.output)
        return FrameFolderWriter(cfg.output)
    audio = video.path if cfg.audio and video.audio_streams else None
    return VideoWriter(
        cfg.output,
        video.fps,
        crf=int(cfg.crf),
        lossless=bool(cfg.lossless),
        codec=str(cfg.codec),
        audio_from=audio,
    )


def open_mask(cfg: DictConfig, video: VideoSource) -> MaskSource | BoxMask:
    """``mask=box:...`` (``selection.BoxMask``) or a mask file, folder or image."""
    if is_box_spec(cfg.mask):
        return BoxMask(cfg.mask, video.height, video.width, video.num_frames)
    return MaskSource(cfg.mask)


def open_video(cfg: DictConfig) -> VideoSource:
    """The input; ``fps=`` sets a frame folder's rate (a video file has its own)."""
    fps = checks.frame_rate(cfg)
    video = VideoSource(cfg.input, fps=fps)
    if video.files and fps is None:
        log.info("%s is a folder of frames: written at %g fps (fps= sets it)", cfg.input, video.fps)
    return video


def open_inputs(
    cfg: DictConfig, video: VideoSource | None = None, mask: MaskSource | BoxMask | None = None
) -> tuple[VideoSource, MaskSource | BoxMask, list[bool], Box]:
    """The video and mask sources (of ``cfg.input``, ``cfg.mask`` unless given), checked
    against each other before any work: sizes and frame counts (from the containers), at least
    one hole and one known pixel (one pass over the mask, a chunk at a time). Also, per frame,
    whether it is filled (within ``frames=`` and with a hole, ``mask_dilate=`` applied), and
    the box ``(top, bottom, left, right)`` that holds every hole of the filled frames."""
    video = open_video(cfg) if video is None else video
    mask = open_mask(cfg, video) if mask is None else mask
    checks.check_mask_fits(video, mask, bool(cfg.mask_resize))
    height, width = video.height, video.width
    start, stop = 0, video.num_frames
    if cfg.get("frames") is not None:
        start, stop = parse_range(str(cfg.frames), video.num_frames, f"frames={cfg.frames}")
    dilate = checks.mask_dilation(cfg)
    has_hole, all_hole = [], True
    rows, cols = torch.zeros(height, dtype=torch.bool), torch.zeros(width, dtype=torch.bool)
    for holes in mask_chunks(video, mask, READ_FRAMES, distinct_only=True, dilate=dilate):
        first = len(has_hole) if mask.num_frames > 1 else start
        within = holes[max(start - first, 0) : max(stop - first, 0)]
        rows |= within.any(dim=3).any(dim=0)[0]
        cols |= within.any(dim=2).any(dim=0)[0]
        has_hole += holes.flatten(1).any(dim=1).tolist()
        all_hole = all_hole and bool(holes.all())
    if len(has_hole) == 1:
        has_hole *= video.num_frames
    fill = [start <= t < stop and hole for t, hole in enumerate(has_hole)]
    within = f" in frames {start}:{stop}" if (start, stop) != (0, video.num_frames) else ""
    checks.check_holes(cfg, fill, all_hole, within)
    top, left = int(rows.nonzero()[0]), int(cols.nonzero()[0])
    box = (top, int(rows.nonzero()[-1]) + 1, left, int(cols.nonzero()[-1]) + 1)
    return video, mask, fill, box


def mask_chunks(
    video: VideoSource,
    mask: MaskSource | BoxMask,
    chunk_frames: int,
    distinct_only: bool = False,
    dilate: int = 0,
) -> Iterator[Tensor]:
    """Holes bool ``(t,1,H,W)`` of the video's frames, ``chunk_frames`` at a time, resized
    (nearest) to the video's size and grown by ``dilate`` pixels; a one-frame mask is repeated
    as a view (``distinct_only``: yielded once)."""
    size = (video.height, video.width)

    def resized(holes: Tensor) -> Tensor:
        if tuple(holes.shape[-2:]) != size:
            holes = F.interpolate(holes.float(), size=size, mode="nearest") > 0.5
        return dilate_holes(holes, dilate)

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
    """Frames uint8 ``T,H,W,3``, fps and holes bool ``T,1,H,W`` as given (before
    ``mask_dilate``; checked as ``open_inputs``) all at once, for scoring and short videos."""
    video, mask, _, _ = open_inputs(cfg)
    frames = torch.cat(list(video.chunks(READ_FRAMES)))
    return frames, video.fps, torch.cat(list(mask_chunks(video, mask, READ_FRAMES)))


def filled_holes(cfg: DictConfig) -> Tensor:
    """Holes bool ``T,1,H,W`` as given (before ``mask_dilate``) of the frames filled only
    (``frames=`` and frames with a hole); the other frames are copied, so they have none."""
    video, mask, fill, _ = open_inputs(cfg)
    holes = torch.cat(list(mask_chunks(video, mask, READ_FRAMES)))
    return holes & torch.tensor(fill).view(-1, 1, 1, 1)


def load_system(cfg: DictConfig) -> tuple[torch.nn.Module, bool]:
    """The method's system (from the method table) and whether it is fitted on the video."""
    method = models.method(cfg.model.method)
    if not method.trainable:
        return models.build_system(cfg.model), method.family == models.FITTED
    if not cfg.ckpt:
        raise checks.InputError(
            f"method={method.name} needs ckpt=PATH (a vidinpaint-train checkpoint)"
        )
    system = models.load_trained(cfg.ckpt, expected=method.name)
    if torch.cuda.is_available():
        system.cuda()
    return system, False


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


def spans(fill: list[bool]) -> list[tuple[int, int, bool]]:
    """``(start, stop, filled)`` of the runs of consecutive frames that are filled or not."""
    runs = []
    for t, filled in enumerate(fill):
        if runs and runs[-1][2] == filled:
            runs[-1] = (runs[-1][0], t + 1, filled)
        else:
            runs.append((t, t + 1, filled))
    return runs


def stream_spans(
    complete: ChunkFn,
    frames: Iterator[Tensor],
    holes: Iterator[Tensor],
    fill: list[bool],
    resolution: tuple[int, int],
    chunk_frames: int,
    overlap: int,
    box: Box | None = None,
    coverage: Coverage = ANY_COVERAGE,
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """``stream_inpaint`` over each run of filled frames (``fill``, one bool per frame); the
    other frames are handed on as they were read, with no hole. Yields ``(frames, holes,
    result)`` in order as ``stream_inpaint``; chunk indices count on across runs (resumable
    state)."""
    frame_buffer, hole_buffer = ForwardBuffer(frames, "video"), ForwardBuffer(holes, "mask")
    first_chunk = 0
    for start, stop, filled in spans(fill):
        steps = [(i, min(i + READ_FRAMES, stop)) for i in range(start, stop, READ_FRAMES)]
        if not filled:
            for i, j in steps:
                part = frame_buffer.take(i, j)
                yield part, torch.zeros_like(hole_buffer.take(i, j)), part
            continue
        if (start, stop) != (0, len(fill)):
            log.info("filling frames %d-%d", start, stop - 1)

        def offset(video: Tensor, hole: Tensor, index: int, first: int = first_chunk) -> Tensor:
            return complete(video, hole, first + index)

        yield from stream_inpaint(
            offset,
            (frame_buffer.take(i, j) for i, j in steps),
            (hole_buffer.take(i, j) for i, j in steps),
            stop - start,
            resolution,
            chunk_frames,
            overlap,
            box,
            coverage,
        )
        first_chunk += len(window_starts(stop - start, chunk_frames, overlap))


def crop_box(cfg: DictConfig, holes: Box, height: int, width: int) -> Box | None:
    """The region the method works on: the box of the holes grown by ``crop_margin`` pixels
    within the frame; None (the whole frame) when ``crop_margin`` is null or the region is the
    frame."""
    margin = cfg.get("crop_margin")
    if margin is None:
        return None
    top, bottom, left, right = holes
    box = (
        max(top - margin, 0),
        min(bottom + margin, height),
        max(left - margin, 0),
        min(right + margin, width),
    )
    return None if box == (0, height, 0, width) else box


def resolve(
    cfg: DictConfig, video: VideoSource, holes: Box, internal: bool
) -> tuple[Box | None, tuple[int, int], Path | None]:
    """Where and at which size the method works: the region (``crop_box``, None for the whole
    frame), the working size (``resolution.resolve_resolution``) and the internal fit's state
    folder (None for the other methods)."""
    box = crop_box(cfg, holes, video.height, video.width)
    top, bottom, left, right = box or (0, video.height, 0, video.width)
    resolution = resolve_resolution(cfg, bottom - top, right - left)
    return box, resolution, checks.state_folder(cfg, internal)


def inpainted_chunks(
    cfg: DictConfig, video: VideoSource | None = None, mask: MaskSource | None = None
) -> tuple[VideoSource, Iterator[tuple[Tensor, Tensor, Tensor]], Path | None]:
    """open -> resolve -> stream: checks the options, loads the method and opens the input
    (``cfg.input``/``cfg.mask`` unless sources with their interface are given); returns the
    video source, the stream of ``stream_spans`` and the internal fit's state folder."""
    checks.check_inpaint_options(cfg)
    system, internal = load_system(cfg)  # absent weights stop the run before any decoding
    video, mask, fill, holes = open_inputs(cfg, video, mask)
    box, resolution, state = resolve(cfg, video, holes, internal)
    top, bottom, left, right = box or (0, video.height, 0, video.width)
    log.info(
        "%s: %d frames %dx%d at %.2f fps, %s at %dx%d, filling %d frames",
        cfg.model.method,
        video.num_frames,
        video.height,
        video.width,
        video.fps,
        f"the region x {left}-{right - 1}, y {top}-{bottom - 1} worked" if box else "working",
        *resolution,
        sum(fill),
    )
    chunks = stream_spans(
        chunk_method(system, state, int(cfg.state_every)),
        video.chunks(READ_FRAMES),
        mask_chunks(video, mask, READ_FRAMES, dilate=checks.mask_dilation(cfg)),
        fill,
        resolution,
        int(cfg.chunk_frames),
        int(cfg.chunk_overlap),
        box,
        checks.mask_coverage(cfg),
    )
    return video, chunks, state


def write(cfg: DictConfig, video: VideoSource, chunks: Iterator[tuple[Tensor, ...]]) -> None:
    """The output (``open_writer``) and, with ``panel=true``, the panel video."""
    output = Path(cfg.output)
    panel = checks.panel_path(output)
    panel_writer = VideoWriter(panel, video.fps) if cfg.panel else nullcontext()
    with open_writer(cfg, video) as writer, panel_writer:
        for frames, holes, result in chunks:
            writer.write(result)
            if cfg.panel:
                panel_writer.write(panel_frames(frames, holes, result))
    log.info("wrote %s%s", output, f" and {panel}" if cfg.panel else "")


def run(cfg: DictConfig) -> Path:
    """Checks the outputs, then open -> resolve -> stream (``inpainted_chunks``) -> write;
    returns ``cfg.output``."""
    checks.check_inpaint_outputs(cfg)
    video, chunks, state = inpainted_chunks(cfg)
    write(cfg, video, chunks)
    if state is not None:
        shutil.rmtree(state, ignore_errors=True)
    return Path(cfg.output)


@errors.one_line_errors(COMMAND)
def run_or_exit(cfg: DictConfig) -> Path:
    """``run``, or ``inpaint_many.run_clips`` for a folder or list of clips (each one ``run``), that
    turns bad input into one line on stderr and exit status 1."""
    if inpaint_many.several_clips(cfg):
        return inpaint_many.run_clips(cfg, run)
    return run(cfg)


@errors.one_line_errors(COMMAND)
def score_or_exit(cfg: DictConfig, output: Path) -> float:
    """Hole PSNR of the written ``output`` against ``cfg.gt`` over the holes of the frames
    filled (``filled_holes``), also written to metrics.json."""
    value = evaluation.hole_psnr_of_video(output, cfg.gt, filled_holes(cfg))
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
    log.info(speed.keep_freed_memory())
    output = run_or_exit(cfg)
    return score_or_exit(cfg, output) if cfg.gt else None


def quote_box_masks(args: list[str]) -> list[str]:
    """``mask=box:x,y,w,h`` as a quoted string: Hydra reads an unquoted comma as a sweep."""
    return [f"mask='{arg[5:]}'" if arg.startswith("mask=box:") else arg for arg in args]


def main() -> None:
    sys.argv[1:] = quote_box_masks(sys.argv[1:])
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
