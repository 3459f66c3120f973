"""The clip index: (video, first frame, crop box) entries, split train:val 5:1.

``split_by`` (``SPLIT_BY``): ``clip`` splits the clips ("the whole data samples", AAAI'19 Sec.
4), so clips of one video fall on both sides; ``video`` splits the source videos, keeping all
clips of a video in one split (stricter: no scene is seen in training and validation); ``time``
splits every video in time: its clips in the first ratio/(ratio+1) of the frames train, those
in the last part validate, and a clip across the boundary is dropped (held-out frames of the
training videos, never seen in training). Sources with a fixed split (a dataset's own test
set) keep it in every mode.

Built by scanning a root with an adapter (bad sources are skipped with one warning line each
and counted), cached as JSON by `vidinpaint-prepare`, read back by the DataModule.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidinpaint.atomic import atomic_path
from vidinpaint.data.adapters import Adapter
from vidinpaint.data.sources import Box, SourceError, crop_resize, probe, read_frames
from vidinpaint.errors import check_choice

log = logging.getLogger(__name__)

INDEX_VERSION = 1
SPLITS = ("train", "val", "test")
SPLIT_BY = ("clip", "video", "time")
# VideoEntry.split of a video whose clips are split one by one (split_by=clip or time)
PER_CLIP = "per_clip"


@dataclass
class VideoEntry:
    """One source video. path is relative to the index root when inside it."""

    path: str
    kind: str
    num_frames: int
    height: int
    width: int
    split: str
    mask_path: str | None = None
    seq_offsets: list[int] | None = None


@dataclass
class ClipEntry:
    """clip_len frames of videos[video] from start, cropped to box; cached: a prepared mp4;
    split: the clip's own split (split_by=clip), None when it is its video's."""

    video: int
    start: int
    box: Box
    cached: str | None = None
    split: str | None = None


@dataclass
class ClipIndex:
    root: Path
    settings: dict[str, Any]
    videos: list[VideoEntry]
    clips: list[ClipEntry]
    skipped: list[dict[str, str]] = field(default_factory=list)
    mean_pixel: tuple[float, float, float] | None = None

    @property
    def clip_len(self) -> int:
        return int(self.settings["clip_len"])

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.settings["size"]
        return int(height), int(width)

    def resolve(self, path: str) -> Path:
        """Absolute path of a stored (possibly root-relative) path."""
        return self.root / path

    def clip_split(self, clip_id: int) -> str:
        clip = self.clips[clip_id]
        return clip.split if clip.split is not None else self.videos[clip.video].split

    def split_clips(self, split: str) -> list[int]:
        """Ids of the clips of a split, in index order."""
        return [i for i in range(len(self.clips)) if self.clip_split(i) == split]

    def summary(self) -> dict[str, int]:
        counts = {
            "videos": len(self.videos),
            "clips": len(self.clips),
            "skipped": len(self.skipped),
        }
        for split in SPLITS:
            counts[f"{split}_videos"] = len({self.clips[i].video for i in self.split_clips(split)})
            counts[f"{split}_clips"] = len(self.split_clips(split))
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "version": INDEX_VERSION,
            "root": str(self.root),
            "settings": self.settings,
            "summary": self.summary(),
            "mean_pixel": list(self.mean_pixel) if self.mean_pixel is not None else None,
            "skipped": self.skipped,
            "videos": [asdict(v) for v in self.videos],
            "clips": [asdict(c) for c in self.clips],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], root: Path) -> ClipIndex:
        return cls(
            root=root,
            settings=data["settings"],
            videos=[VideoEntry(**v) for v in data["videos"]],
            clips=[ClipEntry(**{**c, "box": tuple(c["box"])}) for c in data["clips"]],
            skipped=data["skipped"],
            mean_pixel=tuple(data["mean_pixel"]) if data["mean_pixel"] is not None else None,
        )


def index_settings(
    adapter: Adapter,
    clip_len: int,
    clip_stride: int,
    size: tuple[int, int],
    train_val_ratio: int,
    split_seed: int,
    split_by: str = "video",
) -> dict[str, Any]:
    """Everything an index depends on; a prepared index is used only if these match."""
    return {
        "split_by": split_by,
        **adapter.settings(),
        "clip_len": clip_len,
        "clip_stride": clip_stride,
        "size": list(size),
        "train_val_ratio": train_val_ratio,
        "split_seed": split_seed,
    }


def settings_key(settings: dict[str, Any]) -> str:
    """Short hash of the settings, used in the prepared index's file name."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def split_videos(num_videos: int, train_val_ratio: int, seed: int) -> list[str]:
    """Deterministic train/val split of n items (videos, or clips for split_by=clip),
    train_val_ratio : 1 (at least one val item when there are two or more)."""
    if num_videos < 2:
        return ["train"] * num_videos
    num_val = max(1, round(num_videos / (train_val_ratio + 1)))
    order = np.random.default_rng(seed).permutation(num_videos)
    splits = ["train"] * num_videos
    for i in order[:num_val]:
        splits[int(i)] = "val"
    return splits


