"""vidinpaint-train: fit a method on a dataset, then evaluate it on the validation split.

vidinpaint-train                                   # 3DCN on the synthetic default data
vidinpaint-train experiment=quickstart             # the quickstart (also: make train)
vidinpaint-train model=combcn model.cn3d_ckpt=PATH data=vw300 data.root=DIR trainer=gpu
vidinpaint-train ckpt_path=last hydra.run.dir=RUN  # resume an interrupted run
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from vidinpaint import CONF_DIR, checkpoints, checks, errors, runs
from vidinpaint.callbacks import LastValidationStep
from vidinpaint.models import speed

log = logging.getLogger(__name__)

COMMAND = "vidinpaint-train"


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fits ``cfg.model`` on ``cfg.data``; writes checkpoints, metrics.json and samples."""
    output_dir = Path(cfg.paths.output_dir)
    checks.check_train(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    system = hydra.utils.instantiate(cfg.model)
    callbacks, loggers = runs.callbacks_and_loggers(cfg)
    last_validation = LastValidationStep()
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=[*callbacks, last_validation], logger=loggers or False
    )
    for logger in loggers:
        # resolved here: spawned DDP ranks cannot resolve Hydra's ${hydra:...} interpolations
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    with checkpoints.allow_lightning_types():
        trainer.fit(
            system,
            datamodule=datamodule,
            ckpt_path=runs.resolve_ckpt_path(cfg.ckpt_path, output_dir),
            weights_only=True,
        )
    metrics = runs.scalar_metrics(trainer.callback_metrics)
    # the fit's own validation at its last step already scored these weights
    validated = last_validation.step == trainer.global_step and trainer.global_step > 0
    if cfg.validate and not trainer.fast_dev_run and not validated:
        metrics.update(runs.scalar_metrics(trainer.validate(system, datamodule=datamodule)[0]))
    record = {
        "method": cfg.model.method,
        "dataset": cfg.data.name,
        "global_step": runs.fitted_step(trainer, output_dir),
        "seed": cfg.seed,
        **getattr(system, "protocol", {}),
        **getattr(datamodule, "protocol", {}),
    }
    if trainer.is_global_zero:
        runs.write_metrics(output_dir, metrics, **record)
        runs.print_metrics(metrics, f"{cfg.run_name}: step {record['global_step']}")
        if cfg.num_samples:
            batches = runs.first_batches(datamodule, "val", cfg.num_samples)
            runs.write_samples(system, batches, output_dir, loggers)
    runs.finish_loggers(loggers)
    return {**metrics, **record}


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
@errors.one_line_errors(COMMAND)
def hydra_main(cfg: DictConfig) -> float | None:
    log.info(speed.keep_freed_memory())
    return train(cfg).get("val/l1_hole")


def main() -> None:
    errors.run_command(COMMAND, hydra_main)


if __name__ == "__main__":
    main()
