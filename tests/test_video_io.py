"""Tests for vidinpaint.video_io and vidinpaint.video_write on synthetic videos written into
tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vidinpaint import video_io
from vidinpaint.video_io import (
    FOLDER_FPS,
    MaskSource,
    VideoReadError,
    VideoSource,
    read_masks,
    read_video,
)
from vidinpaint.video_write import VideoWriter, hstack_panel, write_video


def smooth_video(frames: int, height: int, width: int) -> torch.Tensor:
    """(T, 3, H, W) float gradients that change per frame (easy for H.264)."""
    ys = torch.linspace(0, 1, height).view(1, height, 1)
    xs = torch.linspace(0, 1, width).view(1, 1, width)
    video = torch.stack(
        [
            torch.cat([xs.expand(1, height, width), ys.expand(1, height, width), ys * xs])
            for _ in range(frames)
        ]
    )
    return (0.1 + 0.8 * video * torch.linspace(0.5, 1, frames).view(frames, 1, 1, 1)).contiguous()


@pytest.mark.parametrize("size", [(48, 64), (33, 47), (32, 48)])
def test_write_read_round_trip(tmp_path, size):
    height, width = size
    video = smooth_video(7, height, width)
    path = write_video(tmp_path / "nested" / "dir" / "out.mp4", video, fps=12)
    frames, fps = read_video(path)
    assert frames.dtype == torch.uint8 and frames.shape == (7, height, width, 3)
    assert fps == pytest.approx(12)
    decoded = frames.permute(0, 3, 1, 2).float() / 255
    assert (decoded - video).abs().mean() < 0.01
    assert (decoded - video).abs().max() < 0.08
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.mp4"]  # no temp file left


@pytest.mark.parametrize("size", [(48, 64), (33, 47)])
def test_lossless_write_decodes_to_the_same_pixels(tmp_path, size):
    frames = np.random.default_rng(0).integers(0, 256, (5, *size, 3), dtype=np.uint8)
    lossy, _ = read_video(write_video(tmp_path / "lossy.mp4", frames, fps=10))
    exact, fps = read_video(write_video(tmp_path / "exact.mp4", frames, fps=10, lossless=True))
    assert fps == pytest.approx(10) and exact.shape == (5, *size, 3)
    assert torch.equal(exact, torch.from_numpy(frames))
    assert not torch.equal(lossy, torch.from_numpy(frames))  # the default is lossy


def test_write_video_uint8_input_and_overwrite_is_atomic(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, smooth_video(3, 32, 64), fps=25)
    uint8 = (smooth_video(5, 32, 64) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    write_video(path, uint8, fps=25)
    frames, _ = read_video(path)
    assert frames.shape == (5, 32, 64, 3)
    assert (frames.float() - uint8.float()).abs().mean() < 3
    with pytest.raises(ValueError, match="expected"):
        write_video(tmp_path / "bad.mp4", torch.rand(2, 32, 32, 3), fps=25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_read_frame_folder_sorted(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    values = [10, 120, 240]
    for index, value in zip([2, 0, 1], values):
        Image.fromarray(np.full((6, 9, 3), value, np.uint8)).save(folder / f"{index:05d}.png")
    (folder / "notes.txt").write_text("ignored")
    frames, fps = read_video(folder)
    assert frames.shape == (3, 6, 9, 3) and fps == FOLDER_FPS
    assert frames[:, 0, 0, 0].tolist() == [120, 240, 10]


def test_read_video_errors(tmp_path):
    with pytest.raises(VideoReadError, match="not found") as info:
        read_video(tmp_path / "missing.mp4")
    assert str(tmp_path / "missing.mp4") in str(info.value)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00garbage" * 500)
    with pytest.raises(VideoReadError, match="corrupt.mp4") as info:
        read_video(corrupt)
    assert "\n" not in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoReadError, match="no"):
        read_video(tmp_path / "empty")
    with pytest.raises(VideoReadError, match="corrupt.mp4"):
        read_masks(corrupt)


def test_read_masks_image_folder_and_video(tmp_path):
    mask = np.zeros((8, 10, 3), np.uint8)
    mask[2:5, 3:6, 1] = 200  # hole marked in one channel only
    Image.fromarray(mask).save(tmp_path / "static.png")
    static = read_masks(tmp_path / "static.png")
    assert static.dtype == torch.bool and static.shape == (1, 1, 8, 10)
    assert static.sum() == 9 and static[0, 0, 2:5, 3:6].all()

    folder = tmp_path / "masks"
    folder.mkdir()
    for t in range(3):
        gray = np.zeros((8, 10), np.uint8)
        gray[t, :] = 1  # any non-zero value is a hole in lossless files
        Image.fromarray(gray).save(folder / f"{t:03d}.png")
    holes = read_masks(folder)
    assert holes.shape == (3, 1, 8, 10)
    assert [int(holes[t, 0, t].sum()) for t in range(3)] == [10, 10, 10] and holes.sum() == 30

    palette = Image.fromarray(np.array([[0, 2], [1, 0]], np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    palette.save(tmp_path / "davis.png")
    assert read_masks(tmp_path / "davis.png")[0, 0].tolist() == [[False, True], [True, False]]

    video = torch.zeros(4, 3, 32, 64)
    video[:, :, 8:24, 16:40] = 1
    write_video(tmp_path / "mask.mp4", video, fps=10)
    from_video = read_masks(tmp_path / "mask.mp4")
    assert from_video.shape == (4, 1, 32, 64)
    assert torch.equal(from_video, video[:, :1] > 0.5)


def test_hstack_panel():
    a, b = torch.zeros(2, 3, 4, 5), torch.ones(2, 3, 4, 6)
    panel = hstack_panel([a, b, a])
    assert panel.shape == (2, 3, 4, 16)
    assert panel[..., 5:11].min() == 1 and panel[..., :5].max() == 0
    with pytest.raises(ValueError, match="share"):
        hstack_panel([a, torch.zeros(3, 3, 4, 5)])


# ---------------------------------------------------------------- streaming
def random_uint8(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("width", [64, 48])  # decord rejects width 48: the PyAV path
def test_video_source_knows_its_size_and_streams_chunks(tmp_path, width):
    frames = random_uint8(11, 32, width)
    path = write_video(tmp_path / "clip.mp4", frames, fps=10, lossless=True)
    source = VideoSource(path)
    assert (source.num_frames, source.height, source.width) == (11, 32, width)
    assert source.fps == pytest.approx(10)
    chunks = list(source.chunks(4))
    assert [len(c) for c in chunks] == [4, 4, 3]
    assert torch.equal(torch.cat(chunks), frames)


def test_a_file_pyav_cannot_open_streams_through_decord(tmp_path, monkeypatch):
    frames = random_uint8(11, 32, 64)
    path = write_video(tmp_path / "clip.mp4", frames, fps=10, lossless=True)

    def refuse(path):
        raise RuntimeError("no PyAV here")

    monkeypatch.setattr(video_io, "_PyAVFile", refuse)
    source = VideoSource(path)
    assert type(source._file).__name__ == "_DecordFile"
    assert (source.num_frames, source.height, source.width) == (11, 32, 64)
    assert torch.equal(torch.cat(list(source.chunks(4))), frames)  # seeks back between reads


def test_frame_folder_streams_and_names_a_frame_of_another_size(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = random_uint8(5, 6, 9)
    for i, frame in enumerate(frames.numpy()):
        Image.fromarray(frame).save(folder / f"{i:05d}.png")
    source = VideoSource(folder)
    assert (source.num_frames, source.height, source.width, source.fps) == (5, 6, 9, FOLDER_FPS)
    assert torch.equal(torch.cat(list(source.chunks(2))), frames)
    Image.fromarray(np.zeros((7, 9, 3), np.uint8)).save(folder / "00003.png")
    with pytest.raises(VideoReadError, match="00003.png is 7x9, 00000.png 6x9"):
        list(VideoSource(folder).chunks(2))


def test_mask_sources_stream(tmp_path):
    hole = np.zeros((8, 10), np.uint8)
    hole[2:5, 3:6] = 255
    Image.fromarray(hole).save(tmp_path / "static.png")
    static = MaskSource(tmp_path / "static.png")
    assert static.num_frames == 1 and (static.height, static.width) == (8, 10)
    assert torch.equal(torch.cat(list(static.chunks(4))), read_masks(tmp_path / "static.png"))

    folder = tmp_path / "masks"
    folder.mkdir()
    for t in range(5):
        Image.fromarray(np.roll(hole, t, axis=1)).save(folder / f"{t:03d}.png")
    source = MaskSource(folder)
    assert source.num_frames == 5
    assert torch.equal(torch.cat(list(source.chunks(2))), read_masks(folder))


def test_writer_takes_chunks_and_equals_one_write(tmp_path):
    frames = random_uint8(9, 16, 24)
    with VideoWriter(tmp_path / "chunked.mp4", fps=5, lossless=True) as writer:
        for start in range(0, 9, 4):
            writer.write(frames[start : start + 4])
    assert writer.frames_written == 9
    decoded, fps = read_video(tmp_path / "chunked.mp4")
    assert torch.equal(decoded, frames) and fps == pytest.approx(5)


def test_writer_error_leaves_no_file(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="stopped"), VideoWriter(path, fps=5) as writer:
        writer.write(random_uint8(3, 16, 24))
        raise RuntimeError("stopped")
    mismatch = pytest.raises(ValueError, match="frames of 16x16 in a video of 16x24")
    with mismatch, VideoWriter(path, fps=5) as writer:
        writer.write(random_uint8(3, 16, 24))
        writer.write(random_uint8(3, 16, 16))
    with pytest.raises(ValueError, match="no frames"), VideoWriter(path, fps=5):
        pass
    assert list(tmp_path.iterdir()) == []
