"""Checkpoints are data, not code: every checkpoint is read with ``torch.load(weights_only=True)``
(tensors, containers, numbers, strings) plus the few types Lightning stores in one: omegaconf
containers when hyperparameters came from a config, and paths. A file that would run code when
unpickled, or is no checkpoint at all, is a UserError naming the file."""

from __future__ import annotations

import collections
import contextlib
import pathlib
import pickle
import typing
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch
from lightning.pytorch import LightningModule
from omegaconf import DictConfig, ListConfig
from omegaconf.base import ContainerMetadata, Metadata
from omegaconf.nodes import AnyNode, BooleanNode, BytesNode, FloatNode, IntegerNode, StringNode

from vidinpaint.errors import UserError

System = TypeVar("System", bound=LightningModule)

# what torch's weights-only unpickler may build besides tensors and plain containers
SAFE_GLOBALS = [
    DictConfig,
    ListConfig,
    ContainerMetadata,
    Metadata,
    AnyNode,
    BooleanNode,
    BytesNode,
    FloatNode,
    IntegerNode,
    StringNode,
    typing.Any,
    collections.defaultdict,
    dict,
    list,
    tuple,
    set,
    int,
    float,
    str,
    bool,
    pathlib.PosixPath,
    pathlib.WindowsPath,
    pathlib.PurePosixPath,
    pathlib.PureWindowsPath,
]

# what torch.load and Lightning raise on a file that is no (loadable) checkpoint
LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, KeyError)


def _reason(err: BaseException) -> str:
    """One line for why a checkpoint could not be loaded."""
    text = str(err)
    if "Weights only load failed" in text:
        found = [line for line in text.splitlines() if "WeightsUnpickler error:" in line]
        detail = found[0].split("error:", 1)[1].strip().split(". ")[0] if found else ""
        return f"it holds code, not only weights, and was not run ({detail})"
    if isinstance(err, KeyError):
        return f"not a Lightning checkpoint (no {err.args[0]!r} entry)"
    lines = text.strip().splitlines()
    return f"not a PyTorch checkpoint ({lines[0] if lines else type(err).__name__})"


@contextmanager
def loading(path: str | Path, what: str = "checkpoint") -> Iterator[None]:
    """Checks ``path`` is a checkpoint file (torch.save writes zip archives) and allows the safe
    globals while it is read; a failed load becomes a one-line UserError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    if not zipfile.is_zipfile(path):
        raise UserError(f"cannot load {what} {path}: not a PyTorch checkpoint (not a zip archive)")
    try:
        with allow_lightning_types():
            yield
    except LOAD_ERRORS as err:
        raise UserError(f"cannot load {what} {path}: {_reason(err)}") from err


def read_checkpoint(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict (on the CPU, memory-mapped)."""
    with loading(path, what):
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"cannot load {what} {path}: not a Lightning checkpoint (no 'state_dict')")
    return ckpt


def load_system(cls: type[System], path: str | Path, **kwargs: Any) -> System:
    """``cls.load_from_checkpoint(path)`` on the CPU, weights only."""
    with loading(path):
        return cls.load_from_checkpoint(path, map_location="cpu", weights_only=True, **kwargs)


def allow_lightning_types() -> contextlib.AbstractContextManager:
    """Within: ``weights_only`` loads (e.g. Lightning resuming ``ckpt_path``) accept
    SAFE_GLOBALS."""
    return torch.serialization.safe_globals(SAFE_GLOBALS)
