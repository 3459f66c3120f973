"""vidinpaint-inpaint: bad input is one line and no output; a tiny run keeps size and frames."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from helpers import CONF_DIR, compose_config
from vidinpaint.inpaint import load_inputs, run, run_or_exit
from vidinpaint.models.internal import InternalLearningSystem
from vidinpaint.video_io import read_video
from vidinpaint.video_write import write_video

T, H, W = 8, 60, 100
FAST = [
    "method=dip_vid",
    "schedule=tiny",
    "resolution=[64,128]",
    "model.pad_mode=replicate",
    "model.loss.perceptual=0",
]


def save_mask(path: Path, mask: np.ndarray) -> Path:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return path


@pytest.fixture
def clip(tmp_path) -> dict[str, Path]:
    """An 8-frame 60x100 mp4 at 12 fps, masks (box, empty, full, wrong size), bad files."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = (
        np.stack(
            [
                np.stack(
                    [
                        128 + 100 * np.sin((x - 2 * t) / 8),
                        128 + 100 * np.cos(y / 6),
                        128 + 60 * np.sin((x + y) / 11),
                    ],
                    axis=-1,
                )
                for t in range(T)
            ]
        )
        .round()
        .astype(np.uint8)
    )
    box = np.zeros((H, W), bool)
    box[20:36, 40:64] = True
    folder = tmp_path / "three_masks"
    folder.mkdir()
    for i in range(3):
        save_mask(folder / f"{i:05d}.png", box)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.mp4").write_bytes(b"this is not a video")
    return {
        "video": write_video(tmp_path / "in.mp4", torch.from_numpy(frames), 12.0),
        "mask": save_mask(tmp_path / "mask.png", box),
        "zero": save_mask(tmp_path / "zero.png", np.zeros((H, W), bool)),
        "one": save_mask(tmp_path / "one.png", np.ones((H, W), bool)),
        "big": save_mask(tmp_path / "big.png", np.pad(box, ((0, 4), (0, 0)))),
        "three": folder,
        "empty": tmp_path / "empty",
        "bad": tmp_path / "bad.mp4",
        "out": tmp_path / "out" / "result.mp4",
    }


def config(clip: dict[str, Path], video: Path, mask: Path, *extra: str):
    base = FAST
    if any(e.startswith("method=") for e in extra):  # another method: no dip_vid settings
        base = [o for o in FAST if not o.startswith(("method=", "model."))]
    return compose_config(
        "inpaint",
        [*base, f"input={video}", f"mask={mask}", f"output={clip['out']}", *extra],
        output_dir=clip["out"].parent,
    )


