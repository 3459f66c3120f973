"""Real sample videos ($VIDINPAINT_SAMPLES, e.g. ../shared/data): folder indexing, .pts, the
freeform mask-count mismatch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vidinpaint.data.adapters import FolderAdapter, FramesAdapter
from vidinpaint.data.datamodule import ClipDataModule
from vidinpaint.data.masks import BoxMask, FileMask
from vidinpaint.data.sources import read_pts

pytestmark = pytest.mark.realdata


@pytest.fixture
def samples() -> Path:
    if not os.environ.get("VIDINPAINT_SAMPLES"):
        pytest.skip("VIDINPAINT_SAMPLES is not set")
    return Path(os.environ["VIDINPAINT_SAMPLES"])


def test_folder_indexes_sample_videos(samples: Path, tmp_path: Path):
    dm = ClipDataModule(
        "folder",
        str(samples),
        FolderAdapter(),
        BoxMask(),
        clip_len=32,
        size=(64, 64),
        num_workers=0,
        split_by="video",
        cache_dir=str(tmp_path),
    )
    dm.setup("fit")
    frames = {Path(v.path).name: v.num_frames for v in dm.index.videos}
    assert frames == {
        "demo-sbr.mp4": 275,
        "solidWhiteRight.mp4": 221,
        "bmx-trees.mp4": 80,
        "running_car.mp4": 292,
    }
    summary = dm.index.summary()
    assert summary["val_videos"] == 1 and summary["clips"] == 8 + 6 + 2 + 9
    item = dm.datasets["val"][0]
    assert item["video"].shape == (32, 3, 64, 64) and item["mask"].shape == (32, 1, 64, 64)


def test_einstein_pts(samples: Path):
    points = read_pts(samples / "landmarks" / "einstein.pts")
    assert points.shape == (68, 2)
    assert points[0].tolist() == pytest.approx([357.417253, 308.455774])


def test_freeform_mask_count_mismatch_is_reported(samples: Path, tmp_path: Path):
    adapter = FramesAdapter(frames_dir="frames", masks_dir="masks")
    dm = ClipDataModule(
        "frames",
        str(samples / "freeform"),
        adapter,
        FileMask(),
        clip_len=8,
        size=(64, 64),
        num_workers=0,
        cache_dir=str(tmp_path),
    )
    with pytest.raises(ValueError, match=r"has 32 frames but video .*frames has 15"):
        dm.setup("fit")


def test_davis_masks_line_up(samples: Path, tmp_path: Path):
    root = samples / "object"
    adapter = FramesAdapter(frames_dir="bmx-trees_frames", masks_dir="bmx-trees_mask")
    dm = ClipDataModule(
        "frames",
        str(root),
        adapter,
        FileMask(),
        clip_len=8,
        size=(64, 64),
        num_workers=0,
        cache_dir=str(tmp_path),
    )
    dm.setup("fit")
    item = dm.datasets["train"][0]
    assert 0 < item["mask"].float().mean() < 0.5
