"""Table 2 layouts from run metrics, and the two-stage chain end to end (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import make_video
from vidinpaint import reports

ROOT = Path(__file__).resolve().parents[1]


def metrics(l1, l1_3dcn=None, dataset="vw300", seed=None):
    record = {"val/l1_hole": l1, "val/psnr": 30.0, "val/ssim": 0.9, "dataset": dataset}
    if l1_3dcn is not None:  # a joint run: its 3DCN at H/r and up-sampled
        record["val/l1_hole_3dcn_low"] = l1_3dcn
        record["val/l1_hole_3dcn"] = l1_3dcn + 3.0
        record["val/psnr_3dcn"], record["val/ssim_3dcn"] = 25.0, 0.8
    if seed is not None:
        record["seed"] = seed
    return record


def test_run_key_splits_recipe_names():
    assert reports.run_key("aaai19/vw300_v1_combcn") == ("vw300_v1", "combcn")
    assert reports.run_key("seed_3/aaai19/caltech_cn3d") == ("caltech", "cn3d")
    assert reports.run_key("cn2d") == ("", "cn2d")
    assert reports.run_seed("seed_3/cn2d", {}) == 3
    assert reports.run_seed("seed_3/cn2d", {"seed": 7}) == 7
    assert reports.run_seed("cn2d", {}) is None


def test_seed_lists_reach_the_sweep_as_one_value():
    assert reports.quote_seeds("seeds=1,2,3") == 'seeds="1,2,3"'
    assert reports.quote_seeds("seeds=4") == "seeds=4"
    assert reports.quote_seeds('seeds="1,2"') == 'seeds="1,2"'
    assert reports.quote_seeds("model=combcn,cn2d") == "model=combcn,cn2d"


def test_seeds_split_into_round_robin_groups_for_parallel_jobs():
    assert reports.seed_groups("quickstart", [], 1) == [None]  # the sweep's own list
    assert reports.seed_groups("quickstart", ["seeds=4,5"], 1) == ["4,5"]
    assert reports.seed_groups("quickstart", [], 2) == ["1,3", "2"]  # conf/sweep: 1,2,3
    assert reports.seed_groups("quickstart", [], 3) == ["1", "2", "3"]
    assert reports.seed_groups("quickstart", ['seeds="1,2,3,4"'], 8) == ["1", "2", "3", "4"]


def test_parallel_jobs_run_each_stage_as_one_process_per_seed_group(tmp_path, monkeypatch, caplog):
    """Every group of a stage runs at once (all started before any is waited for), the
    joint stage only after the pretrain stage, each process gets a share of the cores and
    writes to its own log file, and a failing one's log ends up in the error output."""
    events = []

    class Process:
        def __init__(self, cmd, env, stdout, stderr):
            self.stage = next(a for a in cmd if a.startswith("stage="))
            seeds = [a for a in cmd if a.startswith("seeds=")]
            events.append(("start", self.stage, seeds, env["OMP_NUM_THREADS"]))
            stdout.write(f"output of {self.stage} {seeds}\n")
            assert stderr == subprocess.STDOUT

        def wait(self):
            events.append(("wait", self.stage))
            return 0

    monkeypatch.setattr(reports.subprocess, "Popen", Process)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(reports.os, "cpu_count", lambda: 4)
    reports.run_stages("quickstart", ["seeds=1,2,3", "logger=csv"], tmp_path, jobs=2)
    threads = "2"
    assert events == [
        ("start", "stage=pretrain", ['seeds="1,3"'], threads),
        ("start", "stage=pretrain", ["seeds=2"], threads),
        ("wait", "stage=pretrain"),
        ("wait", "stage=pretrain"),
        ("start", "stage=joint", ['seeds="1,3"'], threads),
        ("start", "stage=joint", ["seeds=2"], threads),
        ("wait", "stage=joint"),
        ("wait", "stage=joint"),
    ]
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == [
        f"{stage}_seeds_{g}.log" for stage in ("joint", "pretrain") for g in ("1-3", "2")
    ]
    assert (
        tmp_path / "logs/joint_seeds_2.log"
    ).read_text() == "output of stage=joint ['seeds=2']\n"
    failing = type("Failing", (Process,), {"wait": lambda self: 1})
    monkeypatch.setattr(reports.subprocess, "Popen", failing)
    with pytest.raises(subprocess.CalledProcessError):
        reports.run_stages("quickstart", ["logger=csv"], tmp_path, jobs=3)
    assert "output of stage=pretrain ['seeds=1']" in caplog.text


