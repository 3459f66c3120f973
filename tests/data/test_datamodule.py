"""ClipDataModule: batches, fixed validation masks, prepared index, workers, synthetic data,
and the vidinpaint-prepare entry point."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vidinpaint.data.adapters import FolderAdapter, SyntheticAdapter
from vidinpaint.data.datamodule import ClipDataModule
from vidinpaint.data.masks import BoxMask
from vidinpaint.data.synthetic import synthetic_video

REPO = Path(__file__).resolve().parents[2]


def _datamodule(root: Path, **kw) -> ClipDataModule:
    options = dict(
        name="tiny",
        root=str(root),
        adapter=FolderAdapter(),
        mask=BoxMask(),
        clip_len=4,
        size=(16, 16),
        num_workers=0,
        cache_dir=str(root.parent / "cache"),
    )
    return ClipDataModule(**{**options, **kw})


def test_batch_contents(video_folder: Path):
    dm = _datamodule(video_folder, batch_size=2)
    dm.setup("fit")
    raw = next(iter(dm.train_dataloader()))
    assert raw["video"].dtype == raw["mask"].dtype == torch.uint8  # compact between processes
    assert "masked" not in raw
    batch = dm.on_after_batch_transfer(raw, 0)
    assert batch["video"].shape == (2, 4, 3, 16, 16) and batch["mask"].shape == (2, 4, 1, 16, 16)
    assert batch["video"].dtype == batch["mask"].dtype == batch["masked"].dtype == torch.float32
    assert batch["start"].dtype == torch.long and len(batch["path"]) == 2
    assert all(Path(p).exists() for p in batch["path"])
    # independent computation: eq. of the masked input, video * (1 - M) + mean * M
    video = raw["video"].double() / 255
    mask = raw["mask"].double()
    mean = torch.tensor(dm.mean_pixel, dtype=torch.float64).view(1, 1, 3, 1, 1)
    assert torch.allclose(batch["video"].double(), video, atol=1e-6)
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0} and batch["mask"].sum() > 0
    assert torch.allclose(batch["masked"].double(), video * (1 - mask) + mean * mask, atol=1e-6)
    assert min(dm.mean_pixel) > 0.2 and max(dm.mean_pixel) < 0.8


def test_mean_pixel_is_training_mean(video_folder: Path):
    dm = _datamodule(video_folder, mean_pixel_clips=1000)
    dm.setup("fit")
    videos = (
        torch.stack(
            [dm.datasets["train"][i]["video"] for i in range(len(dm.datasets["train"]))]
        ).double()
        / 255
    )
    assert np.allclose(dm.mean_pixel, videos.mean(dim=(0, 1, 3, 4)).numpy(), atol=1e-5)


def test_val_masks_fixed_across_runs_train_masks_random(video_folder: Path):
    masks = []
    for run_seed in (1, 2):
        L.seed_everything(run_seed)
        dm = _datamodule(video_folder)
        dm.setup("fit")
        val = [b["mask"] for b in dm.val_dataloader()]
        train = [dm.datasets["train"][0]["mask"] for _ in range(2)]
        masks.append((val, train))
    assert all(torch.equal(a, b) for a, b in zip(masks[0][0], masks[1][0], strict=True))
    assert not torch.equal(masks[0][0][0], masks[0][0][1])  # per clip, not one mask for all
    assert not torch.equal(masks[0][1][0], masks[0][1][1])  # training masks are fresh draws
    dm2 = _datamodule(video_folder, val_mask_seed=7)
    dm2.setup("fit")
    assert not torch.equal(next(iter(dm2.val_dataloader()))["mask"], masks[0][0][0])


def test_prepared_index_used_when_settings_match(video_folder: Path, caplog):
    dm = _datamodule(video_folder)
    index = dm.write_index()
    data = json.loads(dm.index_path.read_text())
    assert data["summary"] == index.summary() and data["summary"]["videos"] == 6
    assert len(data["mean_pixel"]) == 3 and data["settings"]["clip_len"] == 4
    with caplog.at_level(logging.INFO):
        same = _datamodule(video_folder)
        same.setup("fit")
        same.setup("validate")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("using prepared index" in m for m in messages) == 1
    assert same.mean_pixel == tuple(data["mean_pixel"])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        other = _datamodule(video_folder, clip_len=8)
        other.setup("fit")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("indexing" in m and "on the fly" in m for m in messages) == 1
    assert other.index.clip_len == 8


def test_cached_clips_stream_like_the_originals(video_folder: Path):
    dm = _datamodule(video_folder, size=(32, 32))
    index = dm.write_index(with_clips=True)
    assert all(c.cached and Path(c.cached).exists() for c in index.clips)
    cached = _datamodule(video_folder, size=(32, 32))
    cached.setup("fit")
    assert cached.index.clips[0].cached is not None
    fresh = _datamodule(video_folder, size=(32, 32), cache_dir=str(video_folder.parent / "x"))
    fresh.setup("fit")
    a, b = cached.datasets["val"][0]["video"], fresh.datasets["val"][0]["video"]
    assert (a.float() - b.float()).abs().mean() / 255 < 0.02


def test_dataloader_with_a_worker(video_folder: Path):
    dm = _datamodule(video_folder, num_workers=1, batch_size=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.persistent_workers
    batches = list(loader)
    assert sum(len(b["path"]) for b in batches) == len(dm.datasets["train"]) == 20


def test_synthetic_generated_once_and_deterministic(tmp_path: Path):
    adapter = SyntheticAdapter(num_videos=3, num_frames=8, frame_size=32, seed=1)
    dm = ClipDataModule(
        "synthetic",
        str(tmp_path / "a"),
        adapter,
        BoxMask(),
        clip_len=4,
        size=(32, 32),
        num_workers=0,
    )
    dm.prepare_data()
    stamp = (tmp_path / "a" / "video_000.mp4").stat().st_mtime_ns
    dm.setup("fit")
    assert dm.index.summary()["videos"] == 3 and dm.index.summary()["val_videos"] == 1
    assert (tmp_path / "a" / "video_000.mp4").stat().st_mtime_ns == stamp  # not rewritten
    other = ClipDataModule(
        "synthetic",
        str(tmp_path / "b"),
        adapter,
        BoxMask(),
        clip_len=4,
        size=(32, 32),
        num_workers=0,
    )
    other.setup("fit")
    a, b = dm.datasets["train"][0]["video"], other.datasets["train"][0]["video"]
    # the frames are a function of the seed; x264's choices may differ between runs on a busy
    # machine, so the decoded clips agree up to the codec's rounding
    assert (a.float() - b.float()).abs().mean() < 1.0
    assert (a[1:].float() - a[:-1].float()).abs().mean() / 255 > 0.005  # frames change over time


def test_synthetic_frames_are_a_function_of_the_seed():
    first, again = synthetic_video(7, num_frames=6, size=32), synthetic_video(7, 6, 32)
    assert first.shape == (6, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, synthetic_video(8, 6, 32))


def test_data_configs_compose_and_instantiate(tmp_path: Path):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        for name in ("synthetic", "folder", "frames", "faceforensics", "vw300", "caltech"):
            cfg = compose("prepare", overrides=[f"data={name}", f"paths.data_dir={tmp_path}"])
            assert cfg.data.clip_len == 32 and list(cfg.data.size) == [128, 128]
            assert cfg.data.val_mask_seed == 2019 and cfg.data.batch_size == 1
            dm = instantiate(cfg.data)
            assert dm.name == name and dm.clip_stride == 32 and isinstance(dm.mask, BoxMask)
            assert dm.root.parent == tmp_path
        cfg = compose("prepare", overrides=["data/mask=freeform", "data.mask.moving=true"])
        assert instantiate(cfg.data.mask).moving
        assert instantiate(
            compose("prepare", overrides=["data.mask=box_random"]).data
        ).mask.per_frame


def test_prepare_entry_point_writes_index(video_folder: Path, tmp_path: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PROJECT_ROOT": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidinpaint.prepare",
            "data=folder",
            f"data.root={video_folder}",
            "data.clip_len=4",
            "data.size=[16,16]",
            f"data.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = list((tmp_path / "cache").glob("index-folder-*.json"))
    assert len(written) == 1
    summary = json.loads(written[0].read_text())["summary"]
    assert summary["videos"] == 6 and summary["train_clips"] == 20 and summary["val_clips"] == 4
    assert str(written[0]) in result.stdout


def test_missing_root_named(tmp_path: Path):
    dm = _datamodule(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="absent"):
        dm.setup("fit")


FORK_AFTER_OPENCV = """
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from vidinpaint.data.adapters import FolderAdapter
from vidinpaint.data.datamodule import ClipDataModule
from vidinpaint.data.masks import BoxMask
from vidinpaint.flow import estimate_flow

