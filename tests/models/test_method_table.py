"""The method table (``vidinpaint.models``): vidinpaint-inpaint and vidinpaint-eval build or load
every method's system through it."""

from __future__ import annotations

import lightning
import pytest
import torch

from helpers import compose_config
from vidinpaint import models
from vidinpaint.errors import UserError
from vidinpaint.inpaint import load_system


def save_trained(name: str, path) -> None:
    system = models.METHODS[name].system_class()(method=name)
    torch.save(
        {
            "state_dict": system.state_dict(),
            "hyper_parameters": dict(system.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )


@pytest.mark.parametrize("name", sorted(models.METHODS))
def test_inpaint_loads_every_method_through_the_table(name, tmp_path):
    row = models.METHODS[name]
    ckpt = tmp_path / f"{name}.ckpt"
    if row.trainable:
        save_trained(name, ckpt)
    overrides = [f"method={name}", "input=x", "mask=y", f"ckpt={ckpt}"]
    system, fitted = load_system(compose_config("inpaint", overrides))
    assert type(system) is row.system_class()
    assert system.method == name
    assert fitted == (row.family == models.FITTED)


@pytest.mark.parametrize("name", models.names(models.TRAINED))
def test_eval_loads_a_checkpoint_by_the_method_it_holds(name, tmp_path):
    save_trained(name, tmp_path / "c.ckpt")
    system = models.load_trained(tmp_path / "c.ckpt")
    assert type(system) is models.METHODS[name].system_class() and system.method == name
    other = "cn2d" if name != "cn2d" else "cn3d"
    with pytest.raises(UserError, match=f"holds method={name}, not {other}"):
        models.load_trained(tmp_path / "c.ckpt", expected=other)


@pytest.mark.parametrize("name", [*models.names(models.FITTED), *models.names(models.CLASSIC)])
def test_eval_builds_the_methods_without_a_checkpoint(name):
    cfg = compose_config("eval", [f"model={name}"])
    assert type(models.build_system(cfg.model)) is models.METHODS[name].system_class()


def test_an_unknown_method_and_an_untrainable_one_are_one_line_errors():
    with pytest.raises(UserError, match="unknown method 'cn4d': one of cn3d, combcn"):
        models.method("cn4d")
    with pytest.raises(UserError, match="model=telea is a classic fill without learning"):
        models.check_trainable("telea")
    models.check_trainable("combcn")


def test_size_multiples():
    assert models.METHODS["cn3d"].multiples(ratio=4, temporal_stride=True) == (4, 16)
    assert models.METHODS["combcn"].multiples(ratio=2) == (1, 8)
    assert models.METHODS["cn2d"].multiples(ratio=4, temporal_stride=True) == (1, 4)
    assert models.METHODS["dip_vid_flow"].multiples() == (1, 64)