def test_aggregate_is_mean_and_sample_std():
    stats = reports.aggregate([1.0, 2.0, 6.0])
    assert stats["mean"] == 3.0
    assert stats["std"] == pytest.approx(((4 + 1 + 9) / 2) ** 0.5)
    assert reports.aggregate([5.0])["std"] == 0.0


def test_table2_markdown_takes_3dcn_from_the_joint_run_and_paper_only_for_paper_data():
    runs = {
        "aaai19/faceforensics_cn3d": metrics(99.0, 98.0, dataset="faceforensics"),
        "aaai19/faceforensics_cn2d": metrics(7.5, dataset="faceforensics"),
        "aaai19/faceforensics_combcn": metrics(6.5, 7.9, dataset="faceforensics"),
        "aaai19/synthetic_cn2d": metrics(20.0, dataset="synthetic"),
        "aaai19/synthetic_combcn": metrics(15.0, 25.0, dataset="synthetic"),
    }
    lines = reports.table2_markdown(runs).splitlines()
    assert lines[2] == "| faceforensics | 7.90 | 7.18 | 10.90 | 7.50 | 6.77 | 6.50 | 6.27 |"
    smoke = lines.index("Smoke test (not the paper's data; no paper column):")
    assert lines[smoke + 2] == "| dataset | 3DCN | 3DCN up | 2DCN | CombCN |"
    assert lines[smoke + 4] == "| synthetic | 25.00 | 28.00 | 20.00 | 15.00 |"


def _ablation_runs(dataset, seeds=(1,)):
    runs = {}
    for seed in seeds:
        for i, c in enumerate(["", "v1_", "v2_", "t1_", "t2_"]):
            runs[f"seed_{seed}/aaai19/vw300_{c}combcn"] = metrics(
                5.0 + i + seed, 6.0 + i + seed, dataset=dataset, seed=seed
            )
        runs[f"seed_{seed}/aaai19/vw300_cn3d"] = metrics(99.0, 98.0, dataset, seed)
    return runs


def test_ablation_markdown_reads_3dcn_and_combcn_of_each_column():
    lines = reports.ablation_markdown(_ablation_runs("vw300")).splitlines()
    # columns: V-1, V-2, T-1, T-2, full, each "ours | paper"
    assert lines[2] == (
        "| 3DCN | 8.00 | 9.51 | 9.00 | 11.56 | 10.00 | 6.30 | 11.00 | 9.28 | 7.00 | 4.45 |"
    )
    assert lines[3] == (
        "| CombCN | 7.00 | 6.39 | 8.00 | 8.13 | 9.00 | 5.18 | 10.00 | 6.31 | 6.00 | 4.20 |"
    )


def test_ablation_on_other_data_is_a_seeded_smoke_test_without_paper_numbers():
    text = reports.ablation_markdown(_ablation_runs("synthetic", seeds=(1, 2, 3)))
    assert text.startswith("Smoke test on synthetic (not 300VW; no paper column)")
    assert "4.45" not in text and "paper" not in text.split("\n", 1)[1]
    # full-method CombCN: 6, 7, 8 over seeds 1-3
    assert "| CombCN | 8.00 ± 1.00 (3) |" in text and "7.00 ± 1.00 (3) |" in text
    orderings = reports.ablation_orderings(_ablation_runs("synthetic", seeds=(1, 2, 3)))
    assert orderings[0] == (
        "- 3DCN full method < 3DCN T-1: holds (8.00 vs 11.00, difference +3.00, beyond 2x the "
        "larger std 1.00)"
    )
    assert any(line.startswith("- CombCN V-1 < 3DCN V-1: holds") for line in orderings)


