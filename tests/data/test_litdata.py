"""LitData: prepared clips written as chunks and streamed back, per rank and per worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from data_fixtures import make_video
from litdata import StreamingDataLoader
from litdata.streaming import dataset as litdata_dataset
from litdata.utilities.env import _DistributedEnv

from helpers import compose_config
from vidinpaint.data.dataset import ClipDataset
from vidinpaint.data.litdata import ClipStream, LitDataModule, write_litdata
from vidinpaint.train import train

# six 16-frame videos, 4-frame clips at 32x32: 20 training clips (5 videos), 4 validation clips
CLIPS = ["data.clip_len=4", "data.size=[32,32]", "data.num_workers=0"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    for i in range(6):
        make_video(root / f"v{i}.mp4", 16, 32, 32, seed=i)
    return root


@pytest.fixture(scope="module")
def prepared(videos, tmp_path_factory):
    """(ClipDataModule set up on the videos, LitData folder of its clips, 2 clips a chunk)."""
    cfg = compose_config("prepare", ["data=folder", f"data.root={videos}", *CLIPS])
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    output = tmp_path_factory.mktemp("litdata")
    counts = write_litdata(datamodule.index, str(output), chunk_clips=2)
    assert counts == {"train": 20, "val": 4}
    return datamodule, output


def clip_keys(items) -> list[tuple[str, int]]:
    return [(path, int(start)) for item in items for path, start in zip(*keys_of(item))]


def keys_of(item) -> tuple[list[str], list[int]]:
    """(paths, starts) of an item or a batch."""
    if isinstance(item["path"], str):
        return [item["path"]], [item["start"]]
    return item["path"], item["start"].tolist()


def test_stream_items_are_the_clip_dataset_items(prepared):
    datamodule, output = prepared
    mask = datamodule.mask
    # validation: same clips, same frames, same fixed holes as the map-style dataset
    reference = datamodule.datasets["val"]
    by_key = {(reference[i]["path"], reference[i]["start"]): reference[i] for i in range(4)}
    stream = ClipStream(str(output / "val"), mask, mask_seed=datamodule.val_mask_seed)
    items = list(stream)
    assert sorted(clip_keys(items)) == sorted(by_key)
    for item in items:
        expected = by_key[(item["path"], item["start"])]
        assert item["video"].dtype == item["mask"].dtype == torch.uint8
        assert item["video"].shape == (4, 3, 32, 32) and item["mask"].shape == (4, 1, 32, 32)
        assert torch.equal(item["video"], expected["video"])
        assert torch.equal(item["mask"], expected["mask"])
    # training: every clip once per epoch, frames as decoded from the source video
    train_ref = ClipDataset(datamodule.index, datamodule.index.split_clips("train"), mask)
    frames = {(d["path"], d["start"]): d["video"] for d in (train_ref[i] for i in range(20))}
    train_items = list(ClipStream(str(output / "train"), mask, shuffle=True))
    assert sorted(clip_keys(train_items)) == sorted(frames)
    for item in train_items:
        assert torch.equal(item["video"], frames[(item["path"], item["start"])])


def test_ranks_and_workers_read_disjoint_clips(prepared, monkeypatch):
    datamodule, output = prepared
    seen = []
    for rank in (0, 1):
        env = _DistributedEnv(world_size=2, global_rank=rank, num_nodes=1)
        detect = classmethod(lambda cls, env=env: env)
        monkeypatch.setattr(litdata_dataset._DistributedEnv, "detect", detect)
        stream = ClipStream(str(output / "train"), datamodule.mask, shuffle=True)
        assert stream.distributed_env.global_rank == rank
        # two loader workers of this rank: each its own chunks, no clip twice
        loader = StreamingDataLoader(stream, batch_size=2, num_workers=2)
        keys = clip_keys(loader)
        assert len(keys) == len(set(keys)) == 10
        seen.append(set(keys))
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 20


def test_existing_chunks_are_never_replaced(prepared):
    datamodule, output = prepared
    index_json = (output / "train" / "index.json").read_bytes()
    with pytest.raises(FileExistsError, match="already holds LitData chunks"):
        write_litdata(datamodule.index, str(output), chunk_clips=2)
    assert (output / "train" / "index.json").read_bytes() == index_json


def test_datamodule_checks_the_clip_shape(prepared):
    _, output = prepared
    datamodule = LitDataModule("folder", str(output), "box_static", clip_len=4, size=[64, 64])
    with pytest.raises(ValueError, match=r"data.clip_len and data.size ask for \(4, 3, 64, 64\)"):
        datamodule.setup("fit")
    with pytest.raises(FileNotFoundError, match="no LitData train split"):
        LitDataModule("folder", str(output / "nothing"), "box_static").setup("fit")


@pytest.mark.slow
def test_prepare_litdata_then_train_and_resume_on_the_stream(videos, tmp_path):
    output = tmp_path / "chunks"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidinpaint.prepare",
            "data=folder",
            f"data.root={videos}",
            f"data.cache_dir={tmp_path / 'cache'}",
            *CLIPS,
            "prepare.format=litdata",
            f"prepare.output_dir={output}",
            "prepare.chunk_clips=2",
            f"hydra.run.dir={tmp_path / 'prepare'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"train": 20, "val": 4}

    def fit(run: str, *overrides: str) -> tuple[dict, list]:
        """Trains on the stream into tmp_path/run: (result, clips of its training batches)."""
        stream = ["data=litdata", f"data.input_dir={output}", "data.batch_size=2", *CLIPS]
        recorder = ["+callbacks.clips._target_=helpers.ClipRecorder"]
        recorder += [f"+callbacks.clips.dirpath={tmp_path / run}"]
        cfg = compose_config(
            "train",
            ["model=cn3d", "schedule=tiny", "logger=csv", *stream, *recorder, *overrides],
            output_dir=tmp_path / run,
        )
        result = train(cfg)
        return result, json.loads((tmp_path / run / "clips_rank0.json").read_text())

    result, whole = fit("whole", "num_samples=1")
    assert result["global_step"] == 4 and result["dataset"] == "litdata"
    assert 0 <= result["val/l1_hole"] <= 255
    assert list((tmp_path / "whole" / "samples").glob("*.mp4"))
    # interrupted after 2 steps and resumed: the loader's position travels in the checkpoint,
    # so the resumed run trains on the clips the uninterrupted one saw next
    _, first = fit("part", "trainer.max_steps=2", "num_samples=0", "validate=false")
    result, second = fit("part", "ckpt_path=last", "num_samples=0", "validate=false")
    assert result["global_step"] == 4
    assert len(whole) == 8 and first + second == whole
