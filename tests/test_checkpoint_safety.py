"""Checkpoints are data, not code: a crafted pickle is refused by every loading path (one line,
its code never runs); a real checkpoint, also one holding omegaconf hyperparameters, loads."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import lightning
import pytest
import torch
from omegaconf import OmegaConf

from helpers import TINY, CreatesFile, compose_config
from vidinpaint import checkpoints, runs
from vidinpaint.checkpoints import load_system, read_checkpoint
from vidinpaint.errors import UserError
from vidinpaint.models.completion import CompletionSystem
from vidinpaint.train import train


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code_ran"


@pytest.fixture
def crafted(tmp_path, marker) -> Path:
    """A Lightning-shaped checkpoint (zip archive, as torch.save writes) with code inside."""
    path = tmp_path / "crafted.ckpt"
    torch.save(
        {
            "state_dict": {"cn3d.weight": CreatesFile(marker)},
            "hyper_parameters": {"method": "cn3d"},
            "pytorch-lightning_version": lightning.__version__,
            "global_step": 3,
        },
        path,
    )
    return path


def lightning_checkpoint(path: Path, system: CompletionSystem, **hyper_parameters) -> Path:
    """The entries Lightning's load_from_checkpoint reads, as ``trainer.save_checkpoint``
    writes them."""
    torch.save(
        {
            "state_dict": system.state_dict(),
            "hyper_parameters": {**system.hparams, **hyper_parameters},
            "hparams_name": "kwargs",
            "pytorch-lightning_version": lightning.__version__,
            "global_step": 7,
            "epoch": 0,
        },
        path,
    )
    return path


def test_the_crafted_file_runs_code_when_loaded_unsafely(crafted, marker):
    torch.load(crafted, weights_only=False)
    assert marker.exists()


def test_legacy_pickle_is_refused_unread(tmp_path, marker):
    path = tmp_path / "legacy.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": CreatesFile(marker)}))
    with pytest.raises(UserError, match="not a PyTorch checkpoint"):
        read_checkpoint(path)
    assert not marker.exists()


def refuse_read(path: Path, tmp_path: Path) -> None:
    read_checkpoint(path)


def refuse_load_cn3d(path: Path, tmp_path: Path) -> None:
    CompletionSystem(method="combcn").load_cn3d(path)


def refuse_fitted_step(path: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(path.read_bytes())
    runs.fitted_step(SimpleNamespace(global_step=0), run_dir)


def refuse_load_system(path: Path, tmp_path: Path) -> None:
    load_system(CompletionSystem, path)  # vidinpaint-eval and vidinpaint-inpaint ckpt=


def refuse_resume(path: Path, tmp_path: Path) -> None:
    train(compose_config("train", [*TINY, "logger=none", f"ckpt_path={path}"], tmp_path / "r"))


@pytest.mark.parametrize(
    "load",
    [refuse_read, refuse_load_cn3d, refuse_fitted_step, refuse_load_system, refuse_resume],
)
def test_crafted_checkpoint_is_refused_in_one_line(load, crafted, marker, tmp_path):
    with pytest.raises(UserError) as info:
        load(crafted, tmp_path)
    message = str(info.value)
    assert "\n" not in message and "holds code, not only weights" in message
    assert ("crafted.ckpt" in message or "last.ckpt" in message) and "exec" in message
    assert not marker.exists()


def test_checkpoint_with_omegaconf_hyperparameters_loads(tmp_path):
    """Hydra hands list options to a system as ListConfig, which Lightning then stores: the
    allow-list is what makes such a checkpoint load with weights_only."""
    system = CompletionSystem(method="cn2d")
    for param in system.parameters():
        torch.nn.init.normal_(param)
    mean = OmegaConf.create([0.25, 0.5, 0.75])
    path = lightning_checkpoint(tmp_path / "oc.ckpt", system, mean_pixel=mean)
    with pytest.raises(pickle.UnpicklingError, match="ListConfig"):
        torch.load(path, weights_only=True)
    loaded = load_system(CompletionSystem, path)
    assert list(loaded.hparams.mean_pixel) == [0.25, 0.5, 0.75]
    for key, value in system.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert read_checkpoint(path)["global_step"] == 7
    with checkpoints.allow_lightning_types():
        assert torch.load(path, weights_only=True)["hyper_parameters"]["mean_pixel"] == mean


def test_load_cn3d_takes_the_3dcn_weights(tmp_path):
    pretrained = CompletionSystem(method="cn3d")
    for param in pretrained.cn3d.parameters():
        torch.nn.init.normal_(param)
    path = lightning_checkpoint(tmp_path / "cn3d.ckpt", pretrained)
    combcn = CompletionSystem(method="combcn")
    combcn.load_cn3d(path)
    for key, value in pretrained.cn3d.state_dict().items():
        assert torch.equal(combcn.cn3d.state_dict()[key], value), key


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "not a PyTorch checkpoint"),
        (b"epoch=3 step=100\n", "not a PyTorch checkpoint"),
        ("tensors", "not a Lightning checkpoint (no 'state_dict')"),
    ],
)
def test_files_that_are_no_checkpoint_are_one_line(content, reason, tmp_path):
    path = tmp_path / "bad.ckpt"
    if content == "tensors":
        torch.save({"weight": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_checkpoint(path)
    with pytest.raises(UserError, match="cannot load checkpoint"):
        load_system(CompletionSystem, path)
