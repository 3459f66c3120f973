"""callbacks.DataWait: the share of training time spent waiting for the loader."""

from __future__ import annotations

import time

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from vidinpaint.callbacks import DataWait


class SlowItems(Dataset):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> torch.Tensor:
        time.sleep(self.delay)
        return torch.ones(4)


class SlowStep(L.LightningModule):
    """A step that takes ``step_time`` seconds of (host) compute."""

    def __init__(self, step_time: float) -> None:
        super().__init__()
        self.step_time = step_time
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        time.sleep(self.step_time)
        return (self.weight * batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def data_wait_fraction(load_time: float, step_time: float) -> float:
    trainer = L.Trainer(
        max_steps=12,
        callbacks=[DataWait(skip=2)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        accelerator="cpu",
    )
    loader = DataLoader(SlowItems(load_time), batch_size=1, num_workers=0)
    trainer.fit(SlowStep(step_time), loader)
    return float(trainer.callback_metrics["perf/data_wait_fraction"])


def test_data_wait_fraction_is_the_loader_share():
    """Loading 300 ms and computing 100 ms per step waits 3/4 of the time; without loading
    the wait is the loop's own overhead between batches (a few ms idle, up to a few tens of
    ms on an overloaded CPU)."""
    assert data_wait_fraction(0.3, 0.1) == pytest.approx(0.75, abs=0.1)
    assert data_wait_fraction(0.0, 0.1) < 0.35
