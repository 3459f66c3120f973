"""Lightning callbacks of vidinpaint runs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, RichProgressBar

log = logging.getLogger(__name__)


class SaveLast(Callback):
    """Writes ``<dirpath>/last.ckpt`` when fitting ends: after its last step (ModelCheckpoint
    writes every ``checkpoint_every`` steps only, so a run of 250 steps would otherwise keep
    step 200) and when it stops on an exception (Ctrl-C, SIGTERM, an error), so that
    ``ckpt_path=last`` resumes at the step reached. Unlike Lightning's
    ``OnExceptionCheckpoint``, the file is kept after a clean finish."""

    def __init__(self, dirpath: str | Path) -> None:
        self.path = Path(dirpath) / "last.ckpt"

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step > 0 and not trainer.fast_dev_run:
            trainer.save_checkpoint(self.path)

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


class DataWait(Callback):
    """Logs ``perf/data_wait_fraction``, the share of training time the loop spent between
    the end of one batch and the start of the next (waiting for the loader and the
    host-to-device copy), and ``perf/steps_per_s``, averaged over the run after ``skip``
    warm-up steps (worker start-up); validation time is left out. Logged every
    ``log_every_n_steps`` steps and at the last one (a log is a host-device copy); the last
    values land in metrics.json."""

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self._steps = 0
        self._waited = 0.0
        self._busy = 0.0
        self._started: float | None = None
        self._last_end: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._started = time.perf_counter()
        self._steps += 1
        if self._steps > self.skip + 1 and self._last_end is not None:
            self._waited += self._started - self._last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last_end = time.perf_counter()
        if self._steps <= self.skip + 1:
            return
        self._busy += self._last_end - self._started
        last = trainer.global_step == trainer.max_steps
        if trainer.global_step % trainer.log_every_n_steps == 0 or last:
            total = self._waited + self._busy
            pl_module.log("perf/data_wait_fraction", self._waited / total)
            pl_module.log("perf/steps_per_s", (self._steps - self.skip - 1) / total)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._last_end = None  # the next training batch follows validation, not the loader


class LastValidationStep(Callback):
    """Remembers the global step of the last full validation while fitting (``step``; None
    before the first), so that a run whose last step was validated need not validate the same
    weights again afterwards."""

    def __init__(self) -> None:
        self.step: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.step = trainer.global_step
