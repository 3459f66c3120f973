"""Synthetic scenes: the occlusion scene shows in later frames what a static hole covers; the
shimmer scene keeps its coarse content still and changes only its 4-px stripes."""

from __future__ import annotations

import numpy as np
import pytest

from vidinpaint.data.synthetic import SHIMMER_PERIOD, synthetic_video


def test_occlusion_scene_pans_three_sixteenths_of_the_side_per_frame():
    size, shift = 32, 6  # 3/16 of 32
    video = synthetic_video(5, num_frames=4, size=size, scene="occlusion").astype(int)
    for t in range(3):
        # the background moves right to left in the frame by `shift` px (the camera pans
        # right); the crossing object covers at most a third of the pixels
        same = np.abs(video[t + 1][:, : size - shift] - video[t][:, shift:]).max(axis=-1) <= 1
        assert same.mean() > 0.6
        assert not np.array_equal(video[t + 1], video[t])
    hole = (slice(10, 22), slice(10, 22))  # a static 12x12 hole at the centre
    # what the hole covers in frame 0 is in view, 6 px to the left, in frame 1, ...
    assert np.abs(video[1][hole[0], 4:16] - video[0][hole]).max(axis=-1).mean() < 20
    # ... and not predictable from the frame itself: far from its own shifted copy
    assert np.abs(video[0][hole[0], 4:16] - video[0][hole]).mean() > 20


def test_scenes_are_deterministic_and_checked():
    first = synthetic_video(3, num_frames=4, size=32, scene="occlusion")
    assert np.array_equal(first, synthetic_video(3, num_frames=4, size=32, scene="occlusion"))
    assert not np.array_equal(first, synthetic_video(4, num_frames=4, size=32, scene="occlusion"))
    assert first.shape == (4, 32, 32, 3) and first.dtype == np.uint8
    with pytest.raises(ValueError, match="scene must be one of"):
        synthetic_video(3, num_frames=4, size=32, scene="waves")


def _radial_frequency(height: int, width: int) -> np.ndarray:
    """|f| in cycles per pixel of each bin of an ``np.fft.fft2`` of (height, width)."""
    return np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shimmer_scene_changes_only_fine_stripes_between_frames(seed):
    size = 64
    video = synthetic_video(seed, num_frames=4, size=size, scene="shimmer").astype(float)
    radius = _radial_frequency(size, size)
    for t in range(3):
        change = (video[t + 1] - video[t]).mean(axis=-1)
        assert np.abs(change).mean() > 5  # the stripes' phase moves every frame
        power = np.abs(np.fft.fft2(change)) ** 2
        # what changes is stripes of SHIMMER_PERIOD px (clipping adds a little elsewhere) ...
        band = np.abs(radius - 1 / SHIMMER_PERIOD) < 0.05
        assert power[band].sum() / power.sum() > 0.9
    # ... so the coarse content (frequencies well below the stripes') stays still
    spectrum = np.fft.fft2(video, axes=(1, 2))
    spectrum[:, radius > 0.15] = 0
    coarse = np.fft.ifft2(spectrum, axes=(1, 2)).real
    assert np.abs(coarse[1:] - coarse[:-1]).mean() < 8
    assert coarse.std(axis=(1, 2)).mean() > 20  # and it is not flat
