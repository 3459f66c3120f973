"""vidinpaint-bench data: clips/s of the training loader (0, 1 and 2 workers) against raw
decoding, and of prepared clips against full-resolution ones."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from vidinpaint import CONF_DIR
from vidinpaint.bench.common import device_name, environment

log = logging.getLogger(__name__)

DATA_TARGETS = {"datamodule_2_workers_vs_raw": 0.8, "prepared_vs_full_resolution": 5.0}


def compose_data(overrides: list[str]) -> DictConfig:
    """A resolved ``data`` config composed from conf/ (e.g. ``data=folder``) with overrides."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        cfg = compose("bench", overrides=overrides)
    else:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("bench", overrides=overrides)
    return OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))


def shape_overrides(data_cfg: DictConfig) -> list[str]:
    """Overrides giving another dataset this one's clip length, size and batch size."""
    height, width = data_cfg.size
    return [
        f"data.clip_len={data_cfg.clip_len}",
        f"data.size=[{height},{width}]",
        f"data.batch_size={data_cfg.batch_size}",
    ]


def endless(loader: Any) -> Any:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def loader_throughput(
    datamodule: Any, num_workers: int, num_clips: int, warmup_batches: int, seed: int
) -> tuple[float, float, list[tuple[str, int]]]:
    """Seconds and clips/s of the DataModule's training loader (uint8 clips and masks, like raw
    decoding; the float batch is made on the training device) over at least ``num_clips``
    clips after ``warmup_batches`` untimed batches (worker start-up), and the (path, start) of
    the timed clips. The shuffle order depends only on ``seed``."""
    datamodule.num_workers = num_workers
    torch.manual_seed(seed)
    loader = datamodule.train_dataloader()

    stream = endless(loader)
    for _ in range(warmup_batches):
        next(stream)
    clips: list[tuple[str, int]] = []
    start = time.perf_counter()
    while len(clips) < num_clips:
        batch = next(stream)
        clips.extend(zip(batch["path"], batch["start"].tolist(), strict=True))
    seconds = time.perf_counter() - start
    stream.close()
    del stream, loader
    return seconds, len(clips) / seconds, clips


def raw_decode_throughput(
    clips: list[tuple[str, int]], clip_len: int, threads: int
) -> tuple[float, float] | None:
    """Seconds and clips/s of plain decord decoding of the same frame ranges at the source
    resolution (a reader per clip, ``get_batch`` of the contiguous range, no crop or resize),
    in this process. None when a source is not a video file (frame folders, .seq)."""
    import decord

    from vidinpaint.video_io import VIDEO_SUFFIXES

    if any(Path(path).suffix.lower() not in VIDEO_SUFFIXES for path, _ in clips):
        return None
    start = time.perf_counter()
    for path, first in clips:
        reader = decord.VideoReader(path, num_threads=threads)
        reader.get_batch(list(range(first, first + clip_len))).asnumpy()
        del reader
    seconds = time.perf_counter() - start
    return seconds, len(clips) / seconds


