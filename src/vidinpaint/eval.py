"""vidinpaint-eval: score a trained checkpoint, or a method that needs none, on a dataset split.

    vidinpaint-eval ckpt=outputs/train/runs/<time>/checkpoints/last.ckpt data=vw300 split=test
    vidinpaint-eval model=dip_vid_flow data=frames data.root=DAVIS schedule=fast
    vidinpaint-eval ckpt=... data=folder data.root=my_videos split=all data.size=[64,64]

``split``: ``val``, ``test`` or ``all`` (every clip of the data, e.g. a folder of your own
videos, with the same fixed masks for every checkpoint and method). A checkpoint's holes are
filled with the mean pixel it was trained with, whatever data it scores.

Writes metrics.json (``<split>/l1_hole``, ``psnr``, ``ssim``, ``ewarp``) and samples/*.mp4;
with ``logger=wandb`` also a table of per-clip results (``<split>/clips``, dashboards.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig
from rich.progress import track

from vidinpaint import CONF_DIR, checks, dashboards, errors, evaluation, models, runs
from vidinpaint.models import speed

log = logging.getLogger(__name__)

COMMAND = "vidinpaint-eval"
SPLITS = ("val", "test", "all")


def inpaint_clips(
    system: Any, datamodule: Any, split: str, method: str
) -> tuple[list[dict[str, float]], list[dict[str, Any]]]:
    """``system.inpaint`` on every clip of ``datamodule``'s ``split``: per clip, the scores of
    ``evaluation.score_clips`` and a dashboard row (dashboards.clip_row, with the hole PSNR)."""
    scores, rows = [], []
    loader = getattr(datamodule, f"{split}_dataloader")()
    for raw in track(loader, f"evaluating on {split}"):
        batch = datamodule.on_after_batch_transfer(raw, 0)
        clips = zip(batch["video"], batch["mask"], batch["path"], batch["start"], strict=True)
        for video, mask, path, start in clips:
            begin = time.perf_counter()
            pred = system.inpaint(video, mask, progress=False)[None]
            seconds = time.perf_counter() - begin
            clip = evaluation.score_clips(pred, video[None], mask[None], flow_method="dis")
            scores.append({k: float(v) for k, v in clip.items()})
            ewarps = [scores[-1]["ewarp"]] if "ewarp" in scores[-1] else None
            name = evaluation.clip_name(path, start)
            rows += evaluation.clip_rows(
                pred, video[None], mask[None], [name], method, seconds, ewarps
            )
    return scores, rows


def score_checkpoint(
    system: L.LightningModule, datamodule: Any, trainer: L.Trainer, split: str
) -> dict[str, Any]:
    """The checkpoint's validation (or test) metrics on ``split``, keyed ``<split>/...``.

    The holes are filled with the checkpoint's training mean pixel (the network's input), not
    the mean of the data it scores. ``all`` runs the validation loop over every clip."""
    datamodule.setup("test" if split == "test" else "validate")
    datamodule.mean_pixel = tuple(float(v) for v in system.mean_pixel)
    if split == "test":
        return trainer.test(system, datamodule=datamodule)[0]
    if split == "all":
        datamodule.datasets["val"] = datamodule.datasets["all"]
    scores = trainer.validate(system, datamodule=datamodule)[0]
    return {f"{split}/{key.split('/', 1)[1]}": value for key, value in scores.items()}


def log_clip_table(
    loggers: list, split: str, rows: list[dict[str, Any]], scores: dict[str, float]
) -> None:
    """The per-clip table ``<split>/clips`` (and ``scores``, scalars not yet logged) in every
    wandb logger of the run."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.log({**scores, f"{split}/clips": dashboards.clip_table(rows)})


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    output_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True)
    errors.check_choice("split", cfg.split, SPLITS, error=errors.UserError)
    if not cfg.ckpt and not cfg.get("model"):
        raise errors.UserError("give ckpt=PATH (a vidinpaint-train checkpoint) or model=<method>")
    checks.check_loader(cfg.data)
    if cfg.ckpt:
        system = models.load_trained(cfg.ckpt)
        checks.check_clip_shape(system.hparams, cfg.data.size, cfg.data.clip_len)
    else:
        checks.check_clip_shape(cfg.model, cfg.data.size, cfg.data.clip_len)
    datamodule = hydra.utils.instantiate(cfg.data)
    callbacks, loggers = runs.callbacks_and_loggers(cfg)
    if cfg.ckpt:
        # split=all scores every clip, whatever the schedule's limit on validation batches
        every_clip = {"limit_val_batches": 1.0} if cfg.split == "all" else {}
        trainer = hydra.utils.instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, **every_clip
        )
        table = any(isinstance(logger, WandbLogger) for logger in loggers)
        # one process: the validation / test steps collect the rows while scoring; several:
        # each holds its share of the clips, so the clips are inpainted again for the table
        collect = table and trainer.world_size == 1
        system.clip_rows = [] if collect else None
        scores = runs.scalar_metrics(score_checkpoint(system, datamodule, trainer, cfg.split))
        method, step = system.hparams.method, system.global_step
        if table:
            rows = (
                system.clip_rows
                if collect
                else inpaint_clips(system, datamodule, cfg.split, method)[1]
            )
            log_clip_table(loggers, cfg.split, rows, {})
    else:
        system = models.build_system(cfg.model)
        datamodule.setup("test" if cfg.split == "test" else "validate")
        method, step = cfg.model.method, 0
        clips, rows = inpaint_clips(system, datamodule, cfg.split, method)
        scores = {f"{cfg.split}/{k}": sum(c[k] for c in clips) / len(clips) for k in clips[0]}
        log_clip_table(loggers, cfg.split, rows, scores)
    runs.write_metrics(
        output_dir,
        scores,
        method=method,
        dataset=cfg.data.name,
        global_step=step,
        split=cfg.split,
        ckpt=str(cfg.ckpt),
    )
    runs.print_metrics(scores, f"{method} on {cfg.data.name}/{cfg.split}")
    if cfg.num_samples and cfg.ckpt:
        with torch.no_grad():
            batches = runs.first_batches(datamodule, cfg.split, cfg.num_samples)
            runs.write_samples(system, batches, output_dir, loggers)
    runs.finish_loggers(loggers)
    return scores


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
@errors.one_line_errors(COMMAND)
def hydra_main(cfg: DictConfig) -> None:
    log.info(speed.keep_freed_memory())
    evaluate(cfg)


def main() -> None:
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
