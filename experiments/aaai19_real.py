"""AAAI'19 on real footage: a seeded mini Table 2 trained and scored on real videos.

    python experiments/aaai19_real.py                         # 3 seeds (~35 min, 2 idle cores)
    python experiments/aaai19_real.py seeds=1                 # one seed
    python experiments/aaai19_real.py seeds=1 pretrain_steps=4 schedule.max_steps=4  # smoke run
    python experiments/aaai19_real.py --sweep-dir DIR --collect-only   # tabulate finished runs

Links the sample videos (``--samples``, default ``$VIDINPAINT_SAMPLES`` or ../shared/data) into
the sweep folder: the face, dash-cam and bmx-trees videos train (one pooled set: there is one
face video, so a face-only table could hold out no face video), and the long driving video is
left out entirely. Then, once per seed, 3DCN pre-training, CombCN jointly with it and the 2DCN
baseline (``conf/sweep/aaai19_real.yaml``, ``conf/experiment/aaai19_real.yaml``: 8-frame 64x64
clips, the paper's static training boxes, the last sixth of every training video held out by
``data.split_by=time``). The held-out frames are scored by the runs' validation; the left-out
video by ``vidinpaint-eval split=all`` of each seed's CombCN and 2DCN checkpoints. Writes
``aaai19_real.md``/``.json`` and ``aaai19_real_checkpoints.json`` (the first seed's checkpoints
with the ``vidinpaint-eval`` overrides that score them) to ``--results``, copies into the sweep
folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from vidinpaint import reports
from vidinpaint.runs import write_json

log = logging.getLogger(__name__)

SWEEP = "aaai19_real"
# link name -> path under the samples folder
TRAIN_VIDEOS = {
    "face.mp4": "face/demo-sbr.mp4",
    "dashcam.mp4": "driving/solidWhiteRight.mp4",
    "bmx-trees.mp4": "object/bmx-trees.mp4",
}
LEFT_OUT_VIDEOS = {"running_car.mp4": "long/running_car.mp4"}
# what vidinpaint-eval needs to score the recipe's checkpoints (conf/experiment/aaai19_real.yaml)
EVAL_OVERRIDES = ["data=folder", "data.size=[64,64]", "data.clip_len=8", "split=all"]
SETS = {
    "held_out_frames": "held-out frames (last sixth) of the 3 training videos",
    "left_out_video": "running_car, a driving video never trained on (whole video)",
}
ROWS = (
    ("fill", "mean-pixel fill (the networks' input)"),
    ("cn3d", "3DCN (joint run, eq. 1 at H/2)"),
    ("cn2d", "2DCN"),
    ("combcn", "CombCN"),
)


def link_videos(samples: Path, folder: Path, videos: dict[str, str]) -> Path:
    """Symlinks ``videos`` of the samples folder into ``folder``; a missing one is an error."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, relative in videos.items():
        source = (samples / relative).resolve()
        if not source.is_file():
            sys.exit(f"aaai19_real: sample video not found: {source} (set --samples)")
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(source)
    return folder


def score_left_out(sweep_dir: Path, left_out: Path, seeds: list[int]) -> dict[str, dict]:
    """``vidinpaint-eval split=all`` of every seed's CombCN and 2DCN on the left-out video:
    ``{"seed_<n>/<method>": metrics}`` (done runs are read back, not scored again)."""
    runs = {}
    for seed in seeds:
        for method in ("combcn", "cn2d"):
            name = f"seed_{seed}/{method}"
            out = sweep_dir / "left_out" / name
            if not (out / "metrics.json").is_file():
                ckpt = sweep_dir / name / "checkpoints" / "last.ckpt"
                cmd = [
                    sys.executable,
                    "-m",
                    "vidinpaint.eval",
                    f"ckpt={ckpt}",
                    f"data.root={left_out}",
                    *EVAL_OVERRIDES,
                    "data.batch_size=2",
                    "data.num_workers=1",
                    "num_samples=0",
                    f"seed={seed}",
                    f"hydra.run.dir={out}",
                ]
                log.info("left-out video, %s: %s", name, " ".join(cmd))
                subprocess.run(cmd, check=True)
            runs[name] = json.loads((out / "metrics.json").read_text())
    return runs


