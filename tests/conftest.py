"""Shared fixtures: composing the real configs, a small synthetic dataset, sample videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

import vidinpaint.runs  # noqa: F401  (registers the config resolvers)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# tiny clips: every recipe runs in seconds on a CPU
TINY = ["data.clip_len=4", "data.size=[32,32]", "data.batch_size=2", "data.num_workers=0"]


@pytest.fixture(autouse=True)
def _quiet_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


def compose_config(name: str, overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """Composes ``conf/<name>.yaml`` as the entry point would, with ``paths.output_dir`` set."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(name, overrides=overrides)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
    return cfg


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
