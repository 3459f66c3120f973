"""Lightning callbacks of vidinpaint runs."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

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