def time_boundary(num_frames: int, train_val_ratio: int) -> int:
    """First held-out frame of a video split in time: frames [0, b) train, [b, end) val."""
    return round(num_frames * train_val_ratio / (train_val_ratio + 1))


def _assign_splits(
    videos: list[VideoEntry],
    clips: list[ClipEntry],
    fixed_splits: list[str | None],
    split_by: str,
    train_val_ratio: int,
    seed: int,
    clip_len: int,
) -> list[ClipEntry]:
    """Sets ``VideoEntry.split`` (and, split_by=clip or time, ``ClipEntry.split``) in place;
    returns the clips kept (split_by=time drops the clips across a video's boundary)."""
    free = [i for i, s in enumerate(fixed_splits) if s is None]
    for i, split in enumerate(fixed_splits):
        if split is not None:
            videos[i].split = split
    if split_by == "video":
        for i, split in zip(free, split_videos(len(free), train_val_ratio, seed), strict=True):
            videos[i].split = split
        return clips
    free_set = set(free)
    free_clips = [c for c in clips if c.video in free_set]
    for i in free:
        videos[i].split = PER_CLIP
    if split_by == "clip":
        splits = split_videos(len(free_clips), train_val_ratio, seed)
        for clip, split in zip(free_clips, splits, strict=True):
            clip.split = split
        return clips
    for clip in free_clips:
        boundary = time_boundary(videos[clip.video].num_frames, train_val_ratio)
        if clip.start + clip_len <= boundary:
            clip.split = "train"
        elif clip.start >= boundary:
            clip.split = "val"
    return [c for c in clips if c.video not in free_set or c.split is not None]


def _skip_summary(skipped: list[dict[str, str]]) -> str:
    if not skipped:
        return ""
    kinds = Counter(s["reason"].split(":")[0] for s in skipped)
    return " (" + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) + ")"


