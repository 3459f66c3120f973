"""Helpers shared by the tests: composing the real configs as the entry points do, and tiny
videos to read."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch import Callback
from omegaconf import DictConfig, open_dict

import vidinpaint.runs  # noqa: F401  (registers the config resolvers)
from vidinpaint.video_write import write_video

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# tiny clips: every recipe runs in seconds on a CPU
TINY = ["data.clip_len=4", "data.size=[32,32]", "data.batch_size=2", "data.num_workers=0"]


def compose_config(name: str, overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """Composes ``conf/<name>.yaml`` as the entry point would, with ``paths.output_dir`` set."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(name, overrides=overrides)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
    return cfg


class ClipRecorder(Callback):
    """Test callback: each rank writes the (path, start) of its training clips to
    ``<dirpath>/clips_rank<r>.json`` and its final weights to ``<dirpath>/weights_rank<r>.pt``
    at the end of fitting."""

    def __init__(self, dirpath: str):
        self.dirpath, self.clips = Path(dirpath), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.clips += [[p, int(s)] for p, s in zip(batch["path"], batch["start"], strict=True)]

    def on_train_end(self, trainer, pl_module):
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"clips_rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.clips))
        torch.save(pl_module.state_dict(), self.dirpath / f"weights_rank{trainer.global_rank}.pt")


def train_command(run: Path, data_dir: Path, *overrides: str) -> list[str]:
    """``vidinpaint-train`` as a subprocess on tiny synthetic clips into ``run``, each rank
    recording its clips and final weights there (ClipRecorder; needs ``tests/`` on
    PYTHONPATH)."""
    return [
        sys.executable,
        "-m",
        "vidinpaint.train",
        "schedule=tiny",
        "logger=csv",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={run}",
        "+callbacks.clip_recorder._target_=helpers.ClipRecorder",
        f"+callbacks.clip_recorder.dirpath={run}",
        *TINY,
        *overrides,
    ]


class CreatesFile:
    """A crafted pickle payload: unpickling it runs code that creates ``path``."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return exec, (f"open({str(self.path)!r}, 'w').close()",)


def random_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth-ish random uint8 (T, H, W, 3) frames (blurred noise compresses well)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, height // 4 + 1, width // 4 + 1, 3), np.uint8)
    return np.stack(
        [cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames]
    )


def make_video(path: Path, num_frames: int = 16, height: int = 32, width: int = 32, seed: int = 0):
    """Write an mp4/avi of random frames; returns the path."""
    return write_video(path, random_frames(num_frames, height, width, seed), fps=25)
