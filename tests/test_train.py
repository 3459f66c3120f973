"""vidinpaint-train / vidinpaint-eval end to end on tiny synthetic clips."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch import Callback

from helpers import TINY, compose_config, make_video, train_command
from vidinpaint import runs
from vidinpaint.callbacks import LastValidationStep
from vidinpaint.eval import evaluate
from vidinpaint.train import train
from vidinpaint.video_io import read_video


def train_cfg(tmp_path, data_dir, *overrides, run="run"):
    return compose_config(
        "train",
        [
            "model=cn3d",
            "schedule=tiny",
            "logger=csv",
            f"paths.data_dir={data_dir}",
            *TINY,
            *overrides,
        ],
        output_dir=tmp_path / run,
    )


def test_train_writes_metrics_checkpoint_and_samples(tmp_path, data_dir):
    result = train(train_cfg(tmp_path, data_dir, "num_samples=1"))
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    for key in (
        "val/l1_hole",
        "val/psnr",
        "val/ssim",
        "val/ewarp",
        "global_step",
        "method",
        "dataset",
        "git_sha",
    ):
        assert key in metrics, key
    assert metrics["global_step"] == 4 == result["global_step"]
    assert metrics["method"] == "cn3d" and metrics["dataset"] == "synthetic"
    assert 0 <= metrics["val/l1_hole"] <= 255 and 0 <= metrics["val/ssim"] <= 1
    assert (run / "checkpoints" / "last.ckpt").is_file()
    samples = sorted(p.name for p in (run / "samples").glob("*.mp4"))
    assert samples == ["00_input-3dcn-target.mp4", "00_input-3dcn-target_diff.mp4"]
    frames, _ = read_video(run / "samples" / samples[0])
    assert frames.shape == (4, 32, 3 * 32, 3)  # T frames, input | 3DCN | target
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4
    # the training set's mean pixel travels with the checkpoint
    assert not torch.allclose(ckpt["state_dict"]["mean_pixel"], torch.tensor(0.5))


def test_resume_continues_at_the_step_reached(tmp_path, data_dir):
    train(train_cfg(tmp_path, data_dir, "trainer.max_steps=2", "num_samples=0"))
    first = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    assert first["global_step"] == 2
    result = train(
        train_cfg(tmp_path, data_dir, "trainer.max_steps=4", "ckpt_path=last", "num_samples=0")
    )
    assert result["global_step"] == 4
    assert json.loads((tmp_path / "run/metrics.json").read_text())["global_step"] == 4


def test_last_checkpoint_holds_the_last_step_whatever_checkpoint_every(tmp_path, data_dir):
    """5 steps, a checkpoint every 2: last.ckpt is step 5, not the periodic step 4."""
    overrides = ("schedule.max_steps=5", "schedule.checkpoint_every=2", "num_samples=0")
    result = train(train_cfg(tmp_path, data_dir, *overrides))
    ckpt = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 5 == result["global_step"]


@pytest.mark.parametrize("max_steps, validations_after", [(4, 0), (5, 1)])
def test_validation_after_fit_only_when_the_last_step_was_not_validated(
    tmp_path, data_dir, monkeypatch, max_steps, validations_after
):
    """Validation every 2 steps: a 4-step fit validated its last step (its scores are the run's),
    a 5-step fit did not (step 4), so its weights are validated once more."""
    calls = []
    original = pl.Trainer.validate
    monkeypatch.setattr(
        pl.Trainer, "validate", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    cfg = train_cfg(tmp_path, data_dir, f"schedule.max_steps={max_steps}", "num_samples=0")
    result = train(cfg)
    assert len(calls) == validations_after
    assert result["global_step"] == max_steps and 0 <= result["val/l1_hole"] <= 255


def test_the_fits_last_validation_scores_as_a_validation_after_it(tmp_path, data_dir, monkeypatch):
    """Skipping the validation after a fit loses nothing: the same seeded run, forced to
    validate again (the step of the last validation forgotten), scores the same."""
    skipped = train(train_cfg(tmp_path, data_dir, "num_samples=0", run="skipped"))
    monkeypatch.setattr(LastValidationStep, "on_validation_end", lambda self, trainer, module: None)
    again = train(train_cfg(tmp_path, data_dir, "num_samples=0", run="again"))
    for key in ("val/l1_hole", "val/psnr", "val/ssim", "val/loss"):
        assert skipped[key] == pytest.approx(again[key], rel=1e-4), key


def test_eval_scores_a_checkpoint(tmp_path, data_dir):
    train(train_cfg(tmp_path, data_dir, "model=combcn", "num_samples=0"))
    cfg = compose_config(
        "eval",
        [
            f"ckpt={tmp_path}/run/checkpoints/last.ckpt",
            f"paths.data_dir={data_dir}",
            "num_samples=1",
            *TINY,
        ],
        output_dir=tmp_path / "eval",
    )
    metrics = evaluate(cfg)
    assert {"val/l1_hole", "val/l1_hole_3dcn", "val/psnr", "val/ssim"} <= set(metrics)
    saved = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert saved["method"] == "combcn" and saved["val/l1_hole"] == metrics["val/l1_hole"]
    assert list((tmp_path / "eval/samples").glob("*.mp4"))


def test_eval_split_all_scores_every_clip_once_with_the_same_masks(tmp_path, data_dir, monkeypatch):
    """Two checkpoints scored on a folder of videos they never saw: every clip of the folder
    once, with identical holes, filled with each checkpoint's own training mean pixel."""
    from vidinpaint.data.dataset import ClipDataset

    folder = tmp_path / "my_videos"
    for i, frames in enumerate((12, 8, 9)):  # 3 + 2 + 2 clips of 4 frames
        make_video(folder / f"v{i}.mp4", frames, 40, 40, seed=i)
    read = []
    original = ClipDataset.__getitem__

    def recording(self, position):
        item = original(self, position)
        read.append((item["path"], item["start"], item["mask"].clone(), item["video"]))
        return item

    monkeypatch.setattr(ClipDataset, "__getitem__", recording)
    seen, scores = {}, {}
    for model in ("cn3d", "cn2d"):
        train(train_cfg(tmp_path, data_dir, f"model={model}", "num_samples=0", run=model))
        read.clear()
        cfg = compose_config(
            "eval",
            [
                f"ckpt={tmp_path}/{model}/checkpoints/last.ckpt",
                "data=folder",
                f"data.root={folder}",
                "split=all",
                "num_samples=0",
                "schedule.limit_val_batches=1",  # split=all scores every clip all the same
                *TINY,
                "data.batch_size=1",
            ],
            output_dir=tmp_path / f"eval_{model}",
        )
        scores[model] = evaluate(cfg)
        seen[model] = list(read)
    clips = [(p, s) for p, s, _, _ in seen["cn3d"]]
    assert len(clips) == len(set(clips)) == 7
    assert {Path(p).name for p, _ in clips} == {"v0.mp4", "v1.mp4", "v2.mp4"}
    assert clips == [(p, s) for p, s, _, _ in seen["cn2d"]]
    for (_, _, a, _), (_, _, b, _) in zip(seen["cn3d"], seen["cn2d"], strict=True):
        assert torch.equal(a, b) and a.any()
    saved = json.loads((tmp_path / "eval_cn2d/metrics.json").read_text())
    assert saved["split"] == "all" and saved["all/l1_hole"] == scores["cn2d"]["all/l1_hole"]
    assert not any(key.startswith("val/") for key in saved)
    assert scores["cn3d"]["all/l1_hole"] != scores["cn2d"]["all/l1_hole"]
    # the holes are filled with the checkpoint's training mean pixel (the synthetic data's, not
    # the folder's): the mean-pixel fill column, computed clip by clip here
    ckpt = torch.load(tmp_path / "cn2d/checkpoints/last.ckpt", weights_only=False)
    mean = ckpt["state_dict"]["mean_pixel"].view(3, 1, 1)
    per_clip = []
    for _, _, mask, video in seen["cn2d"]:
        hole = mask.float()
        error = (video.float() / 255 - mean).abs() * hole
        per_clip.append(255 * error.sum() / (3 * hole.sum()))
    expected = float(torch.stack(per_clip).mean())
    assert scores["cn2d"]["all/l1_hole_fill"] == pytest.approx(expected, rel=1e-4)


def test_eval_without_checkpoint_or_method_is_an_error(tmp_path, data_dir):
    cfg = compose_config("eval", [f"paths.data_dir={data_dir}", *TINY], output_dir=tmp_path)
    with pytest.raises(ValueError, match="ckpt=PATH"):
        evaluate(cfg)


@pytest.mark.slow
def test_ddp_sim_two_processes_write_one_checkpoint(tmp_path, data_dir):
    run = tmp_path / "ddp"
    cmd = train_command(run, data_dir, "trainer=ddp_sim")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}  # helpers.ClipRecorder
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 4
    # DistributedSampler: each rank trains on its own clips, 4 steps x batch 2
    seen = [json.loads((run / f"clips_rank{r}.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 8
    assert seen[0] != seen[1]
    assert not {tuple(c) for c in seen[0][:4]} & {tuple(c) for c in seen[1][:4]}


class StopAt(Callback):
    """Interrupts fitting after ``step`` optimiser steps, as Ctrl-C would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def test_interrupted_run_saves_last_and_resumes(tmp_path, data_dir, monkeypatch):
    cfg = train_cfg(
        tmp_path, data_dir, "trainer.max_steps=6", "schedule.checkpoint_every=100", "num_samples=0"
    )
    real = runs.callbacks_and_loggers
    monkeypatch.setattr(
        runs, "callbacks_and_loggers", lambda c: (real(c)[0] + [StopAt(3)], real(c)[1])
    )
    with pytest.raises(SystemExit):  # Lightning's graceful stop after Ctrl-C
        train(cfg)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ckpt = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 3
    monkeypatch.setattr(runs, "callbacks_and_loggers", real)
    result = train(
        train_cfg(tmp_path, data_dir, "trainer.max_steps=6", "ckpt_path=last", "num_samples=0")
    )
    assert result["global_step"] == 6


def test_wandb_offline_run_records_metrics_and_samples(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(train_cfg(tmp_path, data_dir, "logger=wandb", "num_samples=1"))
    (run_dir,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    videos = sorted(p.name for p in run_dir.glob("files/media/videos/*.mp4"))
    assert len(videos) == 2, videos
    assert list(run_dir.glob("*.wandb"))