def table_markdown(table: dict) -> str:
    """One row set: l1 hole error [0,255], PSNR and SSIM as mean ± std over the seeds."""
    lines = ["| method | l1_hole [0,255] | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    for key, label in ROWS:
        row = table[key]
        cells = [f"{row['l1_hole']:.2f} ± {row['l1_hole_std']:.2f}"]
        for metric, digits in (("psnr", 2), ("ssim", 4)):
            cells.append(
                f"{row[metric]:.{digits}f} ± {row[f'{metric}_std']:.{digits}f}"
                if metric in row
                else "-"
            )
        lines.append(f"| {label} | {' | '.join(cells)} |")
    check = table["ordering"]
    spread = (
        f"{check['gap_in_std']:.1f} x the larger std "
        f"({'beyond' if check['gap_in_std'] >= 2 else 'within'} 2 sigma)"
        if table["seeds"] > 1
        else "one seed, no spread"
    )
    holds = "holds" if check["ordering"] else "does not hold"
    lines.append(
        f"\nPaper ordering CombCN < 2DCN < 3DCN: **{holds}**; "
        f"2DCN - CombCN = {check['gap']:.2f} ({spread})."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="seeds=1,2,3 and vidinpaint-train overrides")
    parser.add_argument(
        "--samples",
        type=Path,
        default=Path(os.environ.get("VIDINPAINT_SAMPLES", "../shared/data")),
        help="the sample videos folder (default: $VIDINPAINT_SAMPLES or ../shared/data)",
    )
    parser.add_argument("--sweep-dir", type=Path, help="output folder (default: a new one)")
    parser.add_argument("--results", type=Path, default=Path("experiments/results"))
    parser.add_argument("--collect-only", action="store_true", help="tabulate finished runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sweep_dir = (args.sweep_dir or reports.default_sweep_dir(SWEEP)).resolve()
    train_root = link_videos(args.samples, sweep_dir / "videos" / "train", TRAIN_VIDEOS)
    left_out = link_videos(args.samples, sweep_dir / "videos" / "left_out", LEFT_OUT_VIDEOS)
    started = datetime.now()
    if not args.collect_only:
        overrides = [f"data.root={train_root}", "logger=csv", *args.overrides]
        reports.run_stages(SWEEP, overrides, sweep_dir)
    runs = {k: v for k, v in reports.collect_runs(sweep_dir).items() if k.startswith("seed_")}
    seeds = sorted({reports.run_seed(name, m) for name, m in runs.items()})
    tables = {
        "held_out_frames": reports.mini_table2(runs),
        "left_out_video": reports.mini_table2(score_left_out(sweep_dir, left_out, seeds), "all"),
    }
    for table in tables.values():
        table["ordering"] = reports.ordering_check(table)
    first = sweep_dir / f"seed_{seeds[0]}"
    checkpoints = {
        "real": {
            method: str(first / method / "checkpoints" / "last.ckpt")
            for method in ("cn3d", "combcn", "cn2d")
        }
        | {"overrides": EVAL_OVERRIDES}
    }
    minutes = (datetime.now() - started).total_seconds() / 60
    command = " ".join(["python experiments/aaai19_real.py", *args.overrides])
    header = (
        f"# AAAI'19 on real footage: seeded mini Table 2 at 64x64, 8 frames\n\n"
        f"{datetime.now():%Y-%m-%d}, `{command}`"
        f", sweep `{sweep_dir}`, {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
        f"{'collected' if args.collect_only else f'{minutes:.0f} min'}. Real videos standing in "
        "for FaceForensics/300VW (one face video) and Caltech (a dash-cam video) at a CPU's "
        "scale; not the paper's data, sizes or training length, so no paper column.\n"
    )
    body = "\n\n".join(f"## {SETS[name]}\n\n{table_markdown(t)}" for name, t in tables.items())
    for folder in (args.results, sweep_dir):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "aaai19_real.md").write_text(f"{header}\n{body}\n")
        write_json(folder / "aaai19_real.json", {"sweep_dir": str(sweep_dir), **tables})
        write_json(folder / "aaai19_real_checkpoints.json", checkpoints)
    print(f"{header}\n{body}")


if __name__ == "__main__":
    main()
