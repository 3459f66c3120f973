"""vidinpaint-inpaint's options for the jobs people bring: box masks, mask dilation, frame
ranges; each through the real run on videos made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import compose_config
from vidinpaint.inpaint import run
from vidinpaint.models.classic import ClassicSystem
from vidinpaint.selection import Box, dilate_holes, parse_boxes
from vidinpaint.video_io import read_video, write_video


def gradient_frames(frames: int, height: int, width: int) -> torch.Tensor:
    """uint8 ``T,H,W,3``: smooth colour ramps panning 3 px per frame (small files, content a
    fill can be told from)."""
    y, x = np.mgrid[0:height, 0:width]
    video = [
        np.stack([(x + 3 * t) % 256, (2 * y) % 256, ((x + y) // 4 + 5 * t) % 256], axis=-1)
        for t in range(frames)
    ]
    return torch.from_numpy(np.stack(video).astype(np.uint8))


def inpaint(tmp_path: Path, video: Path, mask: str | Path, *extra: str) -> Path:
    """``run`` of ``telea`` (fast at any size) with the options given; returns the output."""
    out = tmp_path / "out.mp4"
    cfg = compose_config(
        "inpaint",
        ["method=telea", f"input={video}", f"mask='{mask}'", f"output={out}", *extra],
        output_dir=tmp_path,
    )
    return run(cfg)


def box_holes(spec: str, frames: int, height: int, width: int) -> torch.Tensor:
    """bool ``T,1,H,W`` of a ``box:`` specification, drawn here independently."""
    holes = torch.zeros(frames, 1, height, width, dtype=torch.bool)
    for box in parse_boxes(spec, height, width, frames):
        holes[box.start : box.stop, :, box.y : box.y + box.h, box.x : box.x + box.w] = True
    return holes


def test_box_masks_parse_with_frame_ranges():
    boxes = parse_boxes("box:0,0,200,80@0:50+1700,1000,220,80;10,20,30,40@7:", 1080, 1920, 60)
    assert boxes == [
        Box(0, 0, 200, 80, 0, 50),
        Box(1700, 1000, 220, 80, 0, 60),
        Box(10, 20, 30, 40, 7, 60),
    ]


def test_a_box_on_a_1080p_clip_keeps_every_pixel_outside_the_dilated_box(tmp_path):
    frames = gradient_frames(3, 1080, 1920)
    video = write_video(tmp_path / "in.mp4", frames, 25.0, lossless=True)
    spec = "box:1600,60,200,80+100,950,600,70@1:3"
    out = inpaint(tmp_path, video, spec, "mask_dilate=3")
    result, fps = read_video(out)
    holes = dilate_holes(box_holes(spec, 3, 1080, 1920), 3).permute(0, 2, 3, 1)
    known = ~holes.expand_as(frames)
    assert result.shape == frames.shape and fps == pytest.approx(25.0)
    assert torch.equal(result[known], frames[known])
    assert not torch.equal(result[~known], frames[~known])
    ring = holes & ~box_holes(spec, 3, 1080, 1920).permute(0, 2, 3, 1)
    assert not torch.equal(result[ring.expand_as(frames)], frames[ring.expand_as(frames)])


def test_a_frame_range_leaves_the_other_frames_bit_exact(tmp_path):
    frames = gradient_frames(8, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    result, _ = read_video(inpaint(tmp_path, video, "box:20,10,16,12", "frames=2:5"))
    assert torch.equal(result[:2], frames[:2]) and torch.equal(result[5:], frames[5:])
    for t in range(2, 5):
        assert not torch.equal(result[t, 10:22, 20:36], frames[t, 10:22, 20:36])


def test_frames_whose_mask_is_empty_are_not_sent_to_the_method(tmp_path, monkeypatch):
    frames = gradient_frames(10, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    masks = tmp_path / "masks"
    masks.mkdir()
    for t in range(10):
        hole = np.zeros((48, 64), np.uint8)
        if t in (1, 2, 3, 7, 8):
            hole[10:20, 10 + 3 * t : 20 + 3 * t] = 255
        Image.fromarray(hole).save(masks / f"{t:05d}.png")
    sent = []
    inpaint_frames = ClassicSystem.inpaint

    def record(self, video, hole, *args, **kwargs):
        sent.append(video.shape[0])
        return inpaint_frames(self, video, hole, *args, **kwargs)

    monkeypatch.setattr(ClassicSystem, "inpaint", record)
    result, _ = read_video(inpaint(tmp_path, video, masks, "frames=2:"))
    assert sent == [2, 2]  # frames 2-3 and 7-8: not 0-1 (before the range), 4-6, 9 (no hole)
    for t in (0, 1, 4, 5, 6, 9):
        assert torch.equal(result[t], frames[t])
