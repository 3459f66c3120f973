"""ClipDataModule: clips of clip_len frames at `size` from any adapter, with hole masks.

Built by `hydra.utils.instantiate(cfg.data)` (conf/data/*.yaml). Uses the index prepared by
`vidinpaint-prepare` when one with the same settings exists, otherwise indexes on the fly.
Stays map-style, so Lightning injects a DistributedSampler under DDP.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from vidinpaint.data.adapters import Adapter
from vidinpaint.data.augment import ClipAugmentation
from vidinpaint.data.dataset import ClipDataset, complete_batch
from vidinpaint.data.index import (
    SPLIT_BY,
    ClipIndex,
    build_index,
    cache_clips,
    index_settings,
    load_index,
    mean_pixel,
    save_index,
    settings_key,
)
from vidinpaint.data.masks import MaskGenerator, make_mask
from vidinpaint.errors import check_choice

log = logging.getLogger(__name__)


class ClipDataModule(L.LightningDataModule):
    """Train/val/test clips of one dataset.

    Batches (after on_after_batch_transfer) are dicts: video (B, T, 3, H, W) in [0, 1],
    mask (B, T, 1, H, W) (1 = hole), masked (B, T, 3, H, W) with holes = the training split's
    mean pixel, path (list[str]), start (LongTensor B). The loaders themselves yield uint8
    video and mask. After setup(): mean_pixel, index. Training masks are random; val and
    test masks are fixed per clip position by val_mask_seed (independent of the run seed).
    The test split is the adapter's own (FaceForensics test, Caltech set06-10); asking a
    dataset without one for it (test_dataloader) is an error. The ``all`` split
    (all_dataloader, ``vidinpaint-eval split=all``) is every clip of the index, with fixed
    masks like val and test.

    Args:
        name: dataset name (reported in metrics). root: dataset folder.
        adapter: finds videos and crop boxes. mask: hole generator (or its data/mask name).
        clip_len: frames per clip. clip_stride: frames between clip starts (None: clip_len).
        size: (height, width) of the clips. train_val_ratio: train:val = n:1.
        split_seed: seed of that split. split_by: ``clip`` (the paper's split of the samples),
        ``video`` (all clips of a video in one split) or ``time`` (the last part of every
        video validates; data/index.py).
        cache_dir: where prepared indexes and clips live
        (None: <root>/.vidinpaint). mean_pixel_clips: training clips averaged for mean_pixel.
        augment: training-clip augmentation on the device, ``none`` (the papers), ``flip`` or
        ``standard`` (data/augment.py); validation and test clips are never augmented.
    """

    def __init__(
        self,
        name: str,
        root: str,
        adapter: Adapter,
        mask: MaskGenerator | str,
        clip_len: int = 32,
        clip_stride: int | None = None,
        size: Sequence[int] = (128, 128),
        batch_size: int = 1,
        num_workers: int = 2,
        val_mask_seed: int = 2019,
        train_val_ratio: int = 5,
        split_seed: int = 0,
        split_by: str = "clip",
        cache_dir: str | None = None,
        mean_pixel_clips: int = 16,
        augment: str = "none",
    ):
        super().__init__()
        # nodes of a cluster share the dataset folder: one process generates it (synthetic)
        self.prepare_data_per_node = False
        if len(size) != 2:
            raise ValueError(f"size must be (height, width), got {list(size)}")
        if clip_len < 1 or (clip_stride is not None and clip_stride < 1):
            raise ValueError(
                f"clip_len and clip_stride must be >= 1, got {clip_len}, {clip_stride}"
            )
        self.name, self.root = name, Path(root)
        self.adapter, self.mask = adapter, make_mask(mask)
        self.clip_len = clip_len
        self.clip_stride = clip_stride if clip_stride is not None else clip_len
        self.size = (int(size[0]), int(size[1]))
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_mask_seed = val_mask_seed
        self.train_val_ratio, self.split_seed = train_val_ratio, split_seed
        check_choice("split_by", split_by, SPLIT_BY)
        self.split_by = split_by
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.root / ".vidinpaint"
        self.mean_pixel_clips = mean_pixel_clips
        self.augmentation = ClipAugmentation(augment)
        self.index: ClipIndex | None = None
        self.mean_pixel: tuple[float, float, float] | None = None
        self.datasets: dict[str, ClipDataset] = {}

    @property
    def settings(self) -> dict:
        return index_settings(
            self.adapter,
            self.clip_len,
            self.clip_stride,
            self.size,
            self.train_val_ratio,
            self.split_seed,
            self.split_by,
        )

    @property
    def protocol(self) -> dict[str, object]:
        """The split protocol of this dataset, for ``metrics.json``."""
        return {
            "protocol/split_by": self.split_by,
            "protocol/train_val_ratio": self.train_val_ratio,
        }

    @property
    def index_path(self) -> Path:
        """Where vidinpaint-prepare writes (and setup looks for) the index of these settings."""
        return self.cache_dir / f"index-{self.name}-{settings_key(self.settings)}.json"

    def prepare_data(self) -> None:
        """Generate the dataset if the adapter makes it (synthetic); rank 0 only under DDP."""
        self.adapter.prepare(self.root)

    def build_index(self) -> ClipIndex:
        """Scan the root and compute the training mean pixel (what vidinpaint-prepare caches)."""
        self.adapter.prepare(self.root)
        index = build_index(
            self.root,
            self.adapter,
            self.clip_len,
            self.clip_stride,
            self.size,
            self.train_val_ratio,
            self.split_seed,
            self.split_by,
        )
        index.mean_pixel = mean_pixel(index, index.split_clips("train"), self.mean_pixel_clips)
        return index

    def write_index(self, with_clips: bool = False) -> ClipIndex:
        """Build and save the index at index_path (and, with_clips, every clip as a cropped
        mp4 in the cache folder)."""
        index = self.build_index()
        if with_clips:
            cache_clips(index, self.cache_dir / f"clips-{self.name}-{settings_key(self.settings)}")
        save_index(index, self.index_path)
        log.info("wrote index %s: %s", self.index_path, index.summary())
        return index

    def _load_or_build(self) -> ClipIndex:
        path = self.index_path
        if path.exists():
            index = load_index(path, self.root)
            if index.settings == self.settings:
                log.info("using prepared index %s", path)
                return index
            log.info("prepared index %s has other settings; indexing on the fly", path)
        else:
            log.info("no prepared index at %s; indexing %s on the fly", path, self.root)
        return self.build_index()

    def setup(self, stage: str | None = None) -> None:
        if self.index is not None:
            return
        index = self._load_or_build()
        self.mean_pixel = tuple(index.mean_pixel)
        train_ids = index.split_clips("train")
        val_ids = index.split_clips("val")
        test_ids = index.split_clips("test")
        if not train_ids:
            raise ValueError(f"no training clip under {self.root}: {index.summary()}")
        if not val_ids:
            log.warning("validation split of %s is empty (%s)", self.root, index.summary())
        self.datasets = {
            "train": ClipDataset(index, train_ids, self.mask),
            "val": ClipDataset(index, val_ids, self.mask, self.val_mask_seed),
            "test": ClipDataset(index, test_ids, self.mask, self.val_mask_seed),
            "all": ClipDataset(index, list(range(len(index.clips))), self.mask, self.val_mask_seed),
        }
        checked = set()
        for dataset in (self.datasets[split] for split in ("train", "val", "test")):
            for position in range(len(dataset)):
                video = dataset.index.clips[dataset.clip_ids[position]].video
                if video not in checked:
                    checked.add(video)
                    self.mask.check(dataset.clip_source(position))
        self.index = index

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"call setup() before {split}_dataloader()")
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict:
        """Float video, mask and masked input, made on the training device from the uint8
        clips the workers send (see ClipDataset). Call it on batches read from the loaders
        outside a Trainer. Training batches of a fit are then augmented (``augment``)."""
        batch = complete_batch(batch, self.mean_pixel)
        if self.trainer is not None and self.trainer.training:
            batch = self.augmentation(batch, self.mean_pixel)
        return batch

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self.datasets and not len(self.datasets["test"]):
            raise ValueError(
                f"{self.name} has no test split under {self.root} (only train/val: "
                f"{self.index.summary() if self.index else 'not indexed'}); use split=val"
            )
        return self._loader("test", shuffle=False)

    def all_dataloader(self) -> DataLoader:
        """Every clip of the index (train, val and test), in index order, fixed masks."""
        return self._loader("all", shuffle=False)
