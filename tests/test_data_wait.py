"""callbacks.DataWait: the share of training time spent waiting for the loader, measured on
a simulated clock (loading and computing advance it; no wall time is read, so a busy machine
cannot change the figures)."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from vidinpaint import callbacks
from vidinpaint.callbacks import DataWait


class Clock:
    """Seconds that pass only when ``advance`` is called."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SlowItems(Dataset):
    def __init__(self, clock: Clock, delay: float) -> None:
        self.clock, self.delay = clock, delay

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> torch.Tensor:
        self.clock.advance(self.delay)
        return torch.ones(4)


class SlowStep(L.LightningModule):
    """A step that takes ``step_time`` seconds of (host) compute."""

    def __init__(self, clock: Clock, step_time: float) -> None:
        super().__init__()
        self.clock, self.step_time = clock, step_time
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        self.clock.advance(self.step_time)
        return (self.weight * batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def data_wait_fraction(monkeypatch, load_time: float, step_time: float) -> float:
    clock = Clock()
    monkeypatch.setattr(callbacks, "time", SimpleNamespace(perf_counter=clock))
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
    loader = DataLoader(SlowItems(clock, load_time), batch_size=1, num_workers=0)
    trainer.fit(SlowStep(clock, step_time), loader)
    return float(trainer.callback_metrics["perf/data_wait_fraction"])


def test_data_wait_fraction_is_the_loader_share(monkeypatch):
    """Loading 300 ms and computing 100 ms per step waits 3/4 of the time; without loading
    the loop waits for nothing."""
    assert data_wait_fraction(monkeypatch, 0.3, 0.1) == pytest.approx(0.75)
    assert data_wait_fraction(monkeypatch, 0.0, 0.1) == 0
