"""The Optuna search conf/sweep/il_cpu_search.yaml end to end on the CPU (2 trials), and its
objective, the hole PSNR of vidinpaint-inpaint's output against gt=."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from vidinpaint.evaluation import hole_psnr_of_video
from vidinpaint.video_write import write_video

REPO = Path(__file__).resolve().parents[1]


def moving_pattern(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3): smooth stripes panning by 2 pixels a frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = [
        np.stack([128 + 100 * np.sin((x - 2 * t) / 8), 128 + 100 * np.cos(y / 6), 128 + 0 * x], -1)
        for t in range(num_frames)
    ]
    return np.stack(frames).round().astype(np.uint8)


@pytest.mark.slow
def test_optuna_search_runs_two_trials_and_reports_the_best(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_pattern(6, 64, 128), 12.0, lossless=True)
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        "-m",
        "vidinpaint.inpaint",
        "-m",
        "sweep=il_cpu_search",
        f"input={clip}",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert len(trials) == 2 and all(t["method"] == "dip_vid_flow" for t in trials)
    values = [t["inpaint/psnr_hole"] for t in trials]
    assert all(5 < v < 60 for v in values), values
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(values))
    params = best["best_params"]
    assert set(params) == {
        "model.fit.lr",
        "schedule.il_iters_per_batch",
        "schedule.il_batches_per_epoch",
    }
    assert 1e-3 <= params["model.fit.lr"] <= 3e-2
    assert params["schedule.il_iters_per_batch"] in (2, 4, 6, 8, 10)
    assert params["schedule.il_batches_per_epoch"] in (2, 4, 6, 8, 10)


def test_hole_psnr_of_written_video_matches_numpy(tmp_path):
    truth = moving_pattern(4, 16, 24)
    output = truth.copy()
    output[:, 4:10, 6:14] = 90  # a flat fill in the hole
    holes = torch.zeros(4, 1, 16, 24, dtype=torch.bool)
    holes[:, :, 4:10, 6:14] = True
    out = write_video(tmp_path / "out.mp4", output, 12.0, lossless=True)
    gt = write_video(tmp_path / "gt.mp4", truth, 12.0, lossless=True)
    diff = (output[:, 4:10, 6:14].astype(np.float64) - truth[:, 4:10, 6:14]) / 255
    expected = 10 * np.log10(1 / np.mean(diff**2))
    assert hole_psnr_of_video(out, gt, holes) == pytest.approx(expected, abs=1e-3)
    with pytest.raises(ValueError, match="ground truth"):
        hole_psnr_of_video(out, write_video(tmp_path / "short.mp4", truth[:3], 12.0), holes)
