"""The bad-input corpus: every console script, run as a user runs it, answers bad input with exit
status 1 and one line ``vidinpaint-<cmd>: error: ...`` on stderr: no traceback, no output
written, its inputs unchanged. One case per command runs in the default tier, the rest are slow.

stderr may hold other lines from libraries (Lightning's start-up notes, decord/FFmpeg's
"moov atom not found" for a corrupt video); only the error line counts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException, MissingConfigException
from PIL import Image

from helpers import CreatesFile
from vidinpaint import errors
from vidinpaint.checks import check_clip_shape
from vidinpaint.errors import UserError
from vidinpaint.models.completion import CompletionSystem
from vidinpaint.video_write import write_video

T, H, W = 8, 64, 64


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """What the cases read: a video, a mask, checkpoints good and bad, a corrupt dataset."""
    folder = tmp_path_factory.mktemp("inputs")
    frames = np.random.default_rng(0).integers(0, 256, (T, H, W, 3), dtype=np.uint8)
    write_video(folder / "in.mp4", torch.from_numpy(frames), 12.0)
    (folder / "hardlink.mp4").hardlink_to(folder / "in.mp4")
    hole = np.zeros((H, W), np.uint8)
    hole[20:36, 20:40] = 255
    Image.fromarray(hole).save(folder / "mask.png")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(folder / "zero.png")
    (folder / "existing.mp4").write_bytes(b"an earlier result")
    (folder / "notes.ckpt").write_text("epoch=3 step=100\n")
    torch.save({"state_dict": {"w": CreatesFile(folder / "code_ran")}}, folder / "crafted.ckpt")
    system = CompletionSystem(method="cn3d")
    torch.save(
        {
            "state_dict": system.state_dict(),
            "hyper_parameters": dict(system.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        folder / "cn3d.ckpt",
    )
    (folder / "corrupt").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / "corrupt" / name).write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    (folder / "empty").mkdir()
    return folder


def checksums(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def command(cmd: str) -> list[str]:
    script = Path(sys.executable).parent / f"vidinpaint-{cmd}"
    return [str(script)] if script.exists() else [sys.executable, "-m", f"vidinpaint.{cmd}"]


def run_command(cmd: str, args: list[str], inputs: Path, out: Path, **env: str):
    args = [a.format(i=inputs, o=out) for a in args]
    environ = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    environ.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1", **env)
    return subprocess.run(
        [*command(cmd), *args, f"hydra.run.dir={out / 'run'}"],
        capture_output=True,
        text=True,
        timeout=600,
        env=environ,
        cwd=out,
    )


def written(out: Path) -> list[str]:
    """Files the run wrote beside Hydra's own (.hydra/ config copy, <task>.log)."""
    return sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.suffix != ".log"
    )


