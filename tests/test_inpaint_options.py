"""vidinpaint-inpaint's options for the jobs people bring: box masks, mask dilation, frame
ranges; each through the real run on videos made here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import vidinpaint
from helpers import compose_config
from vidinpaint.errors import UserError
from vidinpaint.inpaint import run, score_or_exit
from vidinpaint.metrics import psnr_masked
from vidinpaint.models.classic import ClassicSystem
from vidinpaint.selection import Box, dilate_holes, parse_boxes
from vidinpaint.video_io import read_video
from vidinpaint.video_write import write_video


def gradient_frames(frames: int, height: int, width: int) -> torch.Tensor:
    """uint8 ``T,H,W,3``: smooth colour ramps panning 3 px per frame (small files, content a
    fill can be told from)."""
    y, x = np.mgrid[0:height, 0:width]
    video = [
        np.stack([(x + 3 * t) % 256, (2 * y) % 256, ((x + y) // 4 + 5 * t) % 256], axis=-1)
        for t in range(frames)
    ]
    return torch.from_numpy(np.stack(video).astype(np.uint8))


def with_audio(path: Path, frames: torch.Tensor, fps: int, rate: int = 44100) -> Path:
    """A lossless RGB H.264 mp4 of ``frames`` (uint8 ``T,H,W,3``) with a mono AAC tone as long
    as the video."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264rgb", rate=fps, options={"qp": "0"})
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        audio = container.add_stream("aac", rate=rate, layout="mono")
        for image in frames.numpy():
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        count = rate * frames.shape[0] // fps
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(count) / rate)).astype(np.float32)
        for start in range(0, count, 1024):
            frame = av.AudioFrame.from_ndarray(
                tone[None, start : start + 1024], format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, start
            container.mux(audio.encode(frame))
        container.mux(video.encode())
        container.mux(audio.encode())
    return path


def audio_seconds(path: Path) -> float:
    """Where the audio stream of ``path`` ends (its last packet), in seconds."""
    with av.open(str(path)) as container:
        ends = [
            (packet.pts + packet.duration) * packet.time_base
            for packet in container.demux(container.streams.audio[0])
            if packet.pts is not None
        ]
    return float(max(ends))


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


def test_a_box_on_a_1080p_clip_keeps_every_pixel_outside_the_dilated_box_and_the_sound(tmp_path):
    frames = gradient_frames(3, 1080, 1920)
    video = with_audio(tmp_path / "in.mp4", frames, 25)
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
    assert abs(audio_seconds(out) - audio_seconds(video)) < 1 / 25


def test_a_frame_range_leaves_the_other_frames_bit_exact(tmp_path):
    frames = gradient_frames(8, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    result, _ = read_video(inpaint(tmp_path, video, "box:20,10,16,12", "frames=2:5"))
    assert torch.equal(result[:2], frames[:2]) and torch.equal(result[5:], frames[5:])
    for t in range(2, 5):
        assert not torch.equal(result[t, 10:22, 20:36], frames[t, 10:22, 20:36])


def test_the_hole_psnr_of_a_frame_range_scores_only_the_frames_filled(tmp_path):
    """``gt=`` with ``frames=``: the copied frames' holes (exact copies of the ground truth
    here) are not scored; the score is the hole PSNR of the filled frames alone."""
    frames = gradient_frames(8, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    spec = "box:20,10,16,12"
    cfg = compose_config(
        "inpaint",
        [
            "method=telea",
            f"input={video}",
            f"mask='{spec}'",
            f"output={tmp_path}/out.mp4",
            "frames=2:5",
            f"gt={video}",
        ],
        output_dir=tmp_path,
    )
    score = score_or_exit(cfg, run(cfg))
    result, _ = read_video(tmp_path / "out.mp4")
    pred, truth = (f.permute(0, 3, 1, 2).float() / 255 for f in (result, frames))
    holes = box_holes(spec, 8, 48, 64).float()
    filled = psnr_masked(pred[2:5], truth[2:5], holes[2:5])
    assert score == pytest.approx(float(filled), abs=1e-4)
    assert score < float(psnr_masked(pred, truth, holes))  # the old, flattering score


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


@pytest.mark.parametrize("coverage", ["any", "0.5", "0.75"])
def test_mask_coverage_decides_the_holes_the_method_sees(tmp_path, monkeypatch, coverage):
    """48x64 -> 24x32: a one-row line covers half of each 2x2 block it crosses, three dots a
    quarter of theirs."""
    frames = gradient_frames(2, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    hole = np.zeros((48, 64), np.uint8)
    hole[11, 10:22] = 255  # working row 5, columns 5-10
    hole[30, [40, 44, 48]] = 255  # working row 15, columns 20, 22, 24
    Image.fromarray(hole).save(tmp_path / "mask.png")
    expected = torch.zeros(24, 32)
    if coverage in ("any", "0.5"):
        expected[5, 5:11] = 1
    if coverage == "any":
        expected[15, [20, 22, 24]] = 1
    seen = []
    inpaint_frames = ClassicSystem.inpaint

    def record(self, video, hole, *args, **kwargs):
        seen.append(hole)
        return inpaint_frames(self, video, hole, *args, **kwargs)

    monkeypatch.setattr(ClassicSystem, "inpaint", record)
    inpaint(
        tmp_path, video, tmp_path / "mask.png", "resolution=[24,32]", f"mask_coverage={coverage}"
    )
    if coverage == "0.75":
        assert seen == []  # no hole left at the working size: the method is not called
    else:
        assert len(seen) == 1 and torch.equal(seen[0][:, 0], expected.expand(2, -1, -1))


def test_sound_is_kept_with_a_frame_range_and_dropped_on_request(tmp_path):
    frames = gradient_frames(12, 48, 64)
    video = with_audio(tmp_path / "in.mp4", frames, 12)
    out = inpaint(tmp_path, video, "box:20,10,16,12", "frames=3:6", "overwrite=true")
    with av.open(str(out)) as container, av.open(str(video)) as source:
        assert container.streams.audio[0].codec_context.name == "aac"
        copied = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
        original = [bytes(p) for p in source.demux(source.streams.audio[0]) if p.size]
    assert copied == original  # stream copy: the very packets, not re-encoded
    assert abs(audio_seconds(out) - audio_seconds(video)) < 1 / 12
    silent = inpaint(tmp_path, video, "box:20,10,16,12", "audio=false", "overwrite=true")
    with av.open(str(silent)) as container:
        assert not container.streams.audio


def test_png_output_round_trips_and_a_frame_folder_takes_its_fps(tmp_path):
    frames = gradient_frames(5, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    folder = tmp_path / "frames"
    cfg = compose_config(
        "inpaint",
        ["method=telea", f"input={video}", "mask='box:20,10,16,12'", f"output={folder}/"],
        output_dir=tmp_path,
    )
    run(cfg)
    assert sorted(p.name for p in folder.iterdir()) == [f"{t:05d}.png" for t in range(5)]
    pngs, _ = read_video(folder)
    lossless, _ = read_video(inpaint(tmp_path, video, "box:20,10,16,12"))
    assert torch.equal(pngs, lossless)
    again = inpaint(tmp_path, folder, "box:20,10,16,12", "fps=7.5", "overwrite=true")
    assert read_video(again)[1] == pytest.approx(7.5)
    with pytest.raises(UserError, match="fps=30 is for a folder of frames"):
        inpaint(tmp_path, video, "box:20,10,16,12", "fps=30", "overwrite=true")
    cfg.input, cfg.overwrite = str(folder), True
    with pytest.raises(UserError, match="is the input"):
        run(cfg)
    assert torch.equal(read_video(folder)[0], pngs)


def test_codec_and_crf_pick_the_encoder(tmp_path):
    """Through the command in its own process: decord, which other tests import, breaks
    PyAV's vp9 encoder in a process that loaded it."""
    frames = gradient_frames(4, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    for codec, suffix in (("hevc", "mkv"), ("vp9", "webm")):
        out = tmp_path / f"out.{suffix}"
        args = [f"input={video}", "mask=box:20,10,16,12", "method=telea", f"output={out}"]
        args += [f"codec={codec}", "crf=30", "lossless=false", f"hydra.run.dir={tmp_path}"]
        result = subprocess.run(
            [sys.executable, "-m", "vidinpaint.inpaint", *args], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]
        with av.open(str(out)) as container:
            assert container.streams.video[0].codec_context.name == codec
        assert read_video(out)[0].shape == frames.shape


def test_the_python_call_writes_what_the_command_writes(tmp_path):
    frames = gradient_frames(6, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    command = read_video(inpaint(tmp_path, video, "box:20,10,16,12", "mask_dilate=2"))[0]
    path = vidinpaint.inpaint_video(video, "box:20,10,16,12", method="telea", mask_dilate=2)
    assert path == tmp_path / "in_inpainted.mp4"
    assert torch.equal(read_video(path)[0], command)
    with pytest.raises(UserError, match="unknown option mask_dilation="):
        vidinpaint.inpaint_video(video, "box:20,10,16,12", tmp_path / "x.mp4", mask_dilation=2)
    with pytest.raises(UserError, match="reaches past the 64x48 frame"):
        vidinpaint.inpaint_video(video, "box:60,10,16,12", tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_the_in_memory_call_fills_the_holes_of_the_range_and_keeps_the_rest(tmp_path):
    video = gradient_frames(6, 48, 64).permute(0, 3, 1, 2).float() / 255
    mask = torch.zeros(6, 1, 48, 64)
    mask[:, :, 10:22, 20:36] = 1
    filled = vidinpaint.inpaint_frames(video, mask, method="telea", frames="2:")
    assert filled.shape == video.shape
    assert torch.equal(filled[:2], video[:2])
    known = (mask[2:] == 0).expand(-1, 3, -1, -1)
    assert torch.equal(filled[2:][known], video[2:][known])
    assert not torch.equal(filled[2:][~known], video[2:][~known])
    with pytest.raises(UserError, match="mask size 40x64 differs"):
        vidinpaint.inpaint_frames(video, mask[:, :, :40])
    with pytest.raises(UserError, match="video must be float T,3,H,W"):
        vidinpaint.inpaint_frames(video[:, :1], mask)


def test_crop_to_mask_fills_the_box_region_only_and_keeps_every_known_pixel(tmp_path, monkeypatch):
    frames = gradient_frames(5, 48, 64)
    video = write_video(tmp_path / "in.mp4", frames, 12.0, lossless=True)
    sizes = []
    inpaint_frames = ClassicSystem.inpaint

    def record(self, video, hole, *args, **kwargs):
        sizes.append(tuple(video.shape[-2:]))
        return inpaint_frames(self, video, hole, *args, **kwargs)

    monkeypatch.setattr(ClassicSystem, "inpaint", record)
    spec = "box:20,10,16,12+40,30,4,4@1:3"
    result, _ = read_video(inpaint(tmp_path, video, spec, "crop_margin=4"))
    assert sizes == [(32, 32)]  # rows 6-37, columns 16-47: both boxes and 4 pixels around
    known = ~box_holes(spec, 5, 48, 64).permute(0, 2, 3, 1).expand_as(frames)
    assert torch.equal(result[known], frames[known])
    assert not torch.equal(result[~known], frames[~known])
