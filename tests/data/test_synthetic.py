"""Synthetic scenes: the occlusion scene shows in later frames what a static hole covers."""

from __future__ import annotations

import numpy as np
import pytest

from vidinpaint.data.synthetic import synthetic_video


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