def build_index(
    root: Path,
    adapter: Adapter,
    clip_len: int,
    clip_stride: int,
    size: tuple[int, int],
    train_val_ratio: int = 5,
    split_seed: int = 0,
    split_by: str = "video",
) -> ClipIndex:
    """Scan root with adapter: probe every source, cut clips every clip_stride frames, crop
    boxes, split by ``split_by`` (``SPLIT_BY``). Raises FileNotFoundError for a missing root and
    ValueError when no usable clip is found or clips overlap under split_by=clip."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root not found: {root}")
    check_choice("split_by", split_by, SPLIT_BY)
    if split_by == "clip" and clip_stride < clip_len:
        raise ValueError(
            f"split_by=clip needs non-overlapping clips (clip_stride {clip_stride} < clip_len "
            f"{clip_len} would put the same frames in train and val); use split_by=video"
        )
    settings = index_settings(
        adapter, clip_len, clip_stride, size, train_val_ratio, split_seed, split_by
    )
    aspect = size[1] / size[0]
    candidates = adapter.find(root)
    videos: list[VideoEntry] = []
    boxes_per_video: list[list[tuple[int, Box]]] = []
    fixed_splits: list[str | None] = []
    skipped: list[dict[str, str]] = []
    for candidate in candidates:
        try:
            info = probe(candidate.path, candidate.kind)
            if info.num_frames < clip_len:
                raise SourceError(f"too short: {info.num_frames} frames < clip_len {clip_len}")
            starts = list(range(0, info.num_frames - clip_len + 1, clip_stride))
            boxes = adapter.clip_boxes(candidate, info, starts, clip_len, aspect)
            usable = [(s, b) for s, b in zip(starts, boxes, strict=True) if b is not None]
            if not usable:
                raise SourceError("no clip with a crop box")
        except SourceError as err:
            log.warning("skipping %s: %s", candidate.path, err)
            skipped.append({"path": str(candidate.path), "reason": str(err)})
            continue
        videos.append(
            VideoEntry(
                path=_relative(candidate.path, root),
                kind=candidate.kind,
                num_frames=info.num_frames,
                height=info.height,
                width=info.width,
                split="",
                mask_path=_relative(candidate.mask_path, root) if candidate.mask_path else None,
                seq_offsets=list(info.seq_offsets) if info.seq_offsets is not None else None,
            )
        )
        boxes_per_video.append(usable)
        fixed_splits.append(candidate.split)
    clips = [
        ClipEntry(video=v, start=start, box=tuple(int(x) for x in box))
        for v, usable in enumerate(boxes_per_video)
        for start, box in usable
    ]
    clips = _assign_splits(
        videos, clips, fixed_splits, split_by, train_val_ratio, split_seed, clip_len
    )
    log.info(
        "indexed %d videos (%d clips), skipped %d%s under %s",
        len(videos),
        len(clips),
        len(skipped),
        _skip_summary(skipped),
        root,
    )
    if not clips:
        raise ValueError(
            f"no usable clip of {clip_len} frames under {root} "
            f"({len(candidates)} sources found, {len(skipped)} skipped)"
        )
    return ClipIndex(root, settings, videos, clips, skipped)


def read_clip(index: ClipIndex, clip_id: int) -> np.ndarray:
    """One clip, cropped and resized to the index size: uint8 (T, H, W, 3) RGB."""
    clip = index.clips[clip_id]
    video = index.videos[clip.video]
    size, clip_len = index.size, index.clip_len
    if clip.cached is not None:
        frames = read_frames(Path(clip.cached), "video", 0, clip_len)
    else:
        offsets = tuple(video.seq_offsets) if video.seq_offsets is not None else None
        frames = read_frames(index.resolve(video.path), video.kind, clip.start, clip_len, offsets)
        frames = crop_resize(frames, clip.box, size)
    if frames.shape != (clip_len, *size, 3):
        raise ValueError(
            f"clip {clip_id} of {video.path} from frame {clip.start}: expected "
            f"{(clip_len, *size, 3)}, got {frames.shape}"
        )
    return frames


def mean_pixel(index: ClipIndex, clip_ids: list[int], max_clips: int) -> tuple[float, ...]:
    """Mean RGB in [0, 1] over up to max_clips clips spread evenly over clip_ids."""
    if not clip_ids:
        raise ValueError("no training clip to compute the mean pixel from")
    picks = np.unique(np.linspace(0, len(clip_ids) - 1, min(max_clips, len(clip_ids))).round())
    sums = np.zeros(3)
    count = 0
    for p in picks:
        frames = read_clip(index, clip_ids[int(p)])
        sums += frames.reshape(-1, 3).sum(axis=0, dtype=np.float64)
        count += frames.shape[0] * frames.shape[1] * frames.shape[2]
    return tuple(float(v) for v in sums / count / 255.0)


def cache_clips(index: ClipIndex, folder: Path, fps: float = 25.0) -> None:
    """Write every clip, cropped and resized, as an mp4 under folder; point the index at them."""
    from vidinpaint.video_write import write_video

    for i, clip in enumerate(index.clips):
        target = folder / f"{clip.video:05d}_{clip.start:06d}.mp4"
        if not target.exists():
            write_video(target, read_clip(index, i), fps, crf=15)
        if i == 0:
            try:
                read_frames(target, "video", 0, index.clip_len)
            except Exception as err:  # decord fails on some small widths (16, 24, 48 px)
                raise ValueError(
                    f"decord cannot read back cached clips of size {index.size} ({target}); "
                    "use a width that is a multiple of 32 or prepare.cache_clips=false"
                ) from err
        clip.cached = str(target.resolve())


def save_index(index: ClipIndex, path: Path) -> None:
    """Write the index JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(index.to_json()))


def load_index(path: Path, root: Path) -> ClipIndex:
    data = json.loads(Path(path).read_text())
    if data.get("version") != INDEX_VERSION:
        raise ValueError(f"index {path} has version {data.get('version')}, need {INDEX_VERSION}")
    return ClipIndex.from_json(data, Path(root))
