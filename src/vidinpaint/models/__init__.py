"""The method table: every inpainting method by name, what system runs it and what it needs.

``METHODS[name]`` is a ``Method``: its family (``trained`` on a dataset by vidinpaint-train,
``fitted`` on the one video it inpaints, ``classic`` without learning), its system class
(imported on first use) and the size multiples its networks need. ``conf/model/<name>.yaml``
holds a method's settings and ``conf/method/<name>.yaml`` selects it for vidinpaint-inpaint;
the entry points ask this table, never a list of their own.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidinpaint.errors import UserError

TRAINED, FITTED, CLASSIC = "trained", "fitted", "classic"
FAMILIES = {
    TRAINED: "trained on a dataset (vidinpaint-train)",
    FITTED: "fitted on the video it inpaints",
    CLASSIC: "a classic fill without learning",
}


@dataclass(frozen=True)
class Method:
    """One row of the table.

    Attributes:
        name: the method's name (``model=<name>``, ``method=<name>``).
        family: ``trained``, ``fitted`` or ``classic``.
        system: dotted path of the system class (the config's ``_target_``).
        pixel_multiple: H and W must be multiples of this (times the 3DCN ratio r when
            ``uses_3dcn``).
        uses_3dcn: the AAAI'19 3DCN runs at H/r x W/r and, with ``temporal_stride``, halves
            time twice (clip lengths in multiples of 4).
    """

    name: str
    family: str
    system: str
    pixel_multiple: int = 1
    uses_3dcn: bool = False

    @property
    def trainable(self) -> bool:
        """vidinpaint-train can fit it on a dataset."""
        return self.family == TRAINED

    def system_class(self) -> type:
        module, name = self.system.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)

    def multiples(self, ratio: int = 2, temporal_stride: bool = False) -> tuple[int, int]:
        """(frames, pixels): what clip lengths and H, W must be multiples of."""
        if not self.uses_3dcn:
            return 1, self.pixel_multiple
        return (4 if temporal_stride else 1), self.pixel_multiple * ratio


COMPLETION = "vidinpaint.models.completion.CompletionSystem"
INTERNAL = "vidinpaint.models.internal.InternalLearningSystem"
CLASSIC_SYSTEM = "vidinpaint.models.classic.ClassicSystem"
# the AAAI'19 networks halve H, W twice (the 3DCN at H/r x W/r); the ICCV'19 skip net five times
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("cn3d", TRAINED, COMPLETION, pixel_multiple=4, uses_3dcn=True),
        Method("combcn", TRAINED, COMPLETION, pixel_multiple=4, uses_3dcn=True),
        Method("cn2d", TRAINED, COMPLETION, pixel_multiple=4),
        Method("dip", FITTED, INTERNAL, pixel_multiple=64),
        Method("dip_vid", FITTED, INTERNAL, pixel_multiple=64),
        Method("dip_vid_3dcn", FITTED, INTERNAL, pixel_multiple=64),
        Method("dip_vid_flow", FITTED, INTERNAL, pixel_multiple=64),
        Method("telea", CLASSIC, CLASSIC_SYSTEM),
        Method("propagate", CLASSIC, CLASSIC_SYSTEM),
    )
}


def names(family: str) -> tuple[str, ...]:
    """The methods of one family, in table order."""
    return tuple(name for name, method in METHODS.items() if method.family == family)


def method(name: str) -> Method:
    """The table's row for ``name``; an unknown name is a one-line error."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}: one of {', '.join(METHODS)}")
    return METHODS[name]


def check_trainable(name: str) -> None:
    """vidinpaint-train refuses, in one line, a method it cannot train."""
    row = method(name)
    if not row.trainable:
        raise UserError(
            f"model={name} is {FAMILIES[row.family]}: vidinpaint-train trains "
            f"{', '.join(names(TRAINED))} (run it with vidinpaint-inpaint method={name})"
        )


def build_system(model: Mapping[str, Any]) -> Any:
    """The system of a ``conf/model`` node (its ``method`` looked up in the table)."""
    import hydra

    row = method(model["method"])
    if model.get("_target_", row.system) != row.system:
        raise UserError(f"model._target_ for method={row.name} must be {row.system}")
    return hydra.utils.instantiate(model)


def load_trained(path: str | Path, expected: str | None = None) -> Any:
    """The system a vidinpaint-train checkpoint holds (class from the table, on the CPU);
    with ``expected``, an error unless it holds that method."""
    from vidinpaint import checkpoints

    hparams = checkpoints.read_checkpoint(path).get("hyper_parameters") or {}
    name = hparams.get("method")
    if name not in names(TRAINED):
        raise UserError(f"checkpoint {path} holds no vidinpaint-train method (method={name})")
    if expected is not None and name != expected:
        raise UserError(f"checkpoint {path} holds method={name}, not {expected}")
    return checkpoints.load_system(METHODS[name].system_class(), path)