def test_mini_table2_from_seeded_quickstart_runs():
    runs = {}
    for seed, shift in ((1, 0.0), (2, 1.0), (3, 2.0)):
        runs[f"seed_{seed}/cn3d"] = metrics(30.0 + shift, 26.0 + shift, dataset="synthetic")
        runs[f"seed_{seed}/combcn"] = metrics(10.0 + shift, 19.0 + shift, dataset="synthetic")
        runs[f"seed_{seed}/cn2d"] = metrics(14.0 - shift, dataset="synthetic")
        runs[f"seed_{seed}/cn2d"]["val/l1_hole_fill"] = 40.0 + shift
    table = reports.mini_table2(runs)
    assert table["seeds"] == 3
    assert table["combcn"]["l1_hole"] == 11.0 and table["combcn"]["l1_hole_std"] == 1.0
    assert table["combcn"]["l1_hole_seeds"] == [10.0, 11.0, 12.0]
    assert table["cn2d"]["l1_hole_seeds"] == [14.0, 13.0, 12.0]
    # the 3DCN row is the joint run's 3DCN at H/r; up-sampled and pre-trained values beside it
    assert table["cn3d"]["run"] == "combcn" and table["cn3d"]["l1_hole"] == 20.0
    assert table["cn3d"]["l1_hole_up"] == 23.0 and table["cn3d"]["l1_hole_pretrain"] == 27.0
    assert {"psnr", "psnr_std", "psnr_seeds", "ssim", "ssim_std"} <= set(table["cn2d"])
    assert table["fill"]["l1_hole"] == 41.0 and table["fill"]["l1_hole_seeds"] == [40.0, 41.0, 42.0]
    check = reports.ordering_check(table)
    assert check["ordering"] is True and check["gap"] == 2.0 and check["gap_in_std"] == 2.0
    del runs["seed_3/cn2d"]
    with pytest.raises(ValueError, match="different numbers of seeds"):
        reports.mini_table2(runs)


def test_mini_table2_reads_the_split_it_is_given():
    """``vidinpaint-eval split=all`` metrics (``all/...``) make the same table as ``val/...``."""
    runs = {}
    for seed in (1, 2):
        for name, record in (
            ("combcn", metrics(10.0 + seed, 20.0 + seed)),
            ("cn2d", {**metrics(12.0 + seed), "val/l1_hole_fill": 40.0}),
        ):
            runs[f"seed_{seed}/{name}"] = {k.replace("val/", "all/"): v for k, v in record.items()}
    table = reports.mini_table2(runs, split="all")
    assert table["combcn"]["l1_hole_seeds"] == [11.0, 12.0]
    assert table["cn3d"]["l1_hole_seeds"] == [21.0, 22.0]
    assert "l1_hole_pretrain" not in table["cn3d"]
    assert table["fill"]["l1_hole"] == 40.0 and table["seeds"] == 2
    with pytest.raises(ValueError, match="no val/l1_hole_3dcn_low in the combcn runs"):
        reports.mini_table2(runs)


def test_collect_runs_names_the_folder_when_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        reports.collect_runs(tmp_path)


