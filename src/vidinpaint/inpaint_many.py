"""Several clips in one ``vidinpaint-inpaint`` call.

``input=`` a folder of videos (files, or sub-folders of frames) or a list of clips, ``mask=``
the folder of their masks matched by name (``<clip>.mp4`` / ``<clip>.png`` / ``<clip>/``), a
list of the same length, or one mask for every clip. Each clip is one ``inpaint.run`` call
writing ``<output folder>/<clip>.mp4``; ``concurrent_fits`` of them run at once in separate
processes (each internal-learning fit is a small network: a GPU holds several). A clip that
fails is logged and counted, never stops the others; ``clips.json`` in the run folder lists
what was written and what was skipped, and why.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from vidinpaint import errors
from vidinpaint.atomic import atomic_path
from vidinpaint.video_io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, visible_entries

log = logging.getLogger(__name__)

RunFn = Callable[[DictConfig], Path]


def several_clips(cfg: DictConfig) -> bool:
    """``input`` is a list, or a folder holding videos or frame folders (not frames)."""
    if isinstance(cfg.input, ListConfig | list):
        return True
    folder = Path(cfg.input)
    if not folder.is_dir():
        return False
    entries = visible_entries(folder)
    has_frames = any(p.suffix.lower() in IMAGE_SUFFIXES for p in entries)
    has_clips = any(p.suffix.lower() in VIDEO_SUFFIXES or p.is_dir() for p in entries)
    return has_clips and not has_frames


def _named(paths: list[Path]) -> dict[str, Path]:
    return {path.stem if path.is_file() else path.name: path for path in paths}


def match_clips(inputs: object, masks: object) -> list[tuple[str, Path, Path]]:
    """``(name, video, mask)`` of every clip, sorted by name; errors name what is missing."""
    if isinstance(inputs, ListConfig | list):
        videos = [Path(str(p)) for p in inputs]
    else:
        folder = Path(str(inputs))
        videos = [
            p for p in visible_entries(folder) if p.suffix.lower() in VIDEO_SUFFIXES or p.is_dir()
        ]
    named = _named(videos)
    if len(named) != len(videos):
        raise errors.UserError(f"clip names repeat in input={inputs}: names must be distinct")
    if isinstance(masks, ListConfig | list):
        if len(masks) != len(videos):
            raise errors.UserError(f"{len(videos)} clips but {len(masks)} masks in the list")
        return [(name, video, Path(str(m))) for (name, video), m in zip(named.items(), masks)]
    mask_path = Path(str(masks))
    if not mask_path.is_dir():  # one mask image or video for every clip
        return [(name, video, mask_path) for name, video in named.items()]
    mask_named = _named(visible_entries(mask_path))
    # a clip without a mask gets a path that does not exist: its run reports it and is skipped
    return [(name, video, mask_named.get(name, mask_path / name)) for name, video in named.items()]


def output_folder(cfg: DictConfig) -> Path:
    """``output`` names the folder of the clips' videos (a trailing ``.mp4`` is dropped)."""
    output = Path(cfg.output)
    return output.with_suffix("") if output.suffix.lower() == ".mp4" else output


def clip_configs(cfg: DictConfig) -> list[tuple[str, DictConfig]]:
    """One resolved config per clip: its input, mask, output and state folder."""
    if cfg.get("gt"):
        raise errors.UserError("gt= scores one clip: not with a folder or list of clips")
    concurrent = int(cfg.concurrent_fits)
    if concurrent < 1:
        raise errors.UserError(f"concurrent_fits must be >= 1, got {concurrent}")
    folder = output_folder(cfg)
    state = Path(cfg.state_dir)
    clips = match_clips(cfg.input, cfg.mask)
    if not clips:
        raise errors.UserError(f"input={cfg.input} holds no video or frame folder")
    base = OmegaConf.to_container(cfg, resolve=True)
    configs = []
    for name, video, mask in clips:
        clip = OmegaConf.create(base)
        clip.input, clip.mask = str(video), str(mask)
        clip.output = str(folder / f"{name}.mp4")
        clip.state_dir = str(state / name)
        configs.append((name, clip))
    return configs


def _run_clip(run: RunFn, name: str, cfg: DictConfig) -> tuple[str, str | None, str | None]:
    """``(name, output, None)`` or ``(name, None, the error in one line)``."""
    try:
        return name, str(run(cfg)), None
    except Exception as err:  # a failing clip is skipped, whatever failed
        return name, None, errors.one_line(err)


def _init_worker(threads: int) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    torch.set_num_threads(threads)


def run_clips(cfg: DictConfig, run: RunFn) -> Path:
    """Inpaints every clip (``run`` per clip, ``concurrent_fits`` processes at a time);
    returns the output folder. Raises ``UserError`` only when no clip could be inpainted."""
    configs = clip_configs(cfg)
    concurrent = min(int(cfg.concurrent_fits), len(configs))
    log.info("%d clips, %d at a time, into %s", len(configs), concurrent, output_folder(cfg))
    if concurrent == 1:
        results = [_run_clip(run, name, clip) for name, clip in configs]
    else:
        threads = max(1, (os.cpu_count() or 1) // concurrent)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(concurrent, context, _init_worker, (threads,)) as pool:
            futures = [pool.submit(_run_clip, run, name, clip) for name, clip in configs]
            results = [future.result() for future in futures]
    done = {name: output for name, output, _ in results if output}
    skipped = {name: error for name, _, error in results if error}
    for name, error in skipped.items():
        log.warning("skipped clip %s: %s", name, error)
    log.info("inpainted %d of %d clips (%d skipped)", len(done), len(results), len(skipped))
    with atomic_path(Path(cfg.paths.output_dir) / "clips.json") as tmp:
        tmp.write_text(json.dumps({"done": done, "skipped": skipped}, indent=2) + "\n")
    if not done:
        raise errors.UserError(f"no clip could be inpainted ({len(skipped)} skipped)")
    return output_folder(cfg)
