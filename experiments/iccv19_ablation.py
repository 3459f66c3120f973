"""ICCV'19 ablation on composed clips: the classic baselines (telea, propagate) and their
variants, DIP, DIP-Vid, DIP-Vid-3DCN and DIP-Vid-Flow.

Real clips get a known mask (a box, static or moving, or the object masks of another video),
so the covered content is the ground truth. Under every schedule of ``benchmark.schedules``
the methods of ``benchmark.methods`` (default: the baselines and every method of
``conf/sweep/iccv19_ablation.yaml``) inpaint every clip; scores: PSNR in the hole, SSIM of
the frames, PSNR of the raw output on the known region (``psnr_known``), flow warping error
(``ewarp``, flow of the ground truth), wall time. Settings:
``conf/experiment/iccv19/ablation.yaml``; any Hydra-style override of ``conf/inpaint.yaml``
is accepted:

    python experiments/iccv19_ablation.py
    python experiments/iccv19_ablation.py benchmark.frames=12 resolution=[128,256]

Writes ``<benchmark.results>.md`` (tables + the exact command) and ``.json`` after every fit;
the same command run again after an interruption resumes: the fits already written are kept.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from inspect import signature
from multiprocessing import get_context
from pathlib import Path

import hydra
import numpy as np
import torch
import wandb
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

import vidinpaint.runs  # noqa: F401  (registers the config resolvers)
from vidinpaint import dashboards, flow, metrics, runs
from vidinpaint.inference import resize_frames, resize_holes
from vidinpaint.models import CLASSIC, names
from vidinpaint.models.classic import ClassicSystem
from vidinpaint.models.internal import SIZE_MULTIPLE, InternalLearningSystem
from vidinpaint.nets.skipnet import make_noise
from vidinpaint.video_io import read_masks, read_video

log = logging.getLogger("iccv19_ablation")
ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
COLUMNS = ("psnr_hole", "ssim", "psnr_known", "ewarp", "iterations", "seconds")


def compose_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("inpaint", overrides=["experiment=iccv19/ablation", *overrides])


BASELINES = ["telea", "propagate"]


def sweep_methods() -> list[str]:
    sweep = OmegaConf.load(CONF_DIR / "sweep" / "iccv19_ablation.yaml")
    return [m.strip() for m in str(sweep.hydra.sweeper.params.method).split(",")]


def clip_mask(
    kind: str,
    samples_dir: Path,
    num_frames: int,
    size: tuple[int, int],
    box: float,
    coverage: float | str = "any",
) -> torch.Tensor:
    """(T,1,H,W) float: ``box_static``/``box_moving`` or a mask folder/video under
    ``samples_dir`` (its first ``num_frames`` masks, resized to ``size`` with ``coverage``:
    ``resize_holes``, the command's ``mask_coverage``)."""
    if kind in ("box_static", "box_moving"):
        return box_mask(num_frames, *size, kind, box)
    holes = read_masks(samples_dir / kind)
    if holes.shape[0] < num_frames:
        raise ValueError(f"{kind} has {holes.shape[0]} masks, benchmark.frames={num_frames}")
    return resize_holes(holes[:num_frames], size, coverage)


def box_mask(num_frames: int, height: int, width: int, kind: str, box: float) -> torch.Tensor:
    """(T,1,H,W) float: a box of ``box`` x (H, W), centred (static) or moving left to right."""
    if kind not in ("box_static", "box_moving"):
        raise ValueError(f"benchmark.mask must be box_static or box_moving, got {kind!r}")
    bh, bw = round(box * height), round(box * width)
    top = (height - bh) // 2
    mask = torch.zeros(num_frames, 1, height, width)
    for t in range(num_frames):
        if kind == "box_static":
            left = (width - bw) // 2
        else:
            left = round(t * (width - bw) / max(num_frames - 1, 1))
        mask[t, :, top : top + bh, left : left + bw] = 1
    return mask


def load_clip(path: Path, num_frames: int, size: tuple[int, int]) -> torch.Tensor:
    """First ``num_frames`` frames of a video at ``size``: (T,3,H,W) in [0,1]."""
    frames, _ = read_video(path)
    if frames.shape[0] < num_frames:
        raise ValueError(f"{path} has {frames.shape[0]} frames, benchmark.frames={num_frames}")
    return resize_frames(frames[:num_frames], size)


def truth_flows(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward flow of the ground-truth clip (T-1,2,H,W) and where it is consistent."""
    fw = flow.estimate_flow(target[:-1], target[1:])
    bw = flow.estimate_flow(target[1:], target[:-1])
    return fw, flow.forward_backward_valid(fw, bw)


def score(
    raw: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    flows: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Scores of one clip; ``raw`` is the network output before pasting the known pixels;
    ``flows``: ``truth_flows(target)`` when already computed (several outputs of one clip)."""
    done = raw.clamp(0, 1) * mask + target * (1 - mask)
    fw, valid = flows if flows is not None else truth_flows(target)
    return {
        "psnr_hole": float(metrics.psnr_masked(done, target, mask)),
        "ssim": float(metrics.ssim(done[None], target[None])),
        "psnr_known": float(metrics.psnr_masked(raw.clamp(0, 1), target, 1 - mask)),
        "ewarp": metrics.ewarp(done, fw, valid),
    }


class FitRecorder:
    """An ``on_state`` callback keeping the network of every fit state handed to it and the
    wall seconds since ``start`` (in memory: the curve is of the very fit that is timed)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.states: list[tuple[float, dict]] = []

    def __call__(self, state: dict) -> None:
        # on the CPU the state's tensors are the live weights
        net = {k: v.clone() for k, v in state["net"].items()}
        self.states.append((time.perf_counter() - self.start, net))


def checkpoint_psnrs(
    system: InternalLearningSystem, video: torch.Tensor, mask: torch.Tensor, states: list
) -> list[float]:
    """Hole PSNR of the output each recorded network generates (as ``fit_video``'s last
    step does: one chunk, the same noise)."""
    height, width = video.shape[-2:]
    pad = (0, -width % SIZE_MULTIPLE, 0, -height % SIZE_MULTIPLE)
    noise = make_noise(
        video.shape[0], height + pad[3], width + pad[1], seed=system.fit_options.noise_seed
    )
    batch_frames = min(system.fit_options.batch_frames, video.shape[0])
    psnrs = []
    for _, net in states:
        system.net.load_state_dict(net)
        raw = system.generate(noise, batch_frames, torch.device("cpu"))
        done = raw[..., :height, :width].clamp(0, 1) * mask + video * (1 - mask)
        psnrs.append(float(metrics.psnr_masked(done, video, mask)))
    return psnrs


def run_one(
    cfg: DictConfig, video: torch.Tensor, mask: torch.Tensor, curve_every: int = 0
) -> tuple[dict[str, float], torch.Tensor]:
    """Scores of one fit and its composited output (T,3,H,W). ``curve_every`` > 0: also
    ``curve``, [seconds, psnr_hole] of the fit's network every that many iterations (not
    for DIP, whose networks are per frame; baselines: their one point)."""
    model = cfg.model
    if model.method in names(CLASSIC):  # the experiment's model.* settings are for the others
        model = OmegaConf.masked_copy(model, ["_target_", *signature(ClassicSystem).parameters])
    system = hydra.utils.instantiate(model)
    recorder = None
    if curve_every and isinstance(system, InternalLearningSystem) and system.method != "dip":
        recorder = FitRecorder()
    start = time.perf_counter()
    if recorder is None:
        raw = system.fit_video(video, mask, progress=False)
    else:
        raw = system.fit_video(
            video, mask, progress=False, on_state=recorder, state_every=curve_every
        )
    seconds = time.perf_counter() - start
    row = score(raw, video, mask)
    row.update(iterations=len(system.recon_history), seconds=seconds)
    if recorder is not None:
        psnrs = checkpoint_psnrs(system, video, mask, recorder.states)
        row["curve"] = [[t, p] for (t, _), p in zip(recorder.states, psnrs)]
    elif curve_every:
        row["curve"] = [[seconds, row["psnr_hole"]]]
    return row, raw.clamp(0, 1) * mask + video * (1 - mask)


def plot_quality_per_minute(record: dict, path: Path) -> None:
    """Hole PSNR against wall seconds of every (schedule, method) with a ``curve``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    curves = [row for row in record["rows"] if "curve" in row]
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(curves), 1)))
    for row, colour in zip(curves, colours):
        seconds, psnr = zip(*row["curve"])
        style = "o" if len(seconds) == 1 else ".-"
        label = f"{row['method']} ({row['schedule']})"
        ax.plot(seconds, psnr, style, color=colour, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("wall seconds of the fit (build machine CPU, one thread)")
    ax.set_ylabel("hole PSNR (dB)")
    ax.set_title(f"quality per minute: {record['benchmark']['curve_clip']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def markdown(record: dict) -> str:
    bench = record["benchmark"]
    lines = [
        "# ICCV'19 internal learning: ablation on composed clips",
        "",
        "Real clips with a known box mask over them (the covered background is the ground",
        "truth); each method trains on the masked clip only. `psnr_hole`: PSNR (dB) over the",
        "hole pixels of the composited output; `ssim`: SSIM of the composited frames;",
        "`psnr_known`: PSNR of the raw network output on the known pixels (how well the video",
        "is fitted); `ewarp`: flow warping error of the output (x1e3, flow of the ground truth,",
        "DIS, lower = steadier); `seconds`: wall time of the fit on the build machine's",
        "CPU (compare within a table only).",
        "",
        "Clips (mask): "
        + "; ".join(f"{c['clip']} ({c['mask']})" for c in bench["clips"])
        + f"; first {bench['frames']} frames at "
        f"{record['resolution'][0]}x{record['resolution'][1]}; boxes are {bench['box']} of H "
        "and W; a mask folder is another video's object masks laid over the clip. "
        "Perceptual loss off (`model.loss.perceptual=0`, the default: no "
        "VGG16 weights on the build machine); `model.pad_mode=replicate` (64-pixel frames at "
        "the deepest level).",
        "",
        "Methods: `telea` (OpenCV per frame) and `propagate` (flow-guided propagation, 4",
        "passes, one sweep each way) are the classic baselines, no learning (`psnr_known` -:",
        "they leave known",
        "pixels as they are); dip, dip_vid, dip_vid_3dcn, dip_vid_flow are the paper's methods",
        "under the schedule of their table, with the overrides of `benchmark.method_overrides`",
        f"({overrides_text(bench)}). Each variant's overrides are in its heading",
        "(conf/experiment/iccv19/ablation.yaml explains them). Masks are shrunk to the working",
        "size as the code does (`mask_coverage=0.5`).",
        *(
            [
                f"Quality per minute on {bench['curve_clip']}:",
                f"`{Path(bench['results']).name}_quality.png`.",
            ]
            if bench.get("curve_clip")
            else []
        ),
        "",
        "Command (from the repository root):",
        "",
        "```",
        record["command"],
        "```",
        "",
        f"Run of {record.get('date', '?')}: seeds {record.get('seeds', '-')}, "
        f"{bench.get('jobs') or 1} fit(s) at once, each in its own process with one thread, on "
        "the 2-core build machine; wall time of the whole run "
        f"{record.get('wall_seconds', float('nan')) / 60:.1f} min.",
        "",
        *record.get("notes", []),
    ]
    size = "x".join(str(s) for s in record["resolution"])
    for name in record["schedules"]:
        schedule = record["schedules"][name]
        overrides = " ".join(bench["variants"].get(name, [f"schedule={name}"])) or "no overrides"
        lines += [
            f"## schedule `{name}` ({overrides})",
            "",
            f"il_epochs={schedule['il_epochs']}, il_iters_per_batch="
            f"{schedule['il_iters_per_batch']}, il_batches_per_epoch="
            f"{schedule['il_batches_per_epoch']}, dip_iters={schedule['dip_iters']}, "
            f"dip_check_every={schedule['dip_check_every']}",
            "",
            "| clip | method | seed | " + " | ".join(COLUMNS) + " |",
            "|---|---|---:|" + "---:|" * len(COLUMNS),
        ]
        for row in record["rows"]:
            if row["schedule"] != name:
                continue
            cells = [
                f"{row['psnr_hole']:.2f}",
                f"{row['ssim']:.4f}",
                "-" if row["method"] in names(CLASSIC) else f"{row['psnr_known']:.2f}",
                f"{row['ewarp'] * 1e3:.3f}",
                str(row["iterations"]),
                f"{row['seconds']:.0f}",
            ]
            clip = f"{row['clip']} ({size})"
            seed = "-" if row["method"] in BASELINES else str(row.get("seed", "-"))
            lines.append(f"| {clip} | {row['method']} | {seed} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += seeded_summary(record)
    if len(record.get("seeds", [])) < 2:
        lines += quality_cost(record)
    return "\n".join(lines)


PAPER_ORDER = ("dip", "dip_vid", "dip_vid_3dcn", "dip_vid_flow")
"""The ICCV'19 ablation's ordering, worst to best."""
SUMMARY_SCORES = (("psnr_hole", 1.0, "{:.2f}"), ("ssim", 1.0, "{:.4f}"), ("ewarp", 1e3, "{:.3f}"))


def entries(record: dict) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(clip, label) -> score -> the values over seeds; the label is the method, with the
    schedule in brackets when it is not the first schedule that runs the method."""
    first: dict[str, str] = {}
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for row in record["rows"]:
        home = first.setdefault(row["method"], row["schedule"])
        label = row["method"] if row["schedule"] == home else f"{row['method']} [{row['schedule']}]"
        values = out.setdefault((row["clip"], label), {k: [] for k, _, _ in SUMMARY_SCORES})
        for key, _, _ in SUMMARY_SCORES:
            values[key].append(row[key])
    return out


def ordered(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of b minus mean of a, and the larger std of the two (population std, 0 for one
    value): a pair is ordered beyond 2 sigma when |gap| > 2 x that std."""
    return float(np.mean(b) - np.mean(a)), float(max(np.std(a), np.std(b)))


def seeded_summary(record: dict) -> list[str]:
    """Mean +- std over seeds per clip and method, and which pairs are ordered beyond 2 sigma."""
    if len(record.get("seeds", [])) < 2:
        return []
    table = entries(record)
    head = " | ".join(key for key, _, _ in SUMMARY_SCORES)
    lines = [
        f"## mean ± std over seeds {record['seeds']}",
        "",
        "Population std; `telea` and `propagate` are deterministic (one run). `ewarp` x1e3.",
        "",
        f"| clip | method | n | {head} |",
        "|---|---|---:|" + "---:|" * len(SUMMARY_SCORES),
    ]
    for (clip, label), values in table.items():
        cells = []
        for key, scale, fmt in SUMMARY_SCORES:
            mean, std = np.mean(values[key]) * scale, np.std(values[key]) * scale
            cells.append(f"{fmt.format(mean)} ± {fmt.format(std)}")
        n = len(values["psnr_hole"])
        lines.append(f"| {clip} | {label} | {n} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## orderings beyond 2 sigma",
        "",
        "Per clip, `gap` = mean of the second minus mean of the first; ordered when |gap| > 2 x "
        "the larger std of the two (`x sigma` = |gap| / that std). Hole PSNR: higher is better; "
        "ewarp: lower is better.",
        "",
        "| clip | pair | psnr gap (dB) | x sigma | psnr: second better beyond 2 sigma | ewarp gap "
        "(x1e3) | x sigma | ewarp: second better beyond 2 sigma |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    for clip, first, second in comparisons(table):
        cells = []
        for key, better in (("psnr_hole", 1), ("ewarp", -1)):
            gap, std = ordered(table[(clip, first)][key], table[(clip, second)][key])
            scale = 1e3 if key == "ewarp" else 1.0
            times = abs(gap) / std if std > 0 else float("inf")
            verdict = "yes" if better * gap > 0 and times > 2 else "no"
            if better * gap < 0 and times > 2:
                verdict = "no: the first, beyond 2 sigma"
            cells += [f"{gap * scale:+.2f}", f"{times:.1f}", verdict]
        lines.append(f"| {clip} | {first} -> {second} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def comparisons(table: dict) -> list[tuple[str, str, str]]:
    """(clip, first, second): the paper's consecutive pairs, DIP-Vid-Flow against the classic
    fills, and every variant against its method."""
    pairs = []
    for clip in dict.fromkeys(c for c, _ in table):
        labels = [label for c, label in table if c == clip]
        chain = [m for m in PAPER_ORDER if m in labels]
        pairs += [(clip, a, b) for a, b in zip(chain, chain[1:])]
        if "dip_vid_flow" in labels:
            pairs += [(clip, "dip_vid_flow", b) for b in BASELINES if b in labels]
        for label in labels:
            method = label.split(" [")[0]
            if label != method and method in labels:
                pairs.append((clip, method, label))
    return pairs


def overrides_text(bench: dict) -> str:
    """``benchmark.method_overrides`` in words ("none" when empty)."""
    extra = bench.get("method_overrides") or {}
    return "; ".join(f"{m}: {' '.join(o)}" for m, o in extra.items()) or "none"


def quality_cost(record: dict) -> list[str]:
    """Hole PSNR of a clip and method under each schedule (the first schedule's rows)."""
    names = list(record["schedules"])
    if len(names) < 2:
        return []
    first = names[0]
    by_key = {(r["schedule"], r["clip"], r["method"]): r for r in record["rows"]}
    lines = [
        "## hole PSNR per schedule",
        "",
        "| clip | method | " + " | ".join(f"psnr_hole {n}" for n in names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for schedule, clip, method in by_key:
        if schedule != first:
            continue
        cells = [by_key.get((n, clip, method), {}).get("psnr_hole") for n in names]
        text = ["-" if c is None else f"{c:.2f}" for c in cells]
        lines.append(f"| {clip} | {method} | " + " | ".join(text) + " |")
    return [*lines, ""]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def plain(cfg: DictConfig) -> dict:
    """What a fit needs of a composed config, resolved (a worker process gets it)."""
    return {
        key: OmegaConf.to_container(cfg[key], resolve=True)
        if OmegaConf.is_config(cfg[key])
        else cfg[key]
        for key in ("model", "schedule", "benchmark", "resolution", "mask_coverage", "seed")
    }


def fit_tasks(overrides: list[str], bench: dict, seeds: list[int]) -> list[dict]:
    """Every (seed, schedule, method, clip) to run, seed-major (a stopped run has whole seeds);
    ``telea`` and ``propagate`` are deterministic: once, under the first seed. A schedule of
    ``benchmark.schedule_clips`` runs on the clips it lists only."""
    tasks = []
    for seed in seeds:
        for name in bench["schedules"]:
            extra = bench["variants"].get(name, [f"schedule={name}"])
            for method in bench["methods"].get(name, [*BASELINES, *sweep_methods()]):
                if method in BASELINES and seed != seeds[0]:
                    continue
                per_method = (bench.get("method_overrides") or {}).get(method, [])
                cfg = compose_config(
                    [*overrides, f"method={method}", *extra, *per_method, f"seed={seed}"]
                )
                only = (bench.get("schedule_clips") or {}).get(name)
                for clip in bench["clips"]:
                    if only is not None and clip["clip"] not in only:
                        continue
                    curve = bench["curve_every"] if clip["clip"] == bench["curve_clip"] else 0
                    tasks.append(
                        {"schedule": name, "method": method, "clip": clip, "seed": seed}
                        | {"config": plain(cfg), "curve_every": curve}
                    )
    return tasks


def task_key(item: dict) -> tuple:
    clip = item["clip"]["clip"] if isinstance(item["clip"], dict) else item["clip"]
    return item["schedule"], item["method"], clip, item["seed"]


def earlier_rows(results: Path, record: dict, tasks: list[dict]) -> list[tuple[int, dict]]:
    """(task index, row) of the fits an interrupted run of the same command and settings
    wrote to ``results``.json (``record`` takes its wall time); none when there is none."""
    path = results.with_suffix(".json")
    if not path.is_file():
        return []
    earlier = json.loads(path.read_text())
    same = ("command", "benchmark", "resolution", "seeds", "schedules")
    if any(earlier.get(key) != record[key] for key in same):
        return []
    record["wall_seconds"] = earlier.get("wall_seconds", 0.0)
    index = {task_key(task): i for i, task in enumerate(tasks)}
    return [(index[task_key(row)], row) for row in earlier["rows"] if task_key(row) in index]


def run_task(task: dict, threads: int = 0) -> tuple[dict, np.ndarray]:
    """One fit of ``fit_tasks`` scored (its row) and its thumbnail; ``threads`` > 0: the torch
    thread count of this process."""
    if threads:
        torch.set_num_threads(threads)
    cfg = OmegaConf.create(task["config"])
    bench, clip = cfg.benchmark, task["clip"]
    size = tuple(int(s) for s in cfg.resolution)
    samples = Path(bench.samples_dir)
    video = load_clip(samples / clip["clip"], bench.frames, size)
    mask = clip_mask(clip["mask"], samples, bench.frames, size, bench.box, cfg.mask_coverage)
    scores, done = run_one(cfg, video, mask, task["curve_every"])
    row = {"schedule": task["schedule"], "method": task["method"], "clip": clip["clip"]}
    row |= {"seed": task["seed"], **scores}
    return row, dashboards.thumbnail(video, mask, done, video)


def main(overrides: list[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    base = compose_config(overrides)
    bench = OmegaConf.to_container(base.benchmark, resolve=True)
    seeds = [int(s) for s in bench.get("seeds") or [base.seed]]
    record = {
        "command": " ".join(["python experiments/iccv19_ablation.py", *overrides]),
        "date": time.strftime("%Y-%m-%d"),
        "benchmark": bench,
        "resolution": [int(s) for s in base.resolution],
        "seeds": seeds,
        "schedules": {},
        "rows": [],
    }
    results = Path(bench["results"])
    results = results if results.is_absolute() else ROOT / results
    tasks = fit_tasks(overrides, bench, seeds)
    for task in tasks:
        record["schedules"][task["schedule"]] = task["config"]["schedule"]
    done: list[tuple[int, dict, np.ndarray]] = []  # (task index, row, thumbnail)
    for index, row in earlier_rows(results, record, tasks):
        done.append((index, row, np.zeros((1, 1, 3), np.uint8)))  # no thumbnail kept
    start = time.perf_counter() - record.get("wall_seconds", 0.0)
    pending = [i for i in range(len(tasks)) if i not in {index for index, _, _ in done}]
    if done:
        log.info("resuming %s: %d fits done, %d to run", results, len(done), len(pending))

    def keep(index: int, row: dict, thumb: np.ndarray) -> None:
        log.info("%s", {k: v for k, v in row.items() if k != "curve"})
        done.append((index, row, thumb))
        done.sort(key=lambda item: item[0])
        record["rows"] = [r for _, r, _ in done]
        record["wall_seconds"] = time.perf_counter() - start
        write_results(results, record)  # after every row: a stopped run keeps its rows

    jobs = int(bench.get("jobs") or 1)
    if jobs == 1:
        for index in pending:
            keep(index, *run_task(tasks[index]))
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_task, tasks[i], 1): i for i in pending}
            for future in as_completed(futures):
                keep(futures[future], *future.result())
    thumbnails = [t for _, _, t in done]
    log.info("wrote %s.{md,json}", results)
    if bench["curve_clip"]:
        plot_quality_per_minute(record, results.with_name(f"{results.name}_quality.png"))
    if bench.get("wandb_dir"):
        log_dashboard(record, thumbnails, Path(bench["wandb_dir"]))
    return record


def log_dashboard(record: dict, thumbnails: list[np.ndarray], wandb_dir: Path) -> None:
    """One wandb run (offline unless ``WANDB_MODE=online`` or an API key is set) with, per
    schedule, the table ``<schedule>/clips`` of every row (dashboards.py; ``thumbnails[i]``
    for ``record["rows"][i]``) and each method's mean ``<schedule>/<method>/<score>``."""
    wandb_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project="vidinpaint",
        name="iccv19_ablation",
        group="iccv19_ablation",
        dir=str(wandb_dir),
        mode="offline" if runs.wandb_offline() else "online",
        config={"command": record["command"], "benchmark": record["benchmark"]},
    )
    for schedule in record["schedules"]:
        picked = [(r, t) for r, t in zip(record["rows"], thumbnails) if r["schedule"] == schedule]
        rows = [dashboards.clip_row(r["clip"], r["method"], r, r["seconds"], t) for r, t in picked]
        means = {}
        for method in dict.fromkeys(row["method"] for row in rows):
            mine = [row for row in rows if row["method"] == method]
            for key in ("psnr_hole", "ssim", "ewarp", "seconds"):
                means[f"{schedule}/{method}/{key}"] = sum(row[key] for row in mine) / len(mine)
        run.log({**means, f"{schedule}/clips": dashboards.clip_table(rows)})
    run.finish()


def write_results(results: Path, record: dict) -> None:
    write_atomic(results.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    write_atomic(results.with_suffix(".md"), markdown(record))


if __name__ == "__main__":
    main(sys.argv[1:])
