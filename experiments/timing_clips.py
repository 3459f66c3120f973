"""Writes the composed clips that experiments/benchmarks.md times `vidinpaint-inpaint` on.

The first N frames of a shared sample video, resized (antialiased) to HxW, as a lossless mp4,
and a folder of per-frame masks: a box of 0.3 H x 0.3 W moving left to right across the clip
(the box of experiments/iccv19_ablation.py), so the covered content is the ground truth:

    python experiments/timing_clips.py out=/tmp/clips frames=20,100 size=128,320
    vidinpaint-inpaint input=/tmp/clips/f100_128x320.mp4 mask=/tmp/clips/f100_128x320_mask \
        output=/tmp/o.mp4 gt=/tmp/clips/f100_128x320.mp4

Options (key=value): ``out`` (folder), ``frames`` (counts, comma-separated), ``size`` (H,W),
``clip`` (under $VIDINPAINT_SAMPLES, default driving/solidWhiteRight.mp4).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from vidinpaint.inference import resize_frames
from vidinpaint.video_io import read_video
from vidinpaint.video_write import write_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from iccv19_ablation import box_mask  # noqa: E402


def main(args: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in args)
    out = Path(options.get("out", "/tmp/vidinpaint_clips"))
    counts = [int(n) for n in options.get("frames", "20,100").split(",")]
    height, width = (int(s) for s in options.get("size", "128,320").split(","))
    samples = Path(os.environ.get("VIDINPAINT_SAMPLES", Path(__file__).parents[2] / "shared/data"))
    frames, fps = read_video(samples / options.get("clip", "driving/solidWhiteRight.mp4"))
    out.mkdir(parents=True, exist_ok=True)
    for count in counts:
        if count > frames.shape[0]:
            raise SystemExit(f"the clip has {frames.shape[0]} frames, {count} were asked for")
        name = f"f{count}_{height}x{width}"
        video = resize_frames(frames[:count], (height, width))
        write_video(out / f"{name}.mp4", video, fps, lossless=True)
        masks = out / f"{name}_mask"
        masks.mkdir(exist_ok=True)
        for t, hole in enumerate(box_mask(count, height, width, "box_moving", 0.3)):
            Image.fromarray((hole[0].numpy() * 255).astype(np.uint8)).save(masks / f"{t:05d}.png")
        print(f"wrote {out / name}.mp4 and {masks}/")


if __name__ == "__main__":
    main(sys.argv[1:])
