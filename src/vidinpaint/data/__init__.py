"""Data: clip index, decoding (decord, frame folders, .seq), dataset adapters, hole masks,
the ClipDataModule."""

from vidinpaint.data.adapters import (
    CaltechAdapter,
    FaceForensicsAdapter,
    FolderAdapter,
    FramesAdapter,
    SyntheticAdapter,
    VW300Adapter,
)
from vidinpaint.data.datamodule import ClipDataModule
from vidinpaint.data.masks import BoxMask, FileMask, FreeFormMask, MaskGenerator

__all__ = [
    "BoxMask",
    "CaltechAdapter",
    "ClipDataModule",
    "FaceForensicsAdapter",
    "FileMask",
    "FolderAdapter",
    "FramesAdapter",
    "FreeFormMask",
    "MaskGenerator",
    "SyntheticAdapter",
    "VW300Adapter",
]
