"""Per-clip wandb tables (dashboards.py): read back from the offline run's files."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import wandb

from helpers import TINY, compose_config
from test_train import train, train_cfg
from vidinpaint import dashboards
from vidinpaint.eval import evaluate
from vidinpaint.models.completion import CompletionSystem

ABLATION = Path(__file__).resolve().parents[1] / "experiments" / "iccv19_ablation.py"


@pytest.fixture
def offline(monkeypatch):
    wandb.finish()  # a run another test left open would receive this test's logs
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield
    wandb.finish()


def logged_table(root: Path, key: str) -> dict:
    """The table ``key`` of the one offline run under ``root`` (files/media/table/*.table.json)."""
    (run_dir,) = root.glob("**/wandb/offline-run-*")
    (path,) = run_dir.glob(f"files/media/table/{key}_*.table.json")
    return json.loads(path.read_text())


def logged_value(root: Path, key: str) -> float:
    """A logged scalar of the one offline run under ``root``, read from its .wandb file (a
    protobuf HistoryItem: the key in field 2, its JSON value in field 16), once written."""
    (path,) = root.glob("**/wandb/offline-run-*/*.wandb")
    item = re.compile(re.escape(bytes([0x12, len(key)]) + key.encode()) + rb"\x82\x01(.)", re.S)
    for _ in range(60):
        data = path.read_bytes()
        if found := item.search(data):
            return json.loads(data[found.end() : found.end() + found.group(1)[0]])
        time.sleep(0.5)
    raise AssertionError(f"{key} not in {path}")


def test_thumbnail_is_the_middle_frame_with_grey_holes():
    video = torch.rand(5, 3, 6, 8)
    mask = torch.zeros(5, 1, 6, 8)
    mask[2, :, 1:3, 2:5] = 1
    thumb = dashboards.thumbnail(video, mask, 1 - video)
    assert thumb.shape == (6, 16, 3) and thumb.dtype == np.uint8
    expected = video[2].clone()
    expected[:, 1:3, 2:5] = dashboards.HOLE_GREY
    panel = torch.cat([expected, 1 - video[2]], dim=-1).permute(1, 2, 0)
    assert np.array_equal(thumb, (panel * 255).round().to(torch.uint8).numpy())


def test_table_read_back_from_the_offline_run(tmp_path, offline):
    thumb = np.zeros((4, 8, 3), np.uint8)
    dip = {"psnr_hole": 18.0, "ssim": 0.8, "ewarp": 2e-3}
    rows = [
        dashboards.clip_row("a.mp4@0", "telea", {"psnr_hole": 21.5, "ssim": 0.9}, 1.25, thumb),
        dashboards.clip_row("b.mp4@4", "dip", dip, 9, thumb),
    ]
    run = wandb.init(project="vidinpaint", dir=str(tmp_path), mode="offline")
    run.log({"val/clips": dashboards.clip_table(rows)})
    run.finish()
    table = logged_table(tmp_path, "val/clips")
    assert table["columns"] == list(dashboards.CLIP_COLUMNS)
    first, second = table["data"]
    assert first[:4] == ["a.mp4@0", "telea", 21.5, 0.9] and first[5] == 1.25
    assert math.isnan(first[4])  # no ewarp: NaN, not a made-up number
    assert first[6] == second[6] == "Image"  # the run file names the type; pixels: the artifact
    assert second[:6] == ["b.mp4@4", "dip", 18.0, 0.8, 2e-3, 9.0]


def test_eval_logs_one_row_per_clip_next_to_the_scalars(tmp_path, data_dir, offline):
    cfg = compose_config(
        "eval",
        ["model=telea", "logger=wandb", f"paths.data_dir={data_dir}", *TINY],
        output_dir=tmp_path / "eval",
    )
    scores = evaluate(cfg)
    wandb.finish()
    table = logged_table(tmp_path / "eval", "val/clips")
    assert table["columns"] == list(dashboards.CLIP_COLUMNS)
    assert len(table["data"]) >= 1 and {row[1] for row in table["data"]} == {"telea"}
    assert all("@" in row[0] and row[2] > 0 and 0 < row[3] <= 1 for row in table["data"])
    # the table's SSIMs average to the run's val/ssim (the same clips, scored once)
    mean_ssim = sum(row[3] for row in table["data"]) / len(table["data"])
    assert mean_ssim == pytest.approx(scores["val/ssim"], rel=1e-6)


def test_eval_of_a_checkpoint_runs_each_clip_once_for_the_table_and_the_scalars(
    tmp_path, data_dir, offline, monkeypatch
):
    train(train_cfg(tmp_path, data_dir, "model=cn2d", "num_samples=0"))
    forward = CompletionSystem.forward
    calls = []

    def counted(self, *args, **kwargs):
        calls.append(args[0].shape[0])
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(CompletionSystem, "forward", counted)
    overrides = [f"ckpt={tmp_path}/run/checkpoints/last.ckpt", "logger=wandb", "num_samples=0"]
    cfg = compose_config(
        "eval", [*overrides, f"paths.data_dir={data_dir}", *TINY], output_dir=tmp_path / "eval"
    )
    scores = evaluate(cfg)
    wandb.finish()
    table = logged_table(tmp_path / "eval", "val/clips")
    rows = table["data"]
    # every clip went through the network once: the rows come from the validation steps
    assert len(rows) == sum(calls) >= 2
    assert {row[1] for row in rows} == {"cn2d"} and all("@" in row[0] for row in rows)
    columns = list(dashboards.CLIP_COLUMNS)
    for name in ("ssim", "ewarp"):
        mean = sum(row[columns.index(name)] for row in rows) / len(rows)
        assert mean == pytest.approx(scores[f"val/{name}"], rel=1e-5)


def test_ablation_dashboard_has_a_table_per_schedule_and_method_means(tmp_path, offline):
    spec = importlib.util.spec_from_file_location("iccv19_ablation", ABLATION)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    scores = {"ssim": 0.9, "ewarp": 1e-3, "psnr_known": 30.0, "iterations": 4}
    rows = [
        {"schedule": "fast", "method": m, "clip": c, "psnr_hole": p, "seconds": 2.0, **scores}
        for m, c, p in [("dip", "a.mp4", 14.0), ("dip", "b.mp4", 16.0), ("telea", "a.mp4", 20)]
    ]
    record = {"command": "python experiments/iccv19_ablation.py", "benchmark": {}}
    record.update(schedules={"fast": {}}, rows=rows)
    thumbs = [np.full((4, 8, 3), i, np.uint8) for i in range(3)]
    ablation.log_dashboard(record, thumbs, tmp_path)
    table = logged_table(tmp_path, "fast/clips")
    assert [row[:3] for row in table["data"]] == [
        ["a.mp4", "dip", 14.0],
        ["b.mp4", "dip", 16.0],
        ["a.mp4", "telea", 20.0],
    ]
    assert logged_value(tmp_path, "fast/dip/psnr_hole") == pytest.approx(15.0)  # 2-clip mean
    assert logged_value(tmp_path, "fast/telea/psnr_hole") == pytest.approx(20.0)


def test_each_training_job_of_a_process_gets_its_own_run(tmp_path, data_dir, offline):
    """A Hydra multirun's jobs share one process: each must log into its own wandb run."""
    from vidinpaint.train import train

    for seed in (1, 2):
        overrides = ["model=cn2d", "logger=wandb", "schedule=tiny", f"seed={seed}"]
        overrides += [f"paths.data_dir={data_dir}", "num_samples=0", *TINY]
        train(compose_config("train", overrides, output_dir=tmp_path / f"seed_{seed}"))
    runs = [list((tmp_path / f"seed_{seed}").glob("**/wandb/offline-run-*")) for seed in (1, 2)]
    assert [len(found) for found in runs] == [1, 1]
    assert wandb.run is None
