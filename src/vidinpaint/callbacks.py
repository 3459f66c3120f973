"""Lightning callbacks of vidinpaint runs."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, RichProgressBar

log = logging.getLogger(__name__)


class SaveLastOnException(Callback):
    """Writes ``<dirpath>/last.ckpt`` when fitting stops on an exception (Ctrl-C, SIGTERM,
    an error), so that ``ckpt_path=last`` resumes at the step reached. Unlike Lightning's
    ``OnExceptionCheckpoint``, the file is kept after a clean finish."""

    def __init__(self, dirpath: str | Path) -> None:
        self.path = Path(dirpath) / "last.ckpt"

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        trainer.save_checkpoint(self.path)
        log.warning(
            "%s at step %d: saved %s (resume with ckpt_path=last)",
            type(exception).__name__,
            trainer.global_step,
            self.path,
        )


class ProgressBar(RichProgressBar):
    """Rich progress bar that shows the training losses without a host-device sync per step.

    Values logged with ``prog_bar=True`` are copied to the host after every batch (a CUDA
    sync); the systems log their step losses for the loggers only, and this bar reads those
    (``train/loss*`` in ``trainer.callback_metrics``, device tensors) once every
    ``losses_every`` steps, showing the last values in between.
    """

    def __init__(self, losses_every: int = 50, **kwargs) -> None:
        super().__init__(**kwargs)
        if losses_every < 1:
            raise ValueError(f"losses_every must be >= 1, got {losses_every}")
        self.losses_every = losses_every
        self._losses: dict[str, float] = {}
        self._read_at = -1

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        step = trainer.global_step
        if trainer.training and step % self.losses_every == 0 and step != self._read_at:
            self._read_at = step
            self._losses = {
                key.removeprefix("train/"): float(value)
                for key, value in trainer.callback_metrics.items()
                if key.startswith("train/loss")
            }
        return {**super().get_metrics(trainer, pl_module), **self._losses}
