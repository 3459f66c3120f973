"""Sliding windows and streaming: coverage, blending, known pixels, no seam at chunk borders;
holes shrunk to the working size."""

import pytest
import torch

from vidinpaint.inference import (
    blend_weights,
    resize_holes,
    sliding_window,
    stream_inpaint,
    window_starts,
)


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


# ---------------------------------------------------------------- streaming
def brightening_video(frames: int, height: int = 24, width: int = 32) -> torch.Tensor:
    """uint8 ``T,H,W,3``: a smooth gradient that brightens by 2 grey levels per frame."""
    x = torch.linspace(0, 60, width).view(1, 1, width, 1)
    t = torch.arange(frames).view(frames, 1, 1, 1) * 2.0
    return (60 + x + t).expand(frames, height, width, 3).round().to(torch.uint8)


def centre_hole(frames: int, height: int = 24, width: int = 32) -> torch.Tensor:
    holes = torch.zeros(frames, 1, height, width, dtype=torch.bool)
    holes[:, :, 8:16, 10:22] = True
    return holes


def chunked(tensor: torch.Tensor, size: int):
    return iter(tensor.split(size))


def mean_known_fill(video, hole, index):
    """A method that is smooth inside a chunk and not across chunks: each chunk's holes take
    the mean known colour of the whole chunk (constant over its frames)."""
    known = 1 - hole
    mean = (video * known).sum((0, 2, 3), keepdim=True) / known.sum((0, 2, 3), keepdim=True)
    return video * known + mean * hole


def stream(video, holes, chunk_frames, overlap, complete=mean_known_fill, read=5):
    parts = list(
        stream_inpaint(
            complete,
            chunked(video, read),
            chunked(holes, read),
            video.shape[0],
            tuple(video.shape[1:3]),
            chunk_frames,
            overlap,
        )
    )
    return [torch.cat(p) for p in zip(*parts)]


def test_stream_yields_every_frame_once_with_known_pixels_kept():
    video, holes = brightening_video(23), centre_hole(23)
    calls = []

    def record(clip, hole, index):
        calls.append((index, clip.shape[0]))
        return mean_known_fill(clip, hole, index)

    frames, hole_out, result = stream(video, holes, chunk_frames=8, overlap=3, complete=record)
    assert torch.equal(frames, video) and torch.equal(hole_out, holes)
    known = ~holes.permute(0, 2, 3, 1).expand_as(video)
    assert torch.equal(result[known], video[known])
    assert not torch.equal(result[~known], video[~known])
    assert calls == [(0, 8), (1, 8), (2, 8), (3, 8)]  # starts 0, 5, 10, 15 (the last ends at 23)


def test_one_chunk_equals_the_whole_video_at_once():
    video, holes = brightening_video(9), centre_hole(9)
    _, _, result = stream(video, holes, chunk_frames=9, overlap=4)
    whole = mean_known_fill(video.permute(0, 3, 1, 2).float() / 255, holes.float(), 0)
    expected = (whole.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    assert torch.equal(result, expected)


def hole_steps(result: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Mean absolute change of the hole pixels from each frame to the next (T-1,)."""
    inside = holes[0, 0]
    values = result.float()[:, inside]
    return (values[1:] - values[:-1]).abs().mean(dim=(1, 2))


def test_no_seam_at_chunk_borders():
    """The video brightens by 2 levels a frame; each chunk's fill is constant in time. Without
    overlap the fill jumps by a chunk's worth of brightening at a border; blended over
    ``overlap`` frames no step exceeds the video's own change by much."""
    video, holes = brightening_video(40), centre_hole(40)
    _, _, seamed = stream(video, holes, chunk_frames=10, overlap=0)
    _, _, blended = stream(video, holes, chunk_frames=10, overlap=4)
    video_step = 2.0
    assert hole_steps(seamed, holes).max() >= 5 * video_step  # a seam: 10 frames x 2 levels at once
    steps = hole_steps(blended, holes)
    assert steps.max() <= 2 * video_step  # 12 levels spread over the 5 steps of a shared range
    starts = window_starts(40, 10, 4)
    borders = [s - 1 for s in starts[1:]]  # the step into a chunk's first shared frame
    inside = [i for i in range(39) if all(abs(i - b) > 5 for b in borders)]
    assert steps[borders].max() <= steps[inside].max() + video_step


def test_short_stream_is_an_error():
    video, holes = brightening_video(6), centre_hole(6)
    with pytest.raises(ValueError, match="mask ended at frame 4, 6 were expected"):
        list(stream_inpaint(mean_known_fill, iter([video]), iter([holes[:4]]), 6, (24, 32), 8, 2))


# a 4x4 mask whose 2x2 blocks are 1/4 (top left), 2/4 (top right), 3/4 (bottom left) and 0/4
# (bottom right) hole
QUARTERS = torch.tensor(
    [
        [1, 0, 1, 1],
        [0, 0, 0, 0],
        [1, 1, 0, 0],
        [1, 0, 0, 0],
    ],
    dtype=torch.bool,
).view(1, 1, 4, 4)


@pytest.mark.parametrize(
    ("coverage", "expected"),
    [("any", [[1, 1], [1, 0]]), (0.5, [[0, 1], [1, 0]]), (0.75, [[0, 0], [1, 0]]), (1, 0)],
)
def test_resize_holes_keeps_a_pixel_by_its_hole_coverage(coverage, expected):
    shrunk = resize_holes(QUARTERS.expand(3, -1, -1, -1), (2, 2), coverage)
    assert torch.equal(shrunk, torch.tensor(expected).float().expand(3, 1, 2, 2))


@pytest.mark.parametrize("coverage", [0, 1.5, -0.5, "half", True, None])
def test_resize_holes_refuses_a_coverage_outside_any_or_0_to_1(coverage):
    with pytest.raises(ValueError, match=r"^mask_coverage must be 'any' or in \(0, 1\], got"):
        resize_holes(QUARTERS, (2, 2), coverage)
