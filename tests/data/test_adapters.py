"""Adapters: face boxes (FaceForensics mask video, 300VW landmarks), Caltech .seq, frame folders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_fixtures import make_video, random_frames, write_pts, write_seq
from PIL import Image

from vidinpaint.data.adapters import (
    CaltechAdapter,
    FaceForensicsAdapter,
    FramesAdapter,
    VW300Adapter,
)
from vidinpaint.data.index import build_index, read_clip
from vidinpaint.data.sources import (
    SourceError,
    index_seq,
    read_frames,
    read_pts,
    read_seq_header,
    square_box,
)
from vidinpaint.video_write import write_video


def test_square_box_scales_and_shrinks_to_fit():
    # 10 x 16 box centred at (25, 18): side round(1.3 * 16) = 21
    assert square_box(20, 10, 30, 26, 1.3, 48, 64) == (14, 8, 35, 29)
    # a box larger than the frame height becomes a 48-px square pushed inside the frame
    assert square_box(50, 0, 64, 48, 1.3, 48, 64) == (16, 0, 64, 48)


def _face_mask_video(path: Path, boxes: list[tuple[int, int, int, int]]) -> None:
    """White frames with a black face region per frame (FaceForensics mask video), lossless."""
    frames = np.full((len(boxes), 48, 64, 3), 255, np.uint8)
    for frame, (x0, y0, x1, y1) in zip(frames, boxes, strict=True):
        frame[y0:y1, x0:x1] = 0
    write_video(path, frames, fps=25, crf=0)


def test_faceforensics_box_from_mask_video_per_clip(tmp_path: Path):
    root = tmp_path / "ff"
    for subset in ("train", "test"):
        make_video(root / subset / "original" / "000.avi", 8, 48, 64)
        _face_mask_video(
            root / subset / "mask" / "000.avi", [(20, 10, 30, 26)] * 4 + [(30, 20, 40, 30)] * 4
        )
    index = build_index(root, FaceForensicsAdapter(), clip_len=4, clip_stride=4, size=(16, 16))
    assert [v.split for v in index.videos] == ["train", "test"]
    assert [c.box for c in index.clips[:2]] == [(14, 8, 35, 29), (28, 18, 41, 31)]
    assert read_clip(index, 0).shape == (4, 16, 16, 3)


def test_faceforensics_pp_boxes_file(tmp_path: Path):
    root = tmp_path / "ffpp"
    make_video(root / "original_sequences/youtube/c23/videos/007.mp4", 4, 48, 64)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"007": [20, 10, 30, 26]}))
    index = build_index(root, FaceForensicsAdapter(boxes_file=str(boxes)), 4, 4, (16, 16))
    assert index.clips[0].box == (14, 8, 35, 29)


def test_faceforensics_without_mask_is_skipped(tmp_path: Path):
    root = tmp_path / "ffpp"
    make_video(root / "original_sequences/youtube/c23/videos/001.mp4", 4, 48, 64)
    make_video(root / "original_sequences/youtube/c23/videos/002.mp4", 4, 48, 64)
    masks = root / "manipulated_sequences/Deepfakes/masks/videos"
    masks.mkdir(parents=True)
    frames = np.zeros((4, 48, 64, 3), np.uint8)
    frames[:, 10:26, 20:30] = 255  # FF++ masks: white face on black
    write_video(masks / "002_005.mp4", frames, fps=25, crf=0)
    index = build_index(root, FaceForensicsAdapter(), 4, 4, (16, 16))
    assert [Path(s["path"]).name for s in index.skipped] == ["001.mp4"]
    assert "no face mask video" in index.skipped[0]["reason"]
    assert index.clips[0].box == (14, 8, 35, 29)


def test_pts_parsing_and_vw300_box(tmp_path: Path):
    rng = np.random.default_rng(0)
    root = tmp_path / "300VW"
    make_video(root / "001" / "vid.avi", 8, 48, 64)
    for t in range(8):
        points = np.column_stack([rng.uniform(10, 30, 68), rng.uniform(12, 28, 68)])
        points[0], points[1] = (10, 12), (30, 28)
        write_pts(root / "001" / "annot" / f"{t + 1:06d}.pts", points)
    parsed = read_pts(root / "001" / "annot" / "000001.pts")
    assert parsed.shape == (68, 2) and tuple(parsed[1]) == (30, 28)
    index = build_index(root, VW300Adapter(), 4, 4, (16, 16))
    # landmarks span x 10..30, y 12..28: square of side 20 centred at (20, 20)
    assert [c.box for c in index.clips] == [(10, 10, 30, 30)] * 2


def test_pts_malformed(tmp_path: Path):
    path = tmp_path / "bad.pts"
    path.write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(SourceError, match="n_points 68, got 1 points"):
        read_pts(path)


@pytest.mark.parametrize("padding", [True, False])
def test_seq_offsets_and_decoding(tmp_path: Path, padding: bool):
    frames = random_frames(4, 48, 64, seed=1)
    jpegs = write_seq(tmp_path / "V000.seq", frames, padding=padding)
    header = read_seq_header(tmp_path / "V000.seq")
    assert (header["width"], header["height"], header["frame_count"], header["fps"]) == (
        64,
        48,
        4,
        30.0,
    )
    info = index_seq(tmp_path / "V000.seq")
    record = [len(j) + 4 + 8 + (8 if padding else 0) for j in jpegs]
    assert info.seq_offsets == tuple(1024 + int(x) for x in np.cumsum([0, *record[:-1]]))
    decoded = read_frames(tmp_path / "V000.seq", "seq", 1, 3, info.seq_offsets)
    for got, jpeg in zip(decoded, jpegs[1:], strict=True):
        expected = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(got, cv2.cvtColor(expected, cv2.COLOR_BGR2RGB))
    assert np.abs(decoded.astype(int) - frames[1:]).mean() < 8


def test_seq_bad_files(tmp_path: Path):
    data = tmp_path / "V000.seq"
    write_seq(data, random_frames(3, 48, 64), padding=True)
    truncated = tmp_path / "V001.seq"
    truncated.write_bytes(data.read_bytes()[:-300])
    with pytest.raises(SourceError, match="truncated: header says 3 frames, found 2"):
        index_seq(truncated)
    (tmp_path / "V002.seq").write_bytes(b"\x00" * 2048)
    with pytest.raises(SourceError, match="not a Norpix .seq file"):
        index_seq(tmp_path / "V002.seq")


def test_caltech_centre_crop_and_test_sets(tmp_path: Path):
    for name in ("set00", "set06"):
        write_seq(tmp_path / name / "V000.seq", random_frames(4, 48, 64), padding=True)
    index = build_index(tmp_path, CaltechAdapter(), 4, 4, (16, 16))
    assert [v.split for v in index.videos] == ["train", "test"]
    # central square of 64x48 = columns 8..55 (the 480x480 columns 80..559 of 640x480)
    assert index.clips[0].box == (8, 0, 56, 48)
    offsets = tuple(index.videos[0].seq_offsets)
    raw = read_frames(tmp_path / "set00" / "V000.seq", "seq", 0, 4, offsets)
    expected = [cv2.resize(f[:, 8:56], (16, 16), interpolation=cv2.INTER_AREA) for f in raw]
    assert np.array_equal(read_clip(index, 0), np.stack(expected))


def _frame_folder(folder: Path, num_frames: int, suffix: str = ".jpg") -> None:
    folder.mkdir(parents=True)
    for i, frame in enumerate(random_frames(num_frames, 32, 48)):
        Image.fromarray(frame).save(folder / f"{i:05d}{suffix}")


def test_frames_adapter_davis_layout(tmp_path: Path):
    _frame_folder(tmp_path / "JPEGImages/480p/bear", 6)
    _frame_folder(tmp_path / "JPEGImages/480p/cows", 6)
    _frame_folder(tmp_path / "Annotations/480p/bear", 6, ".png")
    found = FramesAdapter().find(tmp_path)
    assert [c.path.name for c in found] == ["bear", "cows"]
    assert found[0].mask_path == tmp_path / "Annotations/480p/bear" and found[1].mask_path is None
    index = build_index(tmp_path, FramesAdapter(), 4, 2, (16, 16))
    assert len(index.clips) == 4 and index.clips[0].box == (8, 0, 40, 32)
    first = np.asarray(Image.open(tmp_path / "JPEGImages/480p/bear/00002.jpg").convert("RGB"))
    expected = cv2.resize(first[:, 8:40], (16, 16), interpolation=cv2.INTER_AREA)
    assert np.array_equal(read_clip(index, 1)[0], expected)