frames = torch.rand(4, 3, 256, 256, generator=torch.Generator().manual_seed(0))
estimate_flow(frames[:-1], frames[1:])  # OpenCV work in the parent before the workers fork
cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (500, 500))
root = Path(sys.argv[1])
dm = ClipDataModule(name="tiny", root=str(root), adapter=FolderAdapter(), mask=BoxMask(),
                    clip_len=4, size=(16, 16), num_workers=2, batch_size=2,
                    cache_dir=str(root.parent / "cache-fork"))
dm.setup("fit")
print(sum(len(b["path"]) for b in dm.train_dataloader()))
"""


def test_workers_forked_after_opencv_use_do_not_hang(video_folder: Path):
    """Validation's DIS flow and sample writing use OpenCV in the training process; the next
    epoch's workers fork from it. A worker that reconfigures OpenCV's inherited thread pool
    (cv2.setNumThreads in a worker_init_fn) deadlocks."""
    result = subprocess.run(
        [sys.executable, "-c", FORK_AFTER_OPENCV, str(video_folder)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "20"


def test_split_by_is_passed_on_and_a_missing_test_split_is_an_error(video_folder: Path):
    dm = _datamodule(video_folder, split_by="clip")
    dm.setup("fit")
    assert dm.index.settings["split_by"] == "clip"
    assert dm.protocol == {"protocol/split_by": "clip", "protocol/train_val_ratio": 5}
    assert len(dm.val_dataloader().dataset) == 4  # 24 clips split 5:1 over clips
    with pytest.raises(ValueError, match="no test split"):
        dm.test_dataloader()
    with pytest.raises(ValueError, match="split_by must be one of"):
        _datamodule(video_folder, split_by="frames")


def test_synthetic_videos_are_written_under_the_folder_lock(tmp_path, monkeypatch):
    """Parallel seeds prepare the same folder: the writer holds the lock (another process's
    non-blocking attempt fails meanwhile), and a prepared folder is not written again."""
    import fcntl

    from vidinpaint.data import adapters

    held = []
    write = adapters.write_synthetic_videos

    def checked_write(root, *args):
        with open(root / ".synthetic.lock", "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        return write(root, *args)

    monkeypatch.setattr(adapters, "write_synthetic_videos", checked_write)
    adapter = SyntheticAdapter(num_videos=2, num_frames=4, frame_size=32, seed=1)
    adapter.prepare(tmp_path)
    adapter.prepare(tmp_path)
    assert held == [True]
    assert len(list(tmp_path.glob("video_*.mp4"))) == 2