slow = pytest.mark.slow
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
# --------------------------------------------------------------------------- the corpus
# (command, overrides, what the error line says); {i}: the inputs folder, {o}: this case's folder
TRAIN = ["model=cn3d", "schedule=tiny", "logger=none", "paths.data_dir={o}/data"]
TRAIN += ["data.clip_len=4", "data.size=[32,32]", "data.num_workers=0"]
INPUTS = ["input={i}/in.mp4", "mask={i}/mask.png"]
INPAINT = ["method=dip", "schedule=tiny", "resolution=[64,64]", "model.pad_mode=replicate", *INPUTS]
SMALL = ["data.clip_len=4", "data.size=[32,32]", "data.num_workers=0"]
CASES = {
    # vidinpaint-train
    "train size not a multiple": (
        "train",
        [*TRAIN, "data.size=[30,30]"],
        "data.size=[30, 30]: model=cn3d needs height and width in multiples of 8",
    ),
    "train missing root": (
        "train",
        [*TRAIN, "data=folder", "data.root={o}/nowhere"],
        "dataset root not found",
        slow,
    ),
    "train only corrupt videos": (
        "train",
        [*TRAIN, "data=folder", "data.root={i}/corrupt"],
        "no usable clip of 4 frames",
        slow,
    ),
    "train clip longer than the videos": (
        "train",
        [*TRAIN, "data.clip_len=500"],
        "data.clip_len=500 is longer than the synthetic videos (64 frames",
        slow,
    ),
    "train cn3d_ckpt a text file": (
        "train",
        [*TRAIN, "model=combcn", "model.cn3d_ckpt={i}/notes.ckpt"],
        "notes.ckpt: not a PyTorch checkpoint",
        slow,
    ),
    "train cn3d_ckpt runs code": (
        "train",
        [*TRAIN, "model=combcn", "model.cn3d_ckpt={i}/crafted.ckpt"],
        "holds code, not only weights",
        slow,
    ),
    "train resume from a missing file": (
        "train",
        [*TRAIN, "ckpt_path={o}/gone.ckpt"],
        "checkpoint to resume (ckpt_path) not found",
        slow,
    ),
    "train temporal stride with 6 frames": (
        "train",
        [*TRAIN, "model.temporal_stride=true", "data.clip_len=6"],
        "needs a multiple of 4 frames",
        slow,
    ),
    "train trainer=gpu without a GPU": (
        "train",
        [*TRAIN, "trainer=gpu"],
        "No supported gpu backend found",
        slow,
        no_gpu,
    ),
    "train ratio 3": ("train", [*TRAIN, "model.ratio=3"], "must be 2 or 4, got 3", slow),
    "train batch size 0": ("train", [*TRAIN, "data.batch_size=0"], "batch_size must be >= 1", slow),
    "train a method fitted per video": (
        "train",
        [*TRAIN, "model=dip_vid_flow"],
        "model=dip_vid_flow is fitted on the video it inpaints: vidinpaint-train trains cn3d, "
        "combcn, cn2d (run it with vidinpaint-inpaint method=dip_vid_flow)",
    ),
    "train a classic fill": (
        "train",
        [*TRAIN, "model=propagate"],
        "model=propagate is a classic fill without learning: vidinpaint-train trains",
    ),
    "train unknown model": (
        "train",
        [*TRAIN, "model=cn4d"],
        "Could not find 'model/cn4d' (options: cn2d, cn3d, combcn",
        slow,
    ),
    "train unknown key": ("train", [*TRAIN, "data.sise=[32,32]"], "+data.sise=[32,32]", slow),
    # vidinpaint-eval
    "eval checkpoint runs code": (
        "eval",
        [*SMALL, "ckpt={i}/crafted.ckpt"],
        "crafted.ckpt: it holds code, not only weights, and was not run",
    ),
    "eval checkpoint a text file": (
        "eval",
        [*SMALL, "ckpt={i}/notes.ckpt"],
        "not a PyTorch checkpoint",
        slow,
    ),
    "eval checkpoint a folder": ("eval", [*SMALL, "ckpt={i}"], "is a folder", slow),
    "eval size not a multiple": (
        "eval",
        [*SMALL, "ckpt={i}/cn3d.ckpt", "data.size=[36,36]"],
        "model=cn3d needs height and width in multiples of 8 (e.g. data.size=[40,40])",
        slow,
    ),
    "eval split train": ("eval", [*SMALL, "split=train"], "split must be val or test", slow),
    "eval nothing to score": ("eval", SMALL, "give ckpt=PATH", slow),
    # vidinpaint-inpaint
    "inpaint output a hard link of the input": (
        "inpaint",
        [*INPAINT, "output={i}/hardlink.mp4"],
        "is the input",
    ),
    "inpaint output the input": ("inpaint", [*INPAINT, "output={i}/in.mp4"], "is the input", slow),
    "inpaint output the mask": ("inpaint", [*INPAINT, "output={i}/mask.png"], "is the input", slow),
    "inpaint output exists": (
        "inpaint",
        [*INPAINT, "output={i}/existing.mp4"],
        "exists (set overwrite=true to replace it)",
        slow,
    ),
    "inpaint output below a file": (
        "inpaint",
        [*INPAINT, "output={i}/existing.mp4/out.mp4"],
        "existing.mp4 is a file, not a folder",
        slow,
    ),
    "inpaint output a folder that holds files": (
        "inpaint",
        [*INPAINT, "output={i}/"],
        "is not empty (set overwrite=true to replace it)",
        slow,
    ),
    "inpaint unknown codec": (
        "inpaint",
        [*INPAINT, "codec=h263", "output={o}/x.mp4"],
        "unknown codec 'h263' (codec= one of h264, hevc, vp9)",
        slow,
    ),
    "inpaint checkpoint a text file": (
        "inpaint",
        [*INPUTS, "method=cn3d", "ckpt={i}/notes.ckpt", "output={o}/x.mp4"],
        "not a PyTorch checkpoint",
        slow,
    ),
    "inpaint checkpoint runs code": (
        "inpaint",
        [*INPUTS, "method=cn3d", "ckpt={i}/crafted.ckpt", "output={o}/x.mp4"],
        "holds code, not only weights",
        slow,
    ),
    "inpaint chunk of 0 frames": (
        "inpaint",
        [*INPAINT, "chunk_frames=0", "output={o}/x.mp4"],
        "chunk_frames must be >= 1",
        slow,
    ),
    "inpaint empty mask": (
        "inpaint",
        [*INPAINT, "mask={i}/zero.png", "output={o}/x.mp4"],
        "has no hole pixel",
        slow,
    ),
    "inpaint missing input": (
        "inpaint",
        [*INPAINT, "input={i}/gone.mp4", "output={o}/x.mp4"],
        "video not found",
        slow,
    ),
    "inpaint no input given": ("inpaint", ["output={o}/x.mp4"], "Missing mandatory value", slow),
    # a box mask unquoted, as users type it (Hydra would read its commas as a sweep)
    "inpaint box outside the frame": (
        "inpaint",
        [*INPAINT, "mask=box:40,10,30,20", "output={o}/x.mp4"],
        "box 40,10,30,20 reaches past the 64x64 frame",
    ),
    "inpaint box without its height": (
        "inpaint",
        [*INPAINT, "mask=box:40,10,30", "output={o}/x.mp4"],
        "is not x,y,w,h or x,y,w,h@START:END",
        slow,
    ),
    "inpaint frames past the end": (
        "inpaint",
        [*INPAINT, "frames=4:12", "output={o}/x.mp4"],
        "frames=4:12: frames 4:12 run past the video's 8 frames",
        slow,
    ),
    # vidinpaint-prepare
    "prepare missing root": (
        "prepare",
        [*SMALL, "data=folder", "data.root={o}/nowhere"],
        "dataset root not found",
    ),
    "prepare only corrupt videos": (
        "prepare",
        [*SMALL, "data=folder", "data.root={i}/corrupt"],
        "no usable clip",
        slow,
    ),
    "prepare empty size": ("prepare", [*SMALL, "data.size=[0,32]"], "positive sizes", slow),
    # vidinpaint-bench
    "bench out below a file": (
        "bench",
        ["train", "out={i}/existing.mp4/bench.json"],
        "cannot write out=",
    ),
    "bench precision fp16": ("bench", ["train", "precision=fp16"], "precision must be", slow),
    "bench device=cuda without a GPU": (
        "bench",
        ["train", "device=cuda"],
        "no CUDA GPU is visible",
        slow,
        no_gpu,
    ),
    "bench unknown mode": ("bench", ["mode=serve"], "mode must be one of", slow),
}


