"""Map-style dataset of clips from a ClipIndex, with hole masks and mean-pixel filling."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vidinpaint.data.index import ClipIndex, read_clip
from vidinpaint.data.masks import ClipSource, MaskGenerator


def clip_mask_seed(mask_seed: int, position: int) -> int:
    """Seed of the masks of the clip at position of a split: same for every run and method."""
    return int(np.random.SeedSequence([mask_seed, position]).generate_state(1, np.uint64)[0] >> 1)


def complete_batch(batch: dict[str, Any], mean_pixel: tuple[float, float, float]) -> dict:
    """The float form of a batch (or item) of ClipDataset: video (..., T, 3, H, W) uint8 ->
    float in [0, 1], mask (..., T, 1, H, W) uint8 -> float {0, 1} (1 = hole), and masked
    (..., T, 3, H, W): video with the holes filled with mean_pixel. On the batch's device."""
    video = batch["video"].float().div_(255)
    mask = batch["mask"].float()
    return {**batch, "video": video, "mask": mask, "masked": fill_holes(video, mask, mean_pixel)}


def fill_holes(video: Tensor, mask: Tensor, mean_pixel: tuple[float, float, float]) -> Tensor:
    """The network input: video (..., 3, H, W) with mean_pixel where mask (..., 1, H, W) is 1."""
    mean = torch.tensor(mean_pixel, dtype=video.dtype, device=video.device).view(3, 1, 1)
    return torch.where(mask.bool(), mean, video)


class ClipDataset(Dataset):
    """Clips clip_ids of an index. Each item is a dict: video (T, 3, H, W) uint8,
    mask (T, 1, H, W) uint8 {0, 1} (1 = hole), path (source str), start (int). Items travel
    from loader workers in this compact form (a quarter of float32's bytes, no masked copy);
    complete_batch (ClipDataModule.on_after_batch_transfer) makes the float batch.

    mask_seed None: fresh random masks every time (drawn from torch's global RNG, which
    DataLoader seeds per worker); an int: fixed masks per position (validation/test).
    Videos are decoded per item (decord readers never live in the parent process).
    """

    def __init__(
        self,
        index: ClipIndex,
        clip_ids: list[int],
        mask: MaskGenerator,
        mask_seed: int | None = None,
    ):
        self.index, self.clip_ids, self.mask = index, clip_ids, mask
        self.mask_seed = mask_seed

    def __len__(self) -> int:
        return len(self.clip_ids)

    def clip_source(self, position: int) -> ClipSource:
        clip = self.index.clips[self.clip_ids[position]]
        video = self.index.videos[clip.video]
        return ClipSource(
            path=self.index.resolve(video.path),
            num_frames=video.num_frames,
            height=video.height,
            width=video.width,
            start=clip.start,
            box=clip.box,
            mask_path=self.index.resolve(video.mask_path) if video.mask_path else None,
        )

    def __getitem__(self, position: int) -> dict[str, Any]:
        frames = read_clip(self.index, self.clip_ids[position])
        video = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
        if self.mask_seed is None:
            seed = int(torch.randint(0, 2**62, (1,)))
        else:
            seed = clip_mask_seed(self.mask_seed, position)
        generator = torch.Generator().manual_seed(seed)
        source = self.clip_source(position)
        num_frames, _, height, width = video.shape
        mask = self.mask(num_frames, height, width, generator, source)
        if mask.shape != (num_frames, 1, height, width):
            raise ValueError(
                f"mask generator returned {tuple(mask.shape)}, expected "
                f"{(num_frames, 1, height, width)}"
            )
        return {
            "video": video,
            "mask": mask.to(torch.uint8),
            "path": str(source.path),
            "start": source.start,
        }
