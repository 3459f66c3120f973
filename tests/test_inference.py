import pytest
import torch

from vidinpaint.inference import blend_weights, sliding_window, window_starts


@pytest.mark.parametrize(
    ("frames", "clip_len", "overlap", "expected"),
    [(10, 32, 8, [0]), (32, 32, 8, [0]), (56, 32, 8, [0, 24]), (60, 32, 8, [0, 24, 28])],
)
def test_window_starts_cover_every_frame(frames, clip_len, overlap, expected):
    starts = window_starts(frames, clip_len, overlap)
    assert starts == expected
    covered = set()
    for s in starts:
        covered |= set(range(s, min(s + clip_len, frames)))
    assert covered == set(range(frames))


def test_window_starts_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        window_starts(40, 8, 8)


def test_blend_weights_ramps_only_inner_ends():
    w = blend_weights(8, 3, first=True, last=False)
    assert torch.equal(w[:5], torch.ones(5))
    assert torch.allclose(w[5:], torch.tensor([0.75, 0.5, 0.25]))
    assert torch.equal(blend_weights(8, 3, first=True, last=True), torch.ones(8))


def test_sliding_window_returns_input_size_and_keeps_known_pixels():
    torch.manual_seed(0)
    video = torch.rand(21, 3, 13, 19)
    mask = (torch.rand(21, 1, 13, 19) > 0.7).float()
    seen_shapes = []

    def complete(clip, clip_mask):
        seen_shapes.append(tuple(clip.shape))
        return torch.full_like(clip, 0.25)

    out = sliding_window(complete, video, mask, clip_len=8, overlap=3, spatial_multiple=8)
    assert out.shape == video.shape
    assert all(s[-2] % 8 == 0 and s[-1] % 8 == 0 and s[1] <= 8 for s in seen_shapes)
    known = mask == 0
    assert torch.equal(out.expand_as(video)[known.expand_as(video)], video[known.expand_as(video)])
    assert torch.allclose(out[mask.expand_as(video) == 1], torch.tensor(0.25))


def test_sliding_window_blends_overlaps_by_weights():
    """Frame-constant outputs: overlapping frames get the weighted mean of the two windows."""
    video = torch.zeros(12, 3, 8, 8)
    mask = torch.ones(12, 1, 8, 8)
    calls = iter([0.2, 0.8])

    def complete(clip, clip_mask):
        return torch.full_like(clip, next(calls))

    out = sliding_window(complete, video, mask, clip_len=8, overlap=4, spatial_multiple=8)
    ramp = torch.tensor([0.2, 0.4, 0.6, 0.8])  # second window's weights over frames 4..7
    expected = (0.2 * ramp.flip(0) + 0.8 * ramp) / (ramp.flip(0) + ramp)
    assert torch.allclose(out[4:8, 0, 0, 0], expected)
    assert torch.allclose(out[:4], torch.tensor(0.2)) and torch.allclose(out[8:], torch.tensor(0.8))


def test_sliding_window_pads_time_to_multiple():
    video, mask = torch.rand(6, 3, 8, 8), torch.ones(6, 1, 8, 8)
    lengths = []

    def complete(clip, clip_mask):
        lengths.append(clip.shape[1])
        return clip

    sliding_window(complete, video, mask, clip_len=32, temporal_multiple=4)
    assert lengths == [8]


def test_sliding_window_checks_mask_shape():
    with pytest.raises(ValueError, match="mask must be"):
        sliding_window(lambda c, m: c, torch.rand(4, 3, 8, 8), torch.ones(3, 1, 8, 8))