def dataset_rows(
    name: str, data_cfg: DictConfig, cfg: DictConfig, prepared_dir: Path | None
) -> list[dict[str, Any]]:
    """Rows of one dataset: the DataModule at each worker count, raw decord on the same clips
    and, with ``prepared_dir``, the DataModule again on clips cached by ``vidinpaint-prepare``
    (``write_index(with_clips=True)``) into that folder."""
    bench = cfg.data_bench
    kwargs = {"cache_dir": str(prepared_dir)} if prepared_dir is not None else {}
    datamodule = hydra.utils.instantiate(data_cfg, **kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    index = datamodule.index
    heights = sorted({v.height for v in index.videos})
    widths = sorted({v.width for v in index.videos})
    info = {
        "dataset": name,
        "clip_len": datamodule.clip_len,
        "size": "x".join(map(str, datamodule.size)),
        "sources": f"{len(index.videos)} videos, {heights[0]}..{heights[-1]} x "
        f"{widths[0]}..{widths[-1]}",
        "train_clips": len(index.split_clips("train")),
    }
    rows: list[dict[str, Any]] = []
    full: dict[int, float] = {}
    clips: list[tuple[str, int]] = []
    for workers in bench.worker_counts:
        seconds, rate, timed = loader_throughput(
            datamodule, int(workers), bench.num_clips, bench.warmup_batches, cfg.seed
        )
        clips = clips or timed
        full[int(workers)] = rate
        rows.append(
            {
                **info,
                "reader": "datamodule",
                "workers": int(workers),
                "clips": len(timed),
                "seconds": seconds,
                "clips_per_s": rate,
            }
        )
    raw = raw_decode_throughput(clips, datamodule.clip_len, bench.decode_threads)
    if raw is None:
        log.warning("%s: sources are not video files, no raw decord reference", name)
    else:
        rows.append(
            {
                **info,
                "reader": "raw decord",
                "workers": None,
                "clips": len(clips),
                "seconds": raw[0],
                "clips_per_s": raw[1],
            }
        )
        for row in rows[:-1]:
            row["vs_raw"] = row["clips_per_s"] / raw[1]
    if prepared_dir is not None:
        start = time.perf_counter()
        datamodule.write_index(with_clips=True)
        prepare_seconds = time.perf_counter() - start
        prepared = hydra.utils.instantiate(data_cfg, **kwargs)
        prepared.setup("fit")
        if any(c.cached is None for c in prepared.index.clips):
            raise RuntimeError(f"{name}: the prepared index in {prepared_dir} has no cached clips")
        for workers in bench.worker_counts:
            seconds, rate, timed = loader_throughput(
                prepared, int(workers), bench.num_clips, bench.warmup_batches, cfg.seed
            )
            rows.append(
                {
                    **info,
                    "reader": "datamodule, prepared clips",
                    "workers": int(workers),
                    "clips": len(timed),
                    "seconds": seconds,
                    "clips_per_s": rate,
                    "vs_full": rate / full[int(workers)],
                    "prepare_seconds": prepare_seconds,
                }
            )
    return rows


def data_targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets per dataset: DataModule with 2 workers >= 80% of raw decoding;
    prepared clips >= 5x the clips/s of full-resolution sources (same worker count)."""
    targets: dict[str, Any] = {}
    for row in rows:
        key = None
        if row["reader"] == "datamodule" and row["workers"] == 2 and "vs_raw" in row:
            key, value = "datamodule_2_workers_vs_raw", row["vs_raw"]
        elif row["reader"] == "datamodule, prepared clips" and row["workers"] == 0:
            key, value = "prepared_vs_full_resolution", row["vs_full"]
        if key is not None:
            targets[f"{row['dataset']}/{key}"] = {
                "value": value,
                "target": DATA_TARGETS[key],
                "met": value >= DATA_TARGETS[key],
            }
    return targets


def bench_data(cfg: DictConfig) -> dict[str, Any]:
    """Clips/s of (a) ``cfg.data`` (synthetic by default), (b) the sample videos under
    ``data_bench.samples`` (``data=folder``; skipped when unset), (c) the same samples as clips
    prepared by ``vidinpaint-prepare`` vs their full-resolution sources. Without samples, (c)
    runs on synthetic videos of ``data_bench.fullres_frame_size`` pixels instead."""
    output_dir = Path(cfg.paths.output_dir)
    rows = dataset_rows(cfg.data.name, cfg.data, cfg, None)
    samples = cfg.data_bench.samples
    overrides = shape_overrides(cfg.data)
    if samples and Path(samples).is_dir():
        folder = compose_data(["data=folder", f"data.root={Path(samples).resolve()}", *overrides])
        rows += dataset_rows("samples", folder, cfg, output_dir / "prepared-samples")
    else:
        if samples:
            log.warning("data_bench.samples=%s is not a folder: sample videos skipped", samples)
        size = int(cfg.data_bench.fullres_frame_size)
        synthetic = compose_data(
            [
                "data=synthetic",
                f"data.root={output_dir / f'synthetic-{size}'}",
                f"data.adapter.frame_size={size}",
                f"data.adapter.num_videos={cfg.data_bench.fullres_videos}",
                *overrides,
            ]
        )
        rows += dataset_rows(
            f"synthetic-{size}px", synthetic, cfg, output_dir / "prepared-synthetic"
        )
    return {
        "mode": "data",
        "device_name": device_name(torch.device("cpu")),
        "num_clips": cfg.data_bench.num_clips,
        "decode_threads": cfg.data_bench.decode_threads,
        "rows": rows,
        "targets": data_targets(rows),
        **environment(),
    }


DATA_COLUMNS = {
    "dataset": "dataset",
    "sources": "sources",
    "size": "clip HxW",
    "reader": "reader",
    "workers": "workers",
    "clips": "clips",
    "clips_per_s": "clips/s",
    "vs_raw": "vs raw",
    "vs_full": "vs full-res",
}
