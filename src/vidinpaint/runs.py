"""What the entry points share: resolvers, building from configs, run outputs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import hydra
import torch
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

from vidinpaint.atomic import atomic_path
from vidinpaint.checkpoints import read_checkpoint
from vidinpaint.metrics import frame_difference
from vidinpaint.models import speed
from vidinpaint.video_write import hstack_panel, write_video

log = logging.getLogger(__name__)


def wandb_offline() -> bool:
    """wandb runs offline unless ``WANDB_MODE=online`` or an API key is configured."""
    mode = os.environ.get("WANDB_MODE", "")
    if mode:
        return mode != "online"
    return not os.environ.get("WANDB_API_KEY")


OmegaConf.register_new_resolver("wandb_offline", wandb_offline, replace=True)
# trainer=cpu's precision: bf16-mixed on a CPU with bf16 units, else 32-true (models/speed.py)
OmegaConf.register_new_resolver("cpu_precision", speed.cpu_precision, replace=True)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Builds every ``_target_`` entry of a callbacks/logger group (``None`` entries skipped)."""
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node and "_target_" in node]


def finish_loggers(loggers: list[Logger]) -> None:
    """Closes each wandb run: the jobs of a Hydra multirun share one process, and without this
    every later job would log into the first job's run."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def callbacks_and_loggers(cfg: DictConfig) -> tuple[list[Callback], list[Logger]]:
    """The run's callbacks and loggers (the LR monitor only where there is a logger)."""
    callbacks, loggers = (
        instantiate_group(cfg.get("callbacks")),
        instantiate_group(cfg.get("logger")),
    )
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return callbacks, loggers


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """``last`` -> the newest of ``<run dir>/checkpoints/last.ckpt`` and the checkpoints a SLURM
    requeue writes (``<run dir>/hpc_ckpt_<n>.ckpt``, trainer=slurm), if any; a path must
    exist."""
    if not ckpt_path:
        return None
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        found = [p for p in (last, *output_dir.glob("hpc_ckpt_*.ckpt")) if p.is_file()]
        if found:
            newest = max(found, key=lambda p: p.stat().st_mtime_ns)
            log.info("resuming from %s", newest)
            return str(newest)
        log.warning("ckpt_path=last but %s does not exist: starting from scratch", last)
        return None
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    return ckpt_path


def fitted_step(trainer: Trainer, output_dir: Path) -> int:
    """The global step the fit reached. Spawned DDP ranks (``trainer=ddp_sim``, ddp_spawn) hand
    the weights back to this process but not the loop's progress: then it is read from the
    run's last checkpoint."""
    last = output_dir / "checkpoints" / "last.ckpt"
    if trainer.global_step or not last.is_file():
        return trainer.global_step
    return int(read_checkpoint(last)["global_step"])


def git_sha() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_json(path: Path, data: dict) -> None:
    """Writes ``data`` as JSON atomically (temp file, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v.item() if isinstance(v, torch.Tensor) else v)
        for k, v in sorted(metrics.items())
        if isinstance(v, (int, float, torch.Tensor)) and "/" in k
    }


def write_metrics(output_dir: Path, metrics: dict[str, float], **info: Any) -> dict[str, Any]:
    """Writes ``metrics.json``: flat ``<stage>/<metric>`` keys plus run information."""
    record = {**metrics, **info, "git_sha": git_sha()}
    write_json(output_dir / "metrics.json", record)
    return record


def print_metrics(metrics: dict[str, float], title: str) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}")
    Console().print(table)


def first_batches(datamodule: LightningDataModule, split: str, count: int) -> list[dict]:
    """The first ``count`` batches of ``split`` ("val" or "test") as the model receives them
    (``datamodule.on_after_batch_transfer``), read in this process: no new worker processes at
    the end of a run, and a datamodule set up only in spawned DDP ranks is set up here."""
    datamodule.setup("validate" if split == "val" else "test")
    loader = getattr(datamodule, f"{split}_dataloader")()
    single = DataLoader(loader.dataset, batch_size=loader.batch_size, num_workers=0)
    return [datamodule.on_after_batch_transfer(batch, 0) for batch, _ in zip(single, range(count))]


@torch.no_grad()
def write_samples(
    system: LightningModule,
    batches: list[dict],
    output_dir: Path,
    loggers: list[Logger],
    fps: float = 8.0,
) -> list[Path]:
    """Renders sample panels of the first clip of each batch into ``samples/``.

    ``<i>_<columns>.mp4``: input | outputs | target; ``<i>_<columns>_diff.mp4``: the same
    columns as frame differences |x_{t+1} - x_t| x 4 (AAAI'19 Fig. 4: flicker shows up as
    bright texture inside the hole). Both are logged to wandb when it is a logger.
    """
    system.eval()
    paths = []
    for i, batch in enumerate(batches):
        batch = {
            k: v.to(system.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
        }
        columns = system.panel_columns(batch)
        videos = [video[:1].cpu() for video in columns.values()]
        diffs = [(frame_difference(v) * 4).clamp(0, 1).expand(-1, -1, 3, -1, -1) for v in videos]
        name = f"{i:02d}_{'-'.join(columns)}"
        for suffix, panel in (
            ("", hstack_panel([v[0] for v in videos])),
            ("_diff", hstack_panel([d[0] for d in diffs])),
        ):
            path = output_dir / "samples" / f"{name}{suffix}.mp4"
            write_video(path, panel, fps)
            paths.append(path)
            for logger in loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_video(f"samples{suffix}", [str(path)], caption=[" | ".join(columns)])
    return paths
