"""LitData: prepared clips as LitData chunks, streamed from a folder or an object store.

``vidinpaint-prepare prepare.format=litdata`` writes ``<output>/{train,val[,test]}/`` with
``write_litdata``; ``data=litdata data.input_dir=<output>`` streams them with
``LitDataModule``: each rank, and each loader worker of a rank, reads its own chunks, and a
remote dataset (``s3://``, ``gs://``) is downloaded chunk by chunk into a local cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import litdata
import torch

from vidinpaint.data.dataset import clip_mask_seed, complete_batch
from vidinpaint.data.index import ClipIndex, read_clip
from vidinpaint.data.masks import MaskGenerator, make_mask

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def split_dir(root: str, split: str) -> str:
    """``<root>/<split>`` for a folder or an object-store URL."""
    return f"{str(root).rstrip('/')}/{split}"


def clip_item(position: int, index: ClipIndex, clip_ids: Sequence[int]) -> dict[str, Any]:
    """The clip at ``position`` of a split as stored in the chunks: video (T, 3, H, W) uint8,
    path (source video), start (first frame), position (seeds its val/test masks) and
    mean_pixel (3,) float32 of the training split."""
    clip_id = clip_ids[position]
    clip = index.clips[clip_id]
    frames = read_clip(index, clip_id)
    return {
        "video": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
        # Text: LitData would store a plain string naming an existing video as that file
        "path": litdata.Text(text=str(index.resolve(index.videos[clip.video].path))),
        "start": clip.start,
        "position": position,
        "mean_pixel": torch.tensor(index.mean_pixel, dtype=torch.float32),
    }


def check_no_chunks(output_dir: str) -> None:
    """Refuses a local ``output_dir`` that already holds prepared splits (LitData itself
    refuses an object-store one)."""
    for split in SPLITS:
        if (Path(split_dir(output_dir, split)) / "index.json").exists():
            raise FileExistsError(
                f"{split_dir(output_dir, split)} already holds LitData chunks: remove it or set "
                "prepare.output_dir"
            )


def write_litdata(
    index: ClipIndex,
    output_dir: str,
    chunk_bytes: str | int | None = "64MB",
    chunk_clips: int | None = None,
    num_workers: int = 1,
    compression: str | None = None,
) -> dict[str, int]:
    """Writes every clip of ``index`` (cropped, resized) as LitData chunks, one dataset per
    split under ``output_dir`` (a folder or an object-store URL). ``chunk_clips`` (clips per
    chunk) overrides ``chunk_bytes``; a rank streams whole chunks, so a split needs at least
    as many chunks as ranks x loader workers. Returns the clip count of each split written."""
    check_no_chunks(output_dir)
    splits = {split: index.split_clips(split) for split in SPLITS if index.split_clips(split)}
    counts = {}
    for split, clip_ids in splits.items():
        target = split_dir(output_dir, split)
        litdata.optimize(
            fn=partial(clip_item, index=index, clip_ids=clip_ids),
            inputs=list(range(len(clip_ids))),
            output_dir=target,
            chunk_bytes=None if chunk_clips else chunk_bytes,
            chunk_size=chunk_clips,
            num_workers=num_workers,
            compression=compression,
            start_method="fork",  # as the DataLoader workers: no re-import of the entry point
            verbose=False,
        )
        counts[split] = len(clip_ids)
        log.info("wrote %d %s clips to %s", len(clip_ids), split, target)
    return counts


class ClipStream(litdata.StreamingDataset):
    """Clips of one split streamed from LitData chunks (``write_litdata``), with hole masks.
    Items as ClipDataset's: video (T, 3, H, W) uint8, mask (T, 1, H, W) uint8 (1 = hole),
    path (str), start (int). mask_seed None: random masks (torch's global RNG, seeded per
    worker); an int: fixed masks per clip position (validation/test)."""

    def __init__(
        self,
        input_dir: str,
        mask: MaskGenerator,
        mask_seed: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        cache_dir: str | None = None,
    ):
        super().__init__(input_dir, cache_dir=cache_dir, shuffle=shuffle, seed=seed)
        self.mask, self.mask_seed = mask, mask_seed

    def stored_item(self, index: Any) -> dict[str, Any]:
        """The item as written by ``clip_item`` (no mask)."""
        return super().__getitem__(index)

    def __getitem__(self, index: Any) -> dict[str, Any]:
        item = self.stored_item(index)
        video = item["video"]
        if self.mask_seed is None:
            seed = int(torch.randint(0, 2**62, (1,)))
        else:
            seed = clip_mask_seed(self.mask_seed, item["position"])
        num_frames, _, height, width = video.shape
        mask = self.mask(num_frames, height, width, torch.Generator().manual_seed(seed))
        return {
            "video": video,
            "mask": mask.to(torch.uint8),
            "path": item["path"],
            "start": item["start"],
        }


class LitDataModule(L.LightningDataModule):
    """Train/val/test clips streamed from ``vidinpaint-prepare prepare.format=litdata``
    output: the same batches as ClipDataModule (video, mask, masked, path, start after
    on_after_batch_transfer). Under DDP each rank streams its own chunks (LitData splits them
    by rank and loader worker; Lightning's DistributedSampler is not used).

    Args:
        name: dataset name (reported in metrics). input_dir: the prepared folder or URL
        (``s3://bucket/ff``). mask: hole generator (or its data/mask name; masks needing the
        source videos, ``file``, are not available). clip_len, size: the clip shape the run
        expects, checked against the chunks. val_mask_seed: seed of the val/test holes.
        shuffle_seed: order of the training chunks and clips (reshuffled every epoch).
        cache_dir: local cache of a remote dataset (None: LitData's default).
    """

    def __init__(
        self,
        name: str,
        input_dir: str,
        mask: MaskGenerator | str,
        clip_len: int = 32,
        size: Sequence[int] = (128, 128),
        batch_size: int = 1,
        num_workers: int = 2,
        val_mask_seed: int = 2019,
        shuffle_seed: int = 0,
        cache_dir: str | None = None,
    ):
        super().__init__()
        self.name, self.input_dir = name, str(input_dir)
        self.mask = make_mask(mask)
        self.clip_len, self.size = clip_len, (int(size[0]), int(size[1]))
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_mask_seed, self.shuffle_seed = val_mask_seed, shuffle_seed
        self.cache_dir = cache_dir
        self.mean_pixel: tuple[float, float, float] | None = None
        self.datasets: dict[str, ClipStream] = {}

    def _stream(self, split: str) -> ClipStream:
        path = split_dir(self.input_dir, split)
        if "://" not in path and not (Path(path) / "index.json").is_file():
            raise FileNotFoundError(
                f"no LitData {split} split at {path}: write it with vidinpaint-prepare "
                "prepare.format=litdata"
            )
        train = split == "train"
        return ClipStream(
            path,
            self.mask,
            mask_seed=None if train else self.val_mask_seed,
            shuffle=train,
            seed=self.shuffle_seed,
            cache_dir=self.cache_dir,
        )

    def setup(self, stage: str | None = None) -> None:
        """Opens the splits (after DDP starts: LitData reads the rank here) and reads the mean
        pixel and clip shape from the first training clip."""
        if not self.datasets:
            self.datasets = {split: self._stream(split) for split in ("train", "val")}
            first = self.datasets["train"].stored_item(0)
            expected = (self.clip_len, 3, *self.size)
            if tuple(first["video"].shape) != expected:
                raise ValueError(
                    f"{self.input_dir} holds clips of shape (T, C, H, W) = "
                    f"{tuple(first['video'].shape)}; data.clip_len and data.size ask for {expected}"
                )
            self.mean_pixel = tuple(float(v) for v in first["mean_pixel"])
        if stage == "test" and "test" not in self.datasets:
            self.datasets["test"] = self._stream("test")

    def _loader(self, split: str) -> litdata.StreamingDataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"call setup() before {split}_dataloader()")
        return litdata.StreamingDataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict:
        """Float video, mask and masked input, made on the device (see ClipDataModule)."""
        return complete_batch(batch, self.mean_pixel)

    def train_dataloader(self) -> litdata.StreamingDataLoader:
        return self._loader("train")

    def val_dataloader(self) -> litdata.StreamingDataLoader:
        return self._loader("val")

    def test_dataloader(self) -> litdata.StreamingDataLoader:
        return self._loader("test")
