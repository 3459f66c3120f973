"""Training-clip augmentation on the device (kornia), chosen by ``data.augment``.

- ``none``: the papers' training (no augmentation);
- ``flip``: horizontal flip with probability 0.5;
- ``standard``: the flip, a small affine warp (rotation +-5 deg, translation +-5 %, scale
  0.9-1.1, reflection padding) and colour jitter (brightness, contrast, saturation +-0.1).

One draw per clip: every frame of a clip gets the same parameters (kornia ``VideoSequential``,
``same_on_frame=True``), clips of a batch get their own. The geometric part moves the clip's
hole mask with it (nearest resampling; colour jitter leaves the mask alone), so the holes stay
where they were drawn on the frames and ``masked`` is filled again after the transform.
"""

from __future__ import annotations

from typing import Any

import kornia.augmentation as K
import torch
from kornia.augmentation.container import AugmentationSequential, VideoSequential
from torch import Tensor, nn

from vidinpaint.data.dataset import fill_holes
from vidinpaint.errors import check_choice

AUGMENTS = ("none", "flip", "standard")


def _transforms(kind: str) -> list[nn.Module]:
    flip = K.RandomHorizontalFlip(p=0.5)
    if kind == "flip":
        return [flip]
    affine = K.RandomAffine(
        degrees=5.0, translate=(0.05, 0.05), scale=(0.9, 1.1), padding_mode="reflection", p=1.0
    )
    return [flip, affine, K.ColorJiggle(brightness=0.1, contrast=0.1, saturation=0.1, p=1.0)]


class ClipAugmentation(nn.Module):
    """Augments float training batches of ClipDataModule (see the module docstring).

    kind: one of ``AUGMENTS``; ``none`` returns the batch unchanged.
    """

    def __init__(self, kind: str = "none") -> None:
        super().__init__()
        check_choice("data.augment", kind, AUGMENTS)
        self.transform = None
        if kind != "none":
            clip = VideoSequential(*_transforms(kind), data_format="BTCHW", same_on_frame=True)
            self.transform = AugmentationSequential(clip, data_keys=["input", "mask"])

    @torch.no_grad()
    def augment(self, video: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """video (B, T, 3, H, W) in [0, 1], mask (B, T, 1, H, W) {0, 1} -> the same shapes."""
        if video.ndim != 5 or mask.shape != (*video.shape[:2], 1, *video.shape[-2:]):
            raise ValueError(
                f"expected video (B,T,3,H,W) and mask (B,T,1,H,W), got {tuple(video.shape)} "
                f"and {tuple(mask.shape)}"
            )
        if self.transform is None:
            return video, mask
        video, mask = self.transform(video, mask)
        return video.clamp(0, 1), (mask > 0.5).to(video.dtype)

    def forward(self, batch: dict[str, Any], mean_pixel: tuple[float, float, float]) -> dict:
        """A float batch (complete_batch) with video and mask augmented and masked refilled."""
        if self.transform is None:
            return batch
        video, mask = self.augment(batch["video"], batch["mask"])
        return {
            **batch,
            "video": video,
            "mask": mask,
            "masked": fill_holes(video, mask, mean_pixel),
        }