def cases():
    for name, (cmd, args, expected, *marks) in CASES.items():
        yield pytest.param(cmd, args, expected, id=name, marks=marks)


@pytest.mark.parametrize("cmd, args, expected", cases())
def test_bad_input_is_one_line_exit_1_and_changes_nothing(cmd, args, expected, inputs, tmp_path):
    before = checksums(inputs)
    result = run_command(cmd, args, inputs, tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("vidinpaint-")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith(f"vidinpaint-{cmd}: error: ") and expected in errors[0], errors
    assert checksums(inputs) == before
    assert not (inputs / "code_ran").exists()
    assert [p for p in written(tmp_path) if not p.startswith("data/")] == []


@slow
def test_hydra_full_error_shows_the_traceback(inputs, tmp_path):
    result = run_command(
        "inpaint", [*INPAINT, "output={i}/in.mp4"], inputs, tmp_path, HYDRA_FULL_ERROR="1"
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "UserError: output" in result.stderr


@pytest.mark.parametrize(
    "method, ratio, temporal_stride",
    [
        ("cn3d", 2, False),
        ("cn3d", 4, False),
        ("cn3d", 2, True),
        ("combcn", 2, False),
        ("combcn", 4, True),
        ("cn2d", 2, False),
    ],
)
def test_clip_shape_check_accepts_exactly_what_the_networks_run(method, ratio, temporal_stride):
    """The up-front check against the nets themselves on small clips (T x H x W)."""
    system = CompletionSystem(method=method, ratio=ratio, temporal_stride=temporal_stride).eval()
    model = {"method": method, "ratio": ratio, "temporal_stride": temporal_stride}
    verdicts = set()
    for t, h, w in [(4, 8, 8), (4, 12, 8), (4, 16, 16), (6, 16, 16), (2, 16, 12), (4, 20, 18)]:
        try:
            check_clip_shape(model, [h, w], t)
            accepted = True
        except UserError:
            accepted = False
        try:
            with torch.no_grad():
                system(torch.rand(1, t, 3, h, w), torch.zeros(1, t, 1, h, w))
            runs = True
        except (ValueError, RuntimeError):
            runs = False
        assert accepted == runs, (t, h, w)
        verdicts.add(accepted)
    assert verdicts == {True, False}


def fails_with(err: Exception):
    def task(cfg):
        raise err

    return task


@pytest.mark.parametrize(
    "err, line",
    [
        (UserError("output x.mp4 exists"), "vidinpaint-x: error: output x.mp4 exists"),
        (
            FileNotFoundError("video not found: a.mp4"),
            "vidinpaint-x: error: video not found: a.mp4",
        ),
        (ValueError("first\n  detail"), "vidinpaint-x: error: first"),
    ],
)
def test_user_errors_end_the_run_with_one_line(err, line, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as info:
        errors.one_line_errors("vidinpaint-x")(fails_with(err))(None)
    assert info.value.code == line


def test_hydra_instantiation_errors_report_their_cause(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    wrapped = InstantiationException("Error in call to target 'X':\nValueError('bad size')")
    wrapped.__cause__ = ValueError("bad size")
    with pytest.raises(SystemExit, match="^vidinpaint-x: error: bad size$"):
        errors.one_line_errors("vidinpaint-x")(fails_with(wrapped))(None)


def test_bugs_and_debugging_keep_the_traceback(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(TypeError):
        errors.one_line_errors("vidinpaint-x")(fails_with(TypeError("a bug")))(None)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(UserError):
        errors.one_line_errors("vidinpaint-x")(fails_with(UserError("bad")))(None)
    # a DDP rank started by the launcher inherits the variables run_command set: one line
    monkeypatch.setenv(errors.OWN_FULL_ERROR, "1")
    with pytest.raises(SystemExit):
        errors.one_line_errors("vidinpaint-x")(fails_with(UserError("bad")))(None)


def test_config_errors_are_one_line():
    missing = MissingConfigException(
        "In 'train': Could not find 'model/x'\n\nAvailable: ...", options=["cn2d", "cn3d"]
    )
    assert errors.one_line(missing) == "In 'train': Could not find 'model/x' (options: cn2d, cn3d)"


def test_a_write_error_is_one_line_and_leaves_no_file(inputs, tmp_path):
    """A full disk, seen through a file size limit (the same OSError path: writes fail with
    EFBIG where ENOSPC would be): one line, exit 1, no partial output."""
    import resource

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    args = [*INPUTS, "method=telea", f"output={tmp_path}/out/o.mp4"]
    environ = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    environ.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [*command("inpaint"), *[a.format(i=inputs) for a in args], "hydra.run.dir=run"],
        capture_output=True,
        text=True,
        timeout=600,
        env=environ,
        cwd=tmp_path,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("vidinpaint-")]
    expected = f"cannot write {tmp_path}/out/o.mp4: File too large (no file was written)"
    assert lines == [f"vidinpaint-inpaint: error: {expected}"]
    assert list((tmp_path / "out").iterdir()) == []  # neither the output nor its temp file


def test_hidden_entries_of_an_input_folder_are_ignored(inputs, tmp_path):
    """A folder of clips with vidinpaint-prepare's hidden index, and a frame folder with a
    hidden file of an image suffix: neither is read as a clip or a frame."""
    frames = np.random.default_rng(1).integers(0, 256, (T, H, W, 3), dtype=np.uint8)
    clips = tmp_path / "clips"
    (clips / "walk").mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(clips / "walk" / f"{i:05d}.png")
    (clips / "walk" / "._00000.png").write_bytes(b"resource fork, not an image")
    (clips / ".vidinpaint").mkdir()
    (clips / ".vidinpaint" / "index.json").write_text("{}")
    write_video(clips / "pan.mp4", torch.from_numpy(frames), 12.0)
    args = [f"input={clips}", "mask={i}/mask.png", "method=telea", f"output={tmp_path}/out"]
    result = run_command("inpaint", args, inputs, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "clips.json").read_text())
    assert sorted(summary["done"]) == ["pan", "walk"] and not summary["skipped"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pan.mp4", "walk.mp4"]
