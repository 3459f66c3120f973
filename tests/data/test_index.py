"""Clip index: clips per video, split by clip or by video, decoding, bad-input handling."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import decord
import numpy as np
import pytest
from data_fixtures import make_video

from vidinpaint.data.adapters import Candidate, FolderAdapter
from vidinpaint.data.index import build_index, read_clip, split_videos
from vidinpaint.data.sources import center_box


def test_index_cuts_clips_and_splits_by_video(video_folder: Path):
    index = build_index(video_folder, FolderAdapter(), clip_len=4, clip_stride=4, size=(16, 16))
    assert len(index.videos) == 6
    assert [c.start for c in index.clips if c.video == 0] == [0, 4, 8, 12]
    splits = [v.split for v in index.videos]
    assert splits.count("val") == 1 and splits.count("train") == 5
    train, val = index.split_clips("train"), index.split_clips("val")
    assert len(train) == 20 and len(val) == 4
    assert {index.clips[i].video for i in train}.isdisjoint({index.clips[i].video for i in val})
    again = build_index(video_folder, FolderAdapter(), clip_len=4, clip_stride=4, size=(16, 16))
    assert [v.split for v in again.videos] == splits
    assert index.summary()["val_clips"] == 4


class _OneTestVideo(FolderAdapter):
    """A folder whose first video is a fixed test video (like FaceForensics' test subset)."""

    def find(self, root: Path) -> list[Candidate]:
        found = super().find(root)
        return [Candidate(c.path, split="test" if i == 0 else None) for i, c in enumerate(found)]


def test_split_by_clip_is_five_to_one_over_clips(video_folder: Path):
    index = build_index(video_folder, FolderAdapter(), 4, 4, (16, 16), split_by="clip")
    train, val = index.split_clips("train"), index.split_clips("val")
    assert (len(train), len(val)) == (20, 4)  # 24 clips, 5:1 over the clips themselves
    assert sorted(train + val) == list(range(24))
    assert all(v.split == "per_clip" for v in index.videos)
    assert index.settings["split_by"] == "clip"
    again = build_index(video_folder, FolderAdapter(), 4, 4, (16, 16), split_by="clip")
    assert again.split_clips("val") == val
    by_video = build_index(video_folder, FolderAdapter(), 4, 4, (16, 16), split_by="video")
    assert by_video.settings != index.settings  # a prepared index records its split mode


def test_split_by_video_keeps_clips_of_one_video_together(video_folder: Path):
    index = build_index(video_folder, FolderAdapter(), 4, 4, (16, 16), split_by="video")
    for video in range(len(index.videos)):
        splits = {index.clip_split(i) for i, c in enumerate(index.clips) if c.video == video}
        assert len(splits) == 1
    assert index.summary()["val_videos"] == 1


def test_split_by_time_holds_out_the_last_frames_of_every_video(tmp_path: Path):
    """Overlapping clips (stride 2 < clip_len 4) of a 30- and a 22-frame video: checked on the
    frame numbers each split reads, the training frames all come before the held-out ones."""
    make_video(tmp_path / "a.mp4", 30, 32, 32, seed=0)
    make_video(tmp_path / "b.mp4", 22, 32, 32, seed=1)
    index = build_index(tmp_path, FolderAdapter(), 4, 2, (16, 16), split_by="time")
    for video, entry in enumerate(index.videos):
        frames = {}
        for split in ("train", "val"):
            clips = [index.clips[i] for i in index.split_clips(split)]
            clips = [c for c in clips if c.video == video]
            frames[split] = {c.start + t for c in clips for t in range(4)}
        n = entry.num_frames
        boundary = round(n * 5 / 6)  # 25 of 30, 18 of 22
        assert frames["train"] and frames["val"]
        assert max(frames["train"]) < boundary <= min(frames["val"]) <= max(frames["val"]) < n
        # every clip that fits on one side is kept, the ones across the boundary are not
        starts = [c.start for c in index.clips if c.video == video]
        assert starts == [s for s in range(0, n - 3, 2) if s + 4 <= boundary or s >= boundary]
    assert index.summary()["train_videos"] == index.summary()["val_videos"] == 2


@pytest.mark.parametrize("split_by", ["clip", "video"])
def test_fixed_test_videos_stay_test_in_both_modes(video_folder: Path, split_by: str):
    index = build_index(video_folder, _OneTestVideo(), 4, 4, (16, 16), split_by=split_by)
    test = index.split_clips("test")
    assert {index.clips[i].video for i in test} == {0} and len(test) == 4
    assert index.videos[0].split == "test"
    others = index.split_clips("train") + index.split_clips("val")
    assert 0 not in {index.clips[i].video for i in others} and len(others) == 20


def test_split_by_clip_refuses_overlapping_clips_and_unknown_modes(video_folder: Path):
    with pytest.raises(ValueError, match="non-overlapping"):
        build_index(video_folder, FolderAdapter(), 8, 3, (16, 16), split_by="clip")
    with pytest.raises(ValueError, match="split_by must be one of"):
        build_index(video_folder, FolderAdapter(), 4, 4, (16, 16), split_by="frame")


def test_clip_stride_and_overlap(video_folder: Path):
    index = build_index(video_folder, FolderAdapter(), clip_len=8, clip_stride=3, size=(32, 32))
    assert [c.start for c in index.clips if c.video == 0] == [0, 3, 6]


def test_split_is_five_to_one_and_deterministic():
    splits = split_videos(12, 5, seed=0)
    assert splits.count("val") == 2
    assert splits == split_videos(12, 5, seed=0)
    assert splits != split_videos(12, 5, seed=1) or split_videos(12, 5, seed=2) != splits
    assert split_videos(1, 5, seed=0) == ["train"]
    assert split_videos(2, 5, seed=0).count("val") == 1


def test_clip_values_match_direct_decord_read(tmp_path: Path):
    path = make_video(tmp_path / "a.mp4", 12, 32, 64, seed=3)
    direct = decord.VideoReader(str(path)).get_batch(list(range(4, 8))).asnumpy()
    full = build_index(tmp_path, FolderAdapter(crop="full"), 4, 4, size=(32, 64))
    assert np.array_equal(read_clip(full, 1), direct)
    cropped = build_index(tmp_path, FolderAdapter(), 4, 4, size=(16, 16))
    assert cropped.clips[1].box == (16, 0, 48, 32)
    expected = [cv2.resize(f[:, 16:48], (16, 16), interpolation=cv2.INTER_AREA) for f in direct]
    assert np.array_equal(read_clip(cropped, 1), np.stack(expected))


def test_center_box_is_caltech_crop():
    assert center_box(480, 640, 1.0) == (80, 0, 560, 480)
    assert center_box(480, 640, None) == (0, 0, 640, 480)
    assert center_box(400, 400, 2.0) == (0, 100, 400, 300)


def test_bad_videos_skipped_with_one_warning_each(tmp_path: Path, caplog):
    make_video(tmp_path / "good.mp4", 8)
    make_video(tmp_path / "short.mp4", 2)
    (tmp_path / "corrupt.mp4").write_bytes(b"not a video at all" * 50)
    data = make_video(tmp_path / "full.mp4", 8).read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.INFO, logger="vidinpaint.data.index"):
        index = build_index(tmp_path, FolderAdapter(), 4, 4, size=(16, 16))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert sum("short.mp4: too short: 2 frames < clip_len 4" in w for w in warnings) == 1
    assert sum("corrupt.mp4: unreadable" in w for w in warnings) == 1
    assert sum("truncated.mp4: unreadable" in w for w in warnings) == 1
    assert all("\n" not in w for w in warnings)
    assert index.summary()["skipped"] == 3 and len(index.videos) == 2
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("indexed 2 videos (4 clips), skipped 3") for m in infos)


def test_missing_root_and_no_usable_clip(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="dataset root not found: .*nowhere"):
        build_index(tmp_path / "nowhere", FolderAdapter(), 4, 4, (16, 16))
    make_video(tmp_path / "tiny.mp4", 3)
    with pytest.raises(ValueError, match="no usable clip of 4 frames"):
        build_index(tmp_path, FolderAdapter(), 4, 4, (16, 16))
