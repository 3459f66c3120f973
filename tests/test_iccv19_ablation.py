"""experiments/iccv19_ablation.py: the seeded summary, the 2-sigma orderings, the task list
and resuming an interrupted run (no fit runs here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ABLATION = Path(__file__).resolve().parents[1] / "experiments" / "iccv19_ablation.py"


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("iccv19_ablation", ABLATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(method: str, seed: int, psnr: float, ewarp: float, schedule: str = "paper_1k") -> dict:
    return {
        "schedule": schedule,
        "method": method,
        "clip": "a.mp4",
        "seed": seed,
        "psnr_hole": psnr,
        "ssim": 0.9,
        "ewarp": ewarp,
    }


def test_orderings_are_called_beyond_two_sigma_of_the_larger_spread(ablation):
    dip = [14.0, 15.0, 16.0]  # std 0.816
    vid = [16.0, 16.5, 17.0]  # std 0.408: gap 1.5 = 1.84 x 0.816, not ordered
    flow = [18.0, 18.1, 18.2]  # gap to vid 1.6 = 3.9 x 0.408: ordered
    rows = [row("dip", s, p, 3e-3) for s, p in zip((1, 2, 3), dip)]
    rows += [row("dip_vid", s, p, 2e-3) for s, p in zip((1, 2, 3), vid)]
    rows += [row("dip_vid_flow", s, p, 2e-3 + s * 1e-4) for s, p in zip((1, 2, 3), flow)]
    rows += [row("dip_vid_flow", s, p + 0.1, 2e-3, "fill") for s, p in zip((1, 2, 3), flow)]
    rows.append(row("propagate", 1, 30.0, 1e-3, "classic"))
    record = {"seeds": [1, 2, 3], "rows": rows}
    table = ablation.entries(record)
    assert table[("a.mp4", "dip")]["psnr_hole"] == dip
    assert ("a.mp4", "dip_vid_flow [fill]") in table  # a variant keeps its schedule's name
    gap, std = ablation.ordered(dip, vid)
    assert gap == pytest.approx(np.mean(vid) - np.mean(dip))
    assert std == pytest.approx(max(np.std(dip), np.std(vid)))
    lines = {
        line.split(" | ")[1]: line
        for line in ablation.seeded_summary(record)
        if " -> " in line and line.startswith("| a.mp4")
    }
    assert set(lines) == {
        "dip -> dip_vid",
        "dip_vid -> dip_vid_flow",
        "dip_vid_flow -> propagate",
        "dip_vid_flow -> dip_vid_flow [fill]",
    }
    cells = lambda pair: [c.strip() for c in lines[pair].split("|")[1:-1]]  # noqa: E731
    assert cells("dip -> dip_vid")[2:5] == ["+1.50", "1.8", "no"]
    assert cells("dip_vid -> dip_vid_flow")[2:5] == ["+1.60", "3.9", "yes"]
    # ewarp: flow's is higher (worse) than vid's by 2e-4 = 2.4 x its std 8.2e-5
    assert cells("dip_vid -> dip_vid_flow")[5:8] == [
        "+0.20",
        "2.4",
        "no: the first, beyond 2 sigma",
    ]
    summary = "\n".join(ablation.seeded_summary(record))
    assert f"| a.mp4 | dip | 3 | 15.00 ± {np.std(dip):.2f} |" in summary


def test_tasks_run_the_baselines_once_and_a_schedule_on_its_clips_only(ablation):
    bench = {
        "schedules": ["classic", "short"],
        "variants": {"classic": [], "short": ["schedule=tiny"]},
        "methods": {"classic": ["telea"], "short": ["dip_vid"]},
        "schedule_clips": {"short": ["b.mp4"]},
        "method_overrides": {"dip_vid": ["model.fit.epoch_mode=sampled"]},
        "clips": [{"clip": "a.mp4", "mask": "box_moving"}, {"clip": "b.mp4", "mask": "box_moving"}],
        "curve_clip": None,
        "curve_every": 0,
    }
    tasks = ablation.fit_tasks([], bench, [1, 2])
    keys = [ablation.task_key(t) for t in tasks]
    assert keys == [
        ("classic", "telea", "a.mp4", 1),
        ("classic", "telea", "b.mp4", 1),
        ("short", "dip_vid", "b.mp4", 1),
        ("short", "dip_vid", "b.mp4", 2),
    ]
    assert tasks[2]["config"]["model"]["fit"]["epoch_mode"] == "sampled"
    assert [t["config"]["seed"] for t in tasks[2:]] == [1, 2]


def test_a_rerun_of_the_same_command_keeps_the_fits_written(ablation, tmp_path):
    tasks = [{"schedule": "s", "method": m, "clip": {"clip": "a.mp4"}, "seed": 1} for m in "xyz"]
    record = {"command": "c", "benchmark": {}, "resolution": [64, 128], "seeds": [1]}
    record["schedules"] = {"s": {}}
    results = tmp_path / "table"
    assert ablation.earlier_rows(results, dict(record), tasks) == []
    written = [{"schedule": "s", "method": m, "clip": "a.mp4", "seed": 1} for m in "zx"]
    results.with_suffix(".json").write_text(
        json.dumps({**record, "rows": written, "wall_seconds": 12.0})
    )
    resumed = dict(record)
    assert ablation.earlier_rows(results, resumed, tasks) == [(2, written[0]), (0, written[1])]
    assert resumed["wall_seconds"] == 12.0
    other = {**record, "command": "c seeds=[2]"}
    assert ablation.earlier_rows(results, other, tasks) == []