BAD = {
    "unreadable video": ("bad", "mask", [], "cannot decode video"),
    "missing video": ("missing", "mask", [], "video not found"),
    "empty frame folder": ("empty", "mask", [], "has no"),
    "all-zero mask": ("video", "zero", [], "no hole pixel"),
    "all-one mask": ("video", "one", [], "covers every pixel"),
    "wrong-size mask": ("video", "big", [], "mask size 64x100 differs from the video's 60x100"),
    "frame count mismatch": ("video", "three", [], "mask has 3 frames, the video 8"),
    "resolution not a multiple of 64": ("video", "mask", ["resolution=[60,100]"], "multiples"),
    "external without checkpoint": ("video", "mask", ["method=combcn"], "needs ckpt=PATH"),
    "missing VGG16 weights": ("video", "mask", ["model.loss.perceptual=0.01"], "VGG16"),
    "no mask coverage": ("video", "mask", ["mask_coverage=0"], "mask_coverage must be 'any' or"),
    "mask coverage over 1": ("video", "mask", ["mask_coverage=1.5"], "in (0, 1], got 1.5"),
    "mask coverage as a word": ("video", "mask", ["mask_coverage=half"], "got 'half'"),
    "overlap as long as a chunk": (
        "video",
        "mask",
        ["chunk_frames=5", "chunk_overlap=5"],
        "chunk_overlap in [0, chunk_frames)",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_no_output(case, clip, capsys):
    video_key, mask_key, extra, expected = BAD[case]
    video = clip.get(video_key, clip["video"].with_name("missing.mp4"))
    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(config(clip, video, clip[mask_key], *extra))
    message = str(exit_info.value.code)
    assert message.startswith("vidinpaint-inpaint: error: ") and "\n" not in message
    assert expected in message
    assert not clip["out"].exists()
    assert not clip["out"].parent.exists() or not list(clip["out"].parent.glob("*.mp4"))


def test_cli_bad_input_exits_nonzero_with_one_error_line(clip, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "vidinpaint.inpaint",
        *FAST,
        f"input={clip['video']}",
        f"mask={clip['zero']}",
        f"output={clip['out']}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"vidinpaint-inpaint: error: mask {clip['zero']} has no hole pixel "
        "(non-zero = remove): nothing to do"
    ]
    assert not clip["out"].exists()


def test_static_mask_applies_to_every_frame_and_resizes_on_request(clip):
    frames, fps, holes = load_inputs(config(clip, clip["video"], clip["mask"]))
    assert frames.shape == (T, H, W, 3) and fps == pytest.approx(12.0)
    assert holes.shape == (T, 1, H, W) and holes.sum() == T * 16 * 24
    _, _, resized = load_inputs(config(clip, clip["video"], clip["big"], "mask_resize=true"))
    assert resized.shape == (T, 1, H, W) and resized.any()


def test_chunks_keep_known_pixels_bit_identical(clip):
    """Two overlapping chunks (frames 0-4 and 3-7): the lossless output's known pixels are
    the decoded input's, every hole pixel is filled."""
    output = run(config(clip, clip["video"], clip["mask"], "chunk_frames=5", "chunk_overlap=2"))
    frames, fps, holes = load_inputs(config(clip, clip["video"], clip["mask"]))
    result, _ = read_video(output)
    known = ~holes.permute(0, 2, 3, 1).expand_as(frames)
    assert result.shape == frames.shape
    assert torch.equal(result[known], frames[known])
    assert not torch.equal(result[~known], frames[~known])


class Interrupt(Exception):
    pass


def test_stopped_run_resumes_to_the_same_output(clip, tmp_path, monkeypatch):
    """A run stopped in its second chunk keeps its state in the run folder; the same command
    with resume=true fits only what was left and writes the uninterrupted run's video."""
    # two chunks of 8 iterations (2 epochs of the one 5-frame window, 4 times each)
    chunks = ["chunk_frames=5", "chunk_overlap=2", "state_every=3", "model.fit.iters_per_batch=4"]
    chunks.append("model.fit.epochs=2")
    reference = run(config(clip, clip["video"], clip["mask"], *chunks))
    expected, _ = read_video(reference)
    reference.unlink()
    step = InternalLearningSystem.training_step
    seen = []

    def stop_in_second_chunk(self, batch, index):
        seen.append(index)
        if seen.count(0) == 2 and index == 5:
            raise Interrupt
        return step(self, batch, index)

    cfg = config(clip, clip["video"], clip["mask"], *chunks)
    with monkeypatch.context() as patch:
        patch.setattr(InternalLearningSystem, "training_step", stop_in_second_chunk)
        with pytest.raises(Interrupt):
            run(cfg)
    state = Path(cfg.state_dir)
    assert sorted(p.name for p in state.iterdir()) == ["chunk_00000.pt", "chunk_00001.pt"]
    assert not clip["out"].exists()
    with pytest.raises(SystemExit, match="holds the state of a stopped run"):
        run_or_exit(cfg)
    resumed = []
    with monkeypatch.context() as patch:
        patch.setattr(
            InternalLearningSystem,
            "training_step",
            lambda self, batch, index: resumed.append(index) or step(self, batch, index),
        )
        output = run(config(clip, clip["video"], clip["mask"], *chunks, "resume=true"))
    assert resumed[0] == 3  # the second chunk from its state at iteration 3, the first not at all
    result, _ = read_video(output)
    assert torch.equal(result, expected)
    assert not state.exists()


def test_cli_run_writes_video_with_input_size_frames_and_rate(clip):
    output = run(config(clip, clip["video"], clip["mask"], "panel=true"))
    assert output == clip["out"] and output.is_file()
    frames, fps = read_video(output)
    assert frames.shape == (T, H, W, 3) and fps == pytest.approx(12.0)
    # known pixels of the written file (lossless by default) = the decoded input's
    source, _ = read_video(clip["video"])
    _, _, holes = load_inputs(config(clip, clip["video"], clip["mask"]))
    known = ~holes.permute(0, 2, 3, 1).expand_as(source)
    assert torch.equal(frames[known], source[known])
    assert not torch.equal(frames[~known], source[~known])
    panel, _ = read_video(output.with_name("result_panel.mp4"))
    assert panel.shape == (T, H, 2 * W, 3)


def test_sweep_runs_the_four_methods():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("inpaint", ["sweep=iccv19_ablation"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params.method == "dip,dip_vid,dip_vid_3dcn,dip_vid_flow"
    for method in cfg.hydra.sweeper.params.method.split(","):
        assert compose_config("inpaint", [f"method={method}"]).model.method == method


@pytest.mark.parametrize("method", ["combcn", "cn3d", "cn2d"])
def test_external_methods_select_their_model(method):
    cfg = compose_config("inpaint", [f"method={method}", "input=x", "mask=y", "ckpt=c.ckpt"])
    assert cfg.model.method == method


def moving_box_clip(folder: Path, height: int, width: int, frames: int = 10) -> tuple[Path, Path]:
    """A texture panning left 3 px per frame under a 20 px wide box moving right 4 px per frame
    (a video and a mask folder of ``height`` x ``width``): the hole's content shows in other
    frames."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 8 + 1, (width + 3 * frames) // 8 + 1, 3))
    texture = np.kron(texture, np.ones((8, 8, 1))).astype(np.uint8)
    masks = folder / "masks"
    masks.mkdir(parents=True)
    video = []
    for t in range(frames):
        video.append(texture[:height, 3 * t : 3 * t + width])
        box = np.zeros((height, width), bool)
        left = width // 3 + 4 * t
        box[height // 3 : height // 3 + height // 4, left : left + 20] = True
        save_mask(masks / f"{t:05d}.png", box)
    return write_video(folder / "in.mp4", torch.from_numpy(np.stack(video)), 12.0), masks


@pytest.mark.parametrize(("height", "width"), [(144, 176), (272, 640)])
def test_the_default_method_keeps_every_known_pixel_at_the_input_size(height, width, tmp_path):
    video, masks = moving_box_clip(tmp_path, height, width)
    out = tmp_path / "o.mp4"
    cfg = compose_config(
        "inpaint", [f"input={video}", f"mask={masks}", f"output={out}"], output_dir=tmp_path
    )
    assert cfg.model.method == "propagate"
    run(cfg)
    frames, _, holes = load_inputs(cfg)
    result, _ = read_video(out)
    assert result.shape == frames.shape
    known = ~holes.permute(0, 2, 3, 1).expand_as(frames)
    assert torch.equal(result[known], frames[known])
    error = (result.float() - frames.float()).abs()[~known].mean()
    assert error < 12  # the panned texture is found in other frames (mean fill: about 64)


def test_a_size_the_schedule_cannot_take_is_refused_before_decoding(clip, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("vidinpaint.inpaint.VideoSource", lambda *a: opened.append(a))
    overrides = [f"input={clip['video']}", f"mask={clip['mask']}", "method=dip_vid_flow"]
    cfg = compose_config(
        "inpaint",
        [*overrides, "schedule=fast", "resolution=[64,128]", f"output={tmp_path}/o.mp4"],
        output_dir=tmp_path,
    )
    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(cfg)
    assert "needs sides of at least 192" in str(exit_info.value.code)
    assert opened == []
    cfg = compose_config(  # the paper's perceptual loss without VGG16 weights on disk
        "inpaint",
        [*overrides, "model.loss.perceptual=0.01", f"model.loss.vgg_weights={tmp_path}/none.pth"],
        output_dir=tmp_path,
    )
    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(cfg)
    assert "VGG16 weights" in str(exit_info.value.code)
    assert opened == []


def test_paper_padding_on_a_small_video_runs_at_a_size_it_supports(tmp_path):
    video, masks = moving_box_clip(tmp_path, 144, 176, frames=3)
    out = tmp_path / "o.mp4"
    cfg = compose_config(
        "inpaint",
        [
            f"input={video}",
            f"mask={masks}",
            "method=dip_vid_flow",
            "schedule=tiny",
            f"output={out}",
        ],
        output_dir=tmp_path,
    )
    assert cfg.model.pad_mode == "reflect"  # as schedule=fast and schedule=paper
    run(cfg)
    assert read_video(out)[0].shape == (3, 144, 176, 3)


@pytest.mark.realdata
def test_make_demo_inpaints_bmx_trees(samples):
    """The README's first command on a real video: make demo (the default method)."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        ["make", "-C", str(root), "demo", f"SAMPLES={samples}", f"PY={sys.executable}"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "outputs/demo/bmx-trees_inpainted_panel.mp4" in result.stdout
    frames, _ = read_video(root / "outputs" / "demo" / "bmx-trees_inpainted.mp4")
    panel, _ = read_video(root / "outputs" / "demo" / "bmx-trees_inpainted_panel.mp4")
    assert frames.shape == (80, 240, 432, 3) and panel.shape == (80, 240, 864, 3)


@pytest.mark.realdata
def test_real_clip_with_its_object_masks(samples, tmp_path):
    frames_dir, masks_dir = tmp_path / "frames", tmp_path / "masks"
    frames_dir.mkdir()
    masks_dir.mkdir()
    for i in range(8):
        shutil.copy(samples / "object" / "bmx-trees_frames" / f"{i:05d}.jpg", frames_dir)
        shutil.copy(samples / "object" / "bmx-trees_mask" / f"{i:05d}.png", masks_dir)
    out = tmp_path / "out.mp4"
    cfg = compose_config(
        "inpaint",
        [*FAST, f"input={frames_dir}", f"mask={masks_dir}", f"output={out}"],
        output_dir=tmp_path,
    )
    run(cfg)
    frames, _ = read_video(out)
    assert frames.shape == (8, 240, 432, 3)


@pytest.mark.realdata
def test_real_long_clip_with_wrong_size_mask_is_an_error(samples, tmp_path):
    out = tmp_path / "out.mp4"
    cfg = compose_config(
        "inpaint",
        [
            *FAST,
            f"input={samples / 'long' / 'running_car.mp4'}",
            f"mask={samples / 'long' / 'mask_square.png'}",
            f"output={out}",
        ],
        output_dir=tmp_path,
    )
    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(cfg)
    assert "mask size 240x432 differs from the video's 540x972" in str(exit_info.value.code)
    assert not out.exists()


@pytest.mark.realdata
@pytest.mark.slow
def test_real_long_clip_in_chunks_with_resized_mask(samples, tmp_path):
    out = tmp_path / "out.mp4"
    cfg = compose_config(
        "inpaint",
        [
            *FAST,
            f"input={samples / 'long' / 'running_car.mp4'}",
            f"mask={samples / 'long' / 'mask_square.png'}",
            "mask_resize=true",
            f"output={out}",
        ],
        output_dir=tmp_path,
    )
    run(cfg)
    frames, _ = read_video(out)
    assert frames.shape == (292, 540, 972, 3)


# ---------------------------------------------------------------- several clips
@pytest.fixture
def clips(clip, tmp_path) -> dict[str, Path]:
    """A folder of three clips (two mp4 files, one frame folder) and a folder of masks
    matched by name; the third clip's mask is missing."""
    videos, masks = tmp_path / "clips", tmp_path / "clip_masks"
    videos.mkdir()
    masks.mkdir()
    frames, _ = read_video(clip["video"])
    write_video(videos / "pan.mp4", frames, 12.0)
    (videos / "reverse").mkdir()
    for i, frame in enumerate(frames.flip(0)[:6].numpy()):
        Image.fromarray(frame).save(videos / "reverse" / f"{i:05d}.png")
    write_video(videos / "unmasked.mp4", frames, 12.0)
    shutil.copy(clip["mask"], masks / "pan.png")
    shutil.copy(clip["mask"], masks / "reverse.png")
    return {"videos": videos, "masks": masks}


def test_a_folder_of_clips_inpaints_each_and_skips_a_failing_one(clip, clips, tmp_path):
    out = tmp_path / "out"
    cfg = compose_config(
        "inpaint",
        [*FAST, f"input={clips['videos']}", f"mask={clips['masks']}", f"output={out}.mp4"],
        output_dir=tmp_path / "run",
    )
    assert run_or_exit(cfg) == out
    assert sorted(p.name for p in out.iterdir()) == ["pan.mp4", "reverse.mp4"]
    assert read_video(out / "pan.mp4")[0].shape == (T, H, W, 3)
    assert read_video(out / "reverse.mp4")[0].shape == (6, H, W, 3)
    summary = json.loads((tmp_path / "run" / "clips.json").read_text())
    assert sorted(summary["done"]) == ["pan", "reverse"]
    assert list(summary["skipped"]) == ["unmasked"]
    assert "mask not found" in summary["skipped"]["unmasked"]


@pytest.mark.slow
def test_clips_fit_concurrently_in_processes(clip, clips, tmp_path):
    (clips["videos"] / "unmasked.mp4").unlink()
    out = tmp_path / "out"
    listed = f"input=[{clips['videos'] / 'pan.mp4'},{clips['videos'] / 'reverse'}]"
    masks = f"mask=[{clips['masks'] / 'pan.png'},{clips['masks'] / 'reverse.png'}]"
    cfg = compose_config(
        "inpaint",
        [*FAST, listed, masks, f"output={out}", "concurrent_fits=2"],
        output_dir=tmp_path / "run",
    )
    assert run_or_exit(cfg) == out
    assert sorted(p.name for p in out.iterdir()) == ["pan.mp4", "reverse.mp4"]
    sequential = compose_config(
        "inpaint",
        [*FAST, listed, masks, f"output={tmp_path / 'one_by_one'}"],
        output_dir=tmp_path / "run1",
    )
    # each of the 2 worker processes fitted with cpu_count // 2 threads: the same count here,
    # or the float sums (and so the uint8 output) differ in the last bits
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        run_or_exit(sequential)
    finally:
        torch.set_num_threads(threads)
    for name in ("pan.mp4", "reverse.mp4"):
        assert torch.equal(read_video(out / name)[0], read_video(tmp_path / "one_by_one" / name)[0])
