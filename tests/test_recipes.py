"""Table 2 layouts from run metrics, and the two-stage chain end to end (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vidinpaint import recipes

ROOT = Path(__file__).resolve().parents[1]


def metrics(l1, l1_3dcn=None, dataset="vw300"):
    record = {"val/l1_hole": l1, "val/psnr": 30.0, "val/ssim": 0.9, "dataset": dataset}
    if l1_3dcn is not None:
        record["val/l1_hole_3dcn"] = l1_3dcn
    return record


def test_run_key_splits_recipe_names():
    assert recipes.run_key("aaai19/vw300_v1_combcn") == ("vw300_v1", "combcn")
    assert recipes.run_key("aaai19/caltech_cn3d") == ("caltech", "cn3d")
    assert recipes.run_key("cn2d") == ("", "cn2d")


def test_table2_markdown_puts_paper_numbers_beside_ours():
    runs = {
        "aaai19/faceforensics_cn3d": metrics(8.0, dataset="faceforensics"),
        "aaai19/faceforensics_cn2d": metrics(7.5, dataset="faceforensics"),
        "aaai19/faceforensics_combcn": metrics(6.5, 7.9, dataset="faceforensics"),
    }
    row = recipes.table2_markdown(runs).splitlines()[-1]
    assert row == "| faceforensics | 8.00 | 7.18 | 7.50 | 6.77 | 6.50 | 6.27 |"


def test_ablation_markdown_reads_3dcn_and_combcn_of_each_column():
    runs = {
        f"aaai19/vw300_{c}combcn": metrics(5.0 + i, 6.0 + i)
        for i, c in enumerate(["", "v1_", "v2_", "t1_", "t2_"])
    }
    runs["aaai19/vw300_cn3d"] = metrics(99.0)  # pre-training runs are not columns
    lines = recipes.ablation_markdown(runs).splitlines()
    # columns: V-1, V-2, T-1, T-2, full, each "ours | paper"
    assert lines[2] == (
        "| 3DCN | 7.00 | 9.51 | 8.00 | 11.56 | 9.00 | 6.30 | 10.00 | 9.28 | 6.00 | 4.45 |"
    )
    assert lines[3] == (
        "| CombCN | 6.00 | 6.39 | 7.00 | 8.13 | 8.00 | 5.18 | 9.00 | 6.31 | 5.00 | 4.20 |"
    )


def test_mini_table2_from_quickstart_runs():
    runs = {"cn3d": metrics(20.0), "combcn": metrics(10.0, 19.0), "cn2d": metrics(12.0)}
    table = recipes.mini_table2(runs)
    assert table["combcn"] == {"l1_hole": 10.0, "psnr": 30.0, "ssim": 0.9}
    assert set(table) == {"cn3d", "combcn", "cn2d"}


def test_collect_runs_names_the_folder_when_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        recipes.collect_runs(tmp_path)


@pytest.mark.slow
def test_ablation_chain_runs_all_five_columns(tmp_path, data_dir):
    results = tmp_path / "results"
    cmd = [
        sys.executable,
        str(ROOT / "experiments" / "aaai19_ablation.py"),
        "--sweep-dir",
        str(tmp_path / "sweep"),
        "--results",
        str(results),
        "data=synthetic",
        "schedule=tiny",
        "trainer=cpu",
        "logger=csv",
        "num_samples=0",
        f"paths.data_dir={data_dir}",
        "data.clip_len=8",
        "data.size=[32,32]",
        "data.batch_size=2",
        "data.num_workers=0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (results / "aaai19_ablation.md").read_text()
    assert "| CombCN |" in table and " - |" not in table  # every column has a number
    assert (results / "aaai19_ablation_curves.png").stat().st_size > 0
    runs = recipes.collect_runs(tmp_path / "sweep")
    assert len(runs) == 8  # 3 pre-training + 5 joint runs
    assert all(m["global_step"] == 4 for m in runs.values())
