"""Crop-to-mask (``vidinpaint-inpaint crop_margin=``) against the whole frame: wall time, peak
memory and hole PSNR of the command on a 1080p clip with a small box.

The first ``frames`` frames of a sample clip (dash-cam, camera moving) resized to 1080x1920 as
a lossless mp4, and a static box (``box=x,y,w,h``, a logo's place: 200x80 at the top right);
the covered content is the ground truth (``gt=``). Each setting is one ``vidinpaint-inpaint``
process (peak memory: its maximum resident set, from ``os.wait4``):

    python experiments/crop_to_mask.py                 # the committed table
    python experiments/crop_to_mask.py frames=10 methods=telea margins=null,32,64

Writes ``experiments/results/crop_to_mask.md`` (``out=`` another path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from vidinpaint.inference import resize_frames
from vidinpaint.video_io import read_video
from vidinpaint.video_write import write_video

ROOT = Path(__file__).resolve().parents[1]


def run_command(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GiB) of ``vidinpaint-inpaint args``."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "vidinpaint.inpaint", *args], stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"vidinpaint-inpaint {' '.join(args)} failed")
    return seconds, usage.ru_maxrss / 2**20


def main(args: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in args)
    count = int(options.get("frames", 12))
    box = options.get("box", "1660,60,200,80")
    methods = options.get("methods", "propagate,telea").split(",")
    margins = options.get("margins", "null,64").split(",")
    out = Path(options.get("out", ROOT / "experiments/results/crop_to_mask.md"))
    samples = Path(os.environ.get("VIDINPAINT_SAMPLES", ROOT.parent / "shared/data"))
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        frames, fps = read_video(samples / options.get("clip", "driving/solidWhiteRight.mp4"))
        video = resize_frames(frames[:count], (1080, 1920))
        clip = write_video(Path(folder) / "clip.mp4", video, fps, lossless=True)
        for method in methods:
            for margin in margins:
                run = Path(folder) / f"{method}_{margin}"
                seconds, memory = run_command(
                    [
                        f"input={clip}",
                        f"mask=box:{box}",
                        f"method={method}",
                        f"crop_margin={margin}",
                        f"gt={clip}",
                        f"output={run}/out.mp4",
                        f"hydra.run.dir={run}",
                    ]
                )
                psnr = json.loads((run / "metrics.json").read_text())["inpaint/psnr_hole"]
                rows.append((method, margin, seconds, memory, psnr))
                print(rows[-1], flush=True)
    command = " ".join(["python experiments/crop_to_mask.py", *args])
    state = "loaded: other jobs running" if load > 1 else "idle"
    lines = [
        "# crop-to-mask: the box's region against the whole frame, 1080p",
        "",
        f"`{command}` on {date.today()}: {count} frames of "
        f"{options.get('clip', 'driving/solidWhiteRight.mp4')} at 1080x1920 (lossless mp4), "
        f"`mask=box:{box}`, one `vidinpaint-inpaint` process per row (decoding, the fill and "
        f"the lossless encoding); machine: 2-core AMD EPYC build machine, 1-minute load "
        f"average {load:.1f} at the start ({state}).",
        "",
        "| method | `crop_margin=` | wall s | peak memory GiB | hole PSNR dB |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {m} | {g} | {s:.1f} | {r:.2f} | {p:.2f} |" for m, g, s, r, p in rows]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
