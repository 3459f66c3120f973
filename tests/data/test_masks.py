"""Mask generators: box sizes, static vs per-frame, strokes, masks from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidinpaint.data.masks import BoxMask, ClipSource, FileMask, FreeFormMask, make_mask


def _box_sides(frame: torch.Tensor) -> tuple[int, int]:
    rows = frame[0].any(dim=1).nonzero()
    cols = frame[0].any(dim=0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_box_static_sides_in_paper_range_and_same_every_frame():
    heights, widths = set(), set()
    for seed in range(200):
        mask = BoxMask()(4, 128, 128, torch.Generator().manual_seed(seed))
        assert mask.shape == (4, 1, 128, 128) and set(mask.unique().tolist()) == {0.0, 1.0}
        assert all(torch.equal(mask[0], m) for m in mask)
        h, w = _box_sides(mask[0])
        assert mask[0].sum() == h * w  # one solid rectangle
        heights.add(h)
        widths.add(w)
    assert min(heights) >= 48 and max(heights) <= 64 and min(widths) >= 48 and max(widths) <= 64
    assert len(heights) > 10  # sides really vary over the range


def test_box_random_differs_per_frame():
    mask = BoxMask(per_frame=True)(6, 64, 64, torch.Generator().manual_seed(0))
    assert len({tuple(m.flatten().nonzero().flatten()[:3].tolist()) for m in mask}) > 1
    for frame in mask:
        h, w = _box_sides(frame)
        assert 24 <= h <= 32 and 24 <= w <= 32 and frame.sum() == h * w


def test_same_seed_same_mask():
    a = FreeFormMask()(3, 32, 32, torch.Generator().manual_seed(5))
    b = FreeFormMask()(3, 32, 32, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_freeform_static_and_moving():
    static = FreeFormMask()(5, 64, 64, torch.Generator().manual_seed(1))
    assert static.sum() > 0 and all(torch.equal(static[0], m) for m in static)
    moving = FreeFormMask(moving=True, max_speed=0.1)(5, 64, 64, torch.Generator().manual_seed(1))
    assert moving.sum() > 0 and not torch.equal(moving[0], moving[-1])
    assert set(moving.unique().tolist()) <= {0.0, 1.0}


def _clip(tmp_path: Path, num_frames: int = 6, height: int = 32, width: int = 48, **kw):
    return ClipSource(tmp_path / "video.mp4", num_frames, height, width, **kw)


def _mask_folder(folder: Path, num_frames: int, height: int = 32, width: int = 48) -> None:
    folder.mkdir(parents=True)
    for i in range(num_frames):
        array = np.zeros((height, width), np.uint8)
        array[i : i + 4, 10:20] = 255
        Image.fromarray(array).save(folder / f"{i:05d}.png")


def test_file_mask_frame_folder_crop_and_start(tmp_path: Path):
    _mask_folder(tmp_path / "m", 6)
    clip = _clip(tmp_path, start=2, box=(8, 0, 40, 32))
    mask = FileMask(str(tmp_path / "m"))(3, 32, 32, torch.Generator(), clip)
    assert mask.shape == (3, 1, 32, 32)
    expected = torch.zeros(3, 1, 32, 32)
    for t in range(3):
        expected[t, 0, 2 + t : 6 + t, 2:12] = 1
    assert torch.equal(mask, expected)


def test_file_mask_static_image_used_for_every_frame(tmp_path: Path):
    array = np.zeros((32, 48), np.uint8)
    array[5:9, 5:9] = 255
    Image.fromarray(array).save(tmp_path / "hole.png")
    mask = FileMask(str(tmp_path / "hole.png"))(4, 16, 24, torch.Generator(), _clip(tmp_path))
    assert mask.shape == (4, 1, 16, 24) and mask.sum() == 4 * 4
    assert all(torch.equal(mask[0], m) for m in mask)


def test_file_mask_count_and_size_mismatch_errors(tmp_path: Path):
    _mask_folder(tmp_path / "m", 32)
    with pytest.raises(ValueError, match=r"has 32 frames but video .* has 15"):
        FileMask(str(tmp_path / "m")).check(_clip(tmp_path, num_frames=15))
    with pytest.raises(ValueError, match=r"has 32 frames but video .* has 15"):
        FileMask(str(tmp_path / "m"))(4, 32, 48, torch.Generator(), _clip(tmp_path, 15))
    with pytest.raises(ValueError, match=r"is 32x48 but video .* is 64x96 \(set data.mask.resize"):
        FileMask(str(tmp_path / "m")).check(_clip(tmp_path, 32, 64, 96))
    resized = FileMask(str(tmp_path / "m"), resize=True)(
        4, 64, 96, torch.Generator(), _clip(tmp_path, 32, 64, 96)
    )
    assert resized.shape == (4, 1, 64, 96) and resized[0].sum() == 8 * 20


def test_file_mask_needs_a_source(tmp_path: Path):
    with pytest.raises(ValueError, match="has no mask folder; set data.mask.path"):
        FileMask().check(_clip(tmp_path))


def test_make_mask_by_name():
    assert make_mask("box_random").per_frame and not make_mask("box_static").per_frame
    with pytest.raises(ValueError, match="unknown mask 'boxes'"):
        make_mask("boxes")
