"""How good is DIP-Vid-Flow's flow supervision? The flows L_f learns from are estimated on the
masked video (its holes filled by ``model.flow.fill``) and applied where ``FlowTargets.valid``
says (outside the hole and its warped twin grown by ``model.flow.valid_margin``, forward-backward
consistent). On the composed clips of ``conf/experiment/iccv19/ablation.yaml`` the covered
content is known, so those flows are compared with the flows of the unmasked clip:

    python experiments/iccv19_flow_fill.py
    python experiments/iccv19_flow_fill.py benchmark.frames=12 'fills=[mean,harmonic]'

Per clip, fill and margin: the share of the frame L_f supervises (``valid``), the mean endpoint
error there against the unmasked clip's flow (``epe``, px) and the share of supervised pixels
off by more than 1 px (``wrong``), over the fit's intervals. No network is trained: the figures
are deterministic. Writes ``experiments/results/iccv19_flow_fill.{md,json}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from iccv19_ablation import ROOT, clip_mask, compose_config, load_clip, write_atomic
from vidinpaint.flow import video_flows
from vidinpaint.models.internal.fit_loop import flow_input
from vidinpaint.models.internal.options import FLOW_FILLS, FlowOptions
from vidinpaint.models.internal.system import InternalLearningSystem
from vidinpaint.models.internal.windows import FlowTargets

MARGINS = (0, 2, 4, 8)
RESULTS = ROOT / "experiments" / "results" / "iccv19_flow_fill"


def supervision_error(
    estimated: dict, truth: dict, hole: torch.Tensor, margin: int
) -> dict[str, float]:
    """``valid`` share, mean EPE (px) and share off by > 1 px, over every pair of every
    interval and direction of ``estimated`` (pixel flows, not normalised)."""
    targets = FlowTargets(estimated, hole, normalize=False, margin=margin)
    supervised = pixels = wrong = 0.0
    error_sum = 0.0
    for key, flow in targets._flow.items():
        valid = targets._valid[key].float()
        error = (flow - truth[key]).norm(dim=1, keepdim=True)
        supervised += float(valid.sum())
        pixels += valid.numel()
        error_sum += float((error * valid).sum())
        wrong += float(((error > 1) * valid).sum())
    return {
        "valid": supervised / pixels,
        "epe": error_sum / max(supervised, 1),
        "wrong": wrong / max(supervised, 1),
    }


def main(overrides: list[str]) -> dict:
    fills = list(FLOW_FILLS)
    rest = []
    for item in overrides:
        if item.startswith("fills="):
            fills = [f.strip() for f in item.split("=", 1)[1].strip("[]").split(",")]
        else:
            rest.append(item)
    cfg = compose_config([*rest, "method=dip_vid_flow"])
    bench = OmegaConf.to_container(cfg.benchmark, resolve=True)
    size = tuple(int(s) for s in cfg.resolution)
    intervals = tuple(int(k) for k in cfg.model.fit.intervals)
    samples = Path(bench["samples_dir"])
    rows = []
    start = time.perf_counter()
    for entry in bench["clips"]:
        video = load_clip(samples / entry["clip"], bench["frames"], size)
        hole = clip_mask(entry["mask"], samples, bench["frames"], size, bench["box"])
        hole = (hole > 0.5).float()
        truth = video_flows(video, intervals)
        masked = InternalLearningSystem.fill_holes(video, hole)
        for fill in fills:
            estimated = video_flows(flow_input(masked, hole, FlowOptions(fill=fill)), intervals)
            for margin in MARGINS:
                row = {"clip": entry["clip"], "mask": entry["mask"], "fill": fill}
                rows.append(
                    {**row, "margin": margin, **supervision_error(estimated, truth, hole, margin)}
                )
                print(rows[-1], flush=True)
    record = {
        "command": " ".join(["python experiments/iccv19_flow_fill.py", *overrides]),
        "date": time.strftime("%Y-%m-%d"),
        "frames": bench["frames"],
        "resolution": list(size),
        "intervals": list(intervals),
        "seconds": time.perf_counter() - start,
        "rows": rows,
    }
    write_atomic(RESULTS.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    write_atomic(RESULTS.with_suffix(".md"), markdown(record))
    return record


def markdown(record: dict) -> str:
    size = "x".join(str(s) for s in record["resolution"])
    lines = [
        "# ICCV'19 DIP-Vid-Flow: the flow supervision against the unmasked clip's flow",
        "",
        f"Composed clips (first {record['frames']} frames at {size}, intervals "
        f"{record['intervals']}, both directions, DIS). `valid`: share of the frame pairs' "
        "pixels where L_f applies; `epe`: mean endpoint error (px) of the estimated flow there "
        "against the flow of the unmasked clip; `wrong`: share of those pixels off by more "
        "than 1 px. `fill`: what the hole shows the flow estimator (`model.flow.fill`); "
        "`margin`: pixels the excluded region is grown by (`model.flow.valid_margin`). "
        "Deterministic (no network is trained).",
        "",
        f"Command: `{record['command']}` ({record['date']}, {record['seconds']:.0f} s on the "
        "2-core build machine).",
        "",
        "| clip (mask) | fill | margin | valid | epe (px) | wrong |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in record["rows"]:
        lines.append(
            f"| {r['clip']} ({r['mask']}) | {r['fill']} | {r['margin']} | {r['valid']:.3f} | "
            f"{r['epe']:.3f} | {r['wrong']:.4f} |"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    main(sys.argv[1:])
