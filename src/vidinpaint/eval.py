"""vidinpaint-eval: score a trained checkpoint, or a method that needs none, on a dataset split.

    vidinpaint-eval ckpt=outputs/train/runs/<time>/checkpoints/last.ckpt data=vw300 split=test
    vidinpaint-eval model=dip_vid_flow data=frames data.root=DAVIS schedule=fast

Writes metrics.json (``<split>/l1_hole``, ``psnr``, ``ssim``, ``ewarp``) and samples/*.mp4.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig
from rich.progress import track

from vidinpaint import CONF_DIR, checkpoints, checks, errors, evaluation, runs
from vidinpaint.models.external import CompletionSystem

log = logging.getLogger(__name__)

COMMAND = "vidinpaint-eval"


def evaluate_by_inpainting(system: Any, datamodule: Any, split: str) -> dict[str, float]:
    """Mean scores of ``system.inpaint`` over every clip of ``datamodule``'s ``split``
    (internal methods)."""
    loader = datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()
    totals: dict[str, float] = {}
    count = 0
    for raw in track(loader, f"evaluating on {split}"):
        batch = datamodule.on_after_batch_transfer(raw, 0)
        for video, mask in zip(batch["video"], batch["mask"], strict=True):
            pred = system.inpaint(video, mask, progress=False)
            scores = evaluation.score_clips(pred[None], video[None], mask[None], flow_method="dis")
            for key, value in scores.items():
                totals[key] = totals.get(key, 0.0) + float(value)
            count += 1
    return {f"{split}/{k}": v / count for k, v in totals.items()}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    output_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True)
    if cfg.split not in ("val", "test"):
        raise errors.UserError(f"split must be val or test, got {cfg.split!r}")
    if not cfg.ckpt and not cfg.get("model"):
        raise errors.UserError("give ckpt=PATH (a vidinpaint-train checkpoint) or model=<method>")
    checks.check_loader(cfg.data)
    if cfg.ckpt:
        system = checkpoints.load_system(CompletionSystem, cfg.ckpt)
        checks.check_clip_shape(system.hparams, cfg.data.size, cfg.data.clip_len)
    else:
        checks.check_clip_shape(cfg.model, cfg.data.size, cfg.data.clip_len)
    datamodule = hydra.utils.instantiate(cfg.data)
    callbacks, loggers = runs.callbacks_and_loggers(cfg)
    if cfg.ckpt:
        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        run = trainer.validate if cfg.split == "val" else trainer.test
        metrics = runs.scalar_metrics(run(system, datamodule=datamodule)[0])
        method, step = system.hparams.method, system.global_step
    else:
        system = hydra.utils.instantiate(cfg.model)
        datamodule.setup("validate" if cfg.split == "val" else "test")
        metrics = evaluate_by_inpainting(system, datamodule, cfg.split)
        method, step = cfg.model.method, 0
    runs.write_metrics(
        output_dir,
        metrics,
        method=method,
        dataset=cfg.data.name,
        global_step=step,
        split=cfg.split,
        ckpt=str(cfg.ckpt),
    )
    runs.print_metrics(metrics, f"{method} on {cfg.data.name}/{cfg.split}")
    if cfg.num_samples and cfg.ckpt:
        with torch.no_grad():
            batches = runs.first_batches(datamodule, cfg.split, cfg.num_samples)
            runs.write_samples(system, batches, output_dir, loggers)
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
@errors.one_line_errors(COMMAND)
def hydra_main(cfg: DictConfig) -> None:
    evaluate(cfg)


def main() -> None:
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