def run_experiment(script: str, *args: str) -> None:
    """Runs ``experiments/<script>`` with tiny CPU settings and ``args`` (options, overrides)."""
    cmd = [sys.executable, str(ROOT / "experiments" / script), *args]
    cmd += ["schedule=tiny", "logger=csv", "num_samples=0", "data.batch_size=2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_quickstart_writes_the_seeded_table(tmp_path, data_dir):
    """sweep=quickstart at a tiny size with two seeds: table2.json's shape."""
    sweep_dir = tmp_path / "sweep"
    run_experiment(
        "aaai19_table2.py",
        f"--sweep-dir={sweep_dir}",
        "sweep=quickstart",
        "seeds=1,2",
        "pretrain_steps=4",
        # the quickstart experiment sets its own schedule, over schedule=tiny
        "schedule.max_steps=4",
        "schedule.val_check_interval=2",
        "schedule.limit_val_batches=1",
        "schedule.checkpoint_every=2",
        f"paths.data_dir={data_dir}",
        "data.adapter.num_videos=4",
        "data.adapter.num_frames=8",
    )
    table = json.loads((sweep_dir / "table2.json").read_text())
    assert table["seeds"] == 2
    for method in ("cn3d", "cn2d", "combcn"):
        row = table[method]
        for key in ("l1_hole", "psnr", "ssim"):
            assert isinstance(row[key], float) and row[f"{key}_std"] >= 0
            assert len(row[f"{key}_seeds"]) == 2
    assert table["cn3d"]["run"] == "combcn" and len(table["cn3d"]["l1_hole_up_seeds"]) == 2
    assert set(table["ordering"]) == {"ordering", "gap", "gap_in_std"}
    runs = reports.collect_runs(sweep_dir)
    assert sorted(runs) == [f"seed_{s}/{m}" for s in (1, 2) for m in ("cn2d", "cn3d", "combcn")]
    assert {m["seed"] for m in runs.values()} == {1, 2}
    assert all(m["protocol/split_by"] == "clip" for m in runs.values())


@pytest.mark.slow
def test_real_footage_recipe_writes_both_tables_and_its_checkpoints(tmp_path):
    """experiments/aaai19_real.py at tiny settings on generated stand-ins for the sample
    videos: the held-out-frames and left-out-video tables, and checkpoints that exist."""
    samples = tmp_path / "samples"
    for i, relative in enumerate(
        ("face/demo-sbr.mp4", "driving/solidWhiteRight.mp4", "object/bmx-trees.mp4")
    ):
        make_video(samples / relative, 48, 48, 64, seed=i)
    make_video(samples / "long/running_car.mp4", 16, 48, 64, seed=9)
    results = tmp_path / "results"
    run_experiment(
        "aaai19_real.py",
        f"--sweep-dir={tmp_path / 'sweep'}",
        f"--samples={samples}",
        f"--results={results}",
        "seeds=1",
        "pretrain_steps=2",
        "schedule.max_steps=2",
    )
    tables = json.loads((results / "aaai19_real.json").read_text())
    for name in ("held_out_frames", "left_out_video"):
        table = tables[name]
        assert table["seeds"] == 1
        for method in ("fill", "cn3d", "cn2d", "combcn"):
            assert 0 <= table[method]["l1_hole"] <= 255
        assert set(table["ordering"]) == {"ordering", "gap", "gap_in_std"}
    checkpoints = json.loads((results / "aaai19_real_checkpoints.json").read_text())["real"]
    assert all(Path(checkpoints[m]).is_file() for m in ("cn3d", "combcn", "cn2d"))
    assert "split=all" in checkpoints["overrides"]
    markdown = (results / "aaai19_real.md").read_text()
    assert "held-out frames" in markdown and "never trained on" in markdown
    runs = reports.collect_runs(tmp_path / "sweep")
    assert all(m["protocol/split_by"] == "time" for k, m in runs.items() if k.startswith("seed"))


@pytest.mark.slow
def test_ablation_chain_runs_all_five_columns(tmp_path, data_dir):
    results = tmp_path / "results"
    run_experiment(
        "aaai19_ablation.py",
        f"--sweep-dir={tmp_path / 'sweep'}",
        f"--results={results}",
        "data=synthetic",
        "trainer=cpu",
        f"paths.data_dir={data_dir}",
        "data.clip_len=8",
        "data.size=[32,32]",
        "data.num_workers=0",
    )
    table = (results / "aaai19_ablation.md").read_text()
    assert "| CombCN |" in table and " - |" not in table  # every column has a number
    assert "smoke test on synthetic" in table and "ours |" not in table and "4.45" not in table
    assert (results / "aaai19_ablation_curves.png").stat().st_size > 0
    runs = reports.collect_runs(tmp_path / "sweep")
    assert len(runs) == 8  # 3 pre-training + 5 joint runs
    assert all(m["global_step"] == 4 for m in runs.values())
