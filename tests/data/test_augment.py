"""Training-clip augmentation (data.augment): one draw per clip, masks follow the frames."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_datamodule import _datamodule as tiny_datamodule

from vidinpaint.data.augment import ClipAugmentation

MEAN = (0.25, 0.5, 0.75)


def static_clips(batch: int, frames: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips whose frames are all the same image, with a box hole (different per clip)."""
    torch.manual_seed(0)
    image = torch.rand(batch, 1, 3, size, size)
    mask = torch.zeros(batch, 1, 1, size, size)
    for b in range(batch):
        top, left = 2 + b % 8, 4 + (3 * b) % 10
        mask[b, :, :, top : top + 14, left : left + 12] = 1
    return image.expand(-1, frames, -1, -1, -1).clone(), mask.expand(-1, frames, -1, -1, -1).clone()


def float_batch(video: torch.Tensor, mask: torch.Tensor) -> dict:
    mean = torch.tensor(MEAN).view(3, 1, 1)
    return {"video": video, "mask": mask, "masked": torch.where(mask.bool(), mean, video)}


def test_none_is_the_identity():
    batch = float_batch(*static_clips(3))
    assert ClipAugmentation("none")(batch, MEAN) is batch


@pytest.mark.parametrize("kind", ["flip", "standard"])
def test_every_frame_of_a_clip_gets_the_same_transform(kind):
    torch.manual_seed(1)
    video, mask = ClipAugmentation(kind).augment(*static_clips(6))
    assert torch.equal(video, video[:, :1].expand_as(video))
    assert torch.equal(mask, mask[:, :1].expand_as(mask))


def test_flip_moves_frames_and_mask_together_and_differs_between_clips():
    clips, holes = static_clips(16)
    torch.manual_seed(2)
    video, mask = ClipAugmentation("flip").augment(clips, holes)
    flipped = []
    for b in range(16):
        if torch.equal(video[b], clips[b]):
            assert torch.equal(mask[b], holes[b])
            flipped.append(False)
        else:
            assert torch.equal(video[b], clips[b].flip(-1))  # independent: a mirror image
            assert torch.equal(mask[b], holes[b].flip(-1))
            flipped.append(True)
    assert any(flipped) and not all(flipped)  # one draw per clip, not per batch


def test_standard_warps_the_mask_with_the_holes_and_refills_masked():
    clips, holes = static_clips(8)
    # frames that show their own hole: the warped frame must still show the warped mask
    painted = holes.expand(-1, -1, 3, -1, -1).clone()
    torch.manual_seed(3)
    batch = ClipAugmentation("standard")(float_batch(painted, holes), MEAN)
    video, mask = batch["video"], batch["mask"]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    shown = video.mean(dim=2, keepdim=True) > 0.5
    for b in range(8):
        inter = (shown[b] & mask[b].bool()).sum()
        union = (shown[b] | mask[b].bool()).sum()
        assert inter / union > 0.85, f"clip {b}: hole and mask drifted apart"
    assert not torch.equal(mask, holes)  # the geometry changed
    assert not torch.equal(video[0], video[1])  # clips got their own parameters
    mean = torch.tensor(MEAN).view(3, 1, 1)
    expected = video * (1 - mask) + mean * mask
    assert torch.allclose(batch["masked"], expected)


def test_unknown_kind_and_bad_shapes_are_one_line_errors():
    with pytest.raises(ValueError, match="data.augment must be one of"):
        ClipAugmentation("rotate")
    with pytest.raises(ValueError, match="expected video"):
        ClipAugmentation("flip").augment(torch.rand(2, 4, 3, 8, 8), torch.rand(2, 4, 3, 8, 8))


def test_datamodule_augments_training_batches_only(video_folder: Path):
    dm = tiny_datamodule(video_folder, batch_size=4, augment="standard")
    dm.setup("fit")
    raw = next(iter(dm.val_dataloader()))
    plain = dm.on_after_batch_transfer(raw, 0)  # outside a Trainer: never augmented
    dm.trainer = SimpleNamespace(training=False)
    assert torch.equal(dm.on_after_batch_transfer(raw, 0)["video"], plain["video"])
    dm.trainer = SimpleNamespace(training=True)
    torch.manual_seed(4)
    augmented = dm.on_after_batch_transfer(raw, 0)
    assert not torch.equal(augmented["video"], plain["video"])
    mean = torch.tensor(dm.mean_pixel).view(3, 1, 1)
    refilled = torch.where(augmented["mask"].bool(), mean, augmented["video"])
    assert torch.equal(augmented["masked"], refilled)
