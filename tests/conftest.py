"""Shared fixtures: wandb off, a data folder for the synthetic dataset, the sample videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _quiet_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """``paths.data_dir`` for tests: the synthetic dataset is generated here once."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def samples() -> Path:
    """The shared sample videos (realdata tier)."""
    root = os.environ.get("VIDINPAINT_SAMPLES")
    if not root or not Path(root).is_dir():
        pytest.skip("set VIDINPAINT_SAMPLES to the sample videos folder")
    return Path(root)
