"""Dataset adapters: where a dataset's videos are and how each clip is cropped.

An adapter lists candidate sources under a root (`find`) and gives each clip's crop box
(`clip_boxes`). Problems with one video raise SourceError (the skip reason); the index builder
logs and counts them. Adapters are dataclasses: their fields are the settings stored in (and
matched against) a prepared index.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidinpaint.atomic import exclusive
from vidinpaint.data.sources import (
    Box,
    SourceError,
    SourceInfo,
    center_box,
    frame_files,
    read_pts,
    square_box,
)
from vidinpaint.data.synthetic import write_synthetic_videos
from vidinpaint.errors import check_choice
from vidinpaint.video_io import VIDEO_SUFFIXES

CROP_MODES = ("center", "full")


@dataclass(frozen=True)
class Candidate:
    """One source found under a root.

    kind: "video", "frames" or "seq"; mask_path: the video's own hole masks (used by the `file`
    mask generator); annotation: what the crop boxes come from (face mask video, landmark
    folder); split: a fixed split ("test") or None for the 5:1 train/val split.
    """

    path: Path
    kind: str = "video"
    mask_path: Path | None = None
    annotation: Path | None = None
    split: str | None = None


class Adapter(ABC):
    """Finds a dataset's sources and crops its clips."""

    @abstractmethod
    def find(self, root: Path) -> list[Candidate]:
        """Candidate sources under root, in a deterministic order."""

    def prepare(self, root: Path) -> None:  # noqa: B027 (optional hook)
        """Create the dataset files if this adapter generates them (rank 0 only under DDP)."""

    def clip_boxes(
        self,
        candidate: Candidate,
        info: SourceInfo,
        starts: list[int],
        clip_len: int,
        aspect: float,
    ) -> list[Box | None]:
        """Crop box of each clip (None: the clip is unusable); aspect = width / height."""
        crop = getattr(self, "crop", "center")
        box = center_box(info.height, info.width, aspect if crop == "center" else None)
        return [box] * len(starts)

    def settings(self) -> dict[str, Any]:
        """The adapter's options (JSON-serialisable), stored in the prepared index."""
        return {"adapter": type(self).__name__, **json.loads(json.dumps(dataclasses.asdict(self)))}


def _check_crop(crop: str) -> None:
    check_choice("crop", crop, CROP_MODES)


def _visible_under(root: Path) -> list[Path]:
    """Everything under ``root``, sorted, except what lies in or is a hidden entry (``.name``:
    e.g. the ``.vidinpaint/`` index of vidinpaint-prepare)."""
    return sorted(
        p
        for p in root.rglob("*")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _videos_under(root: Path, extensions: tuple[str, ...]) -> list[Path]:
    suffixes = {e.lower() for e in extensions}
    return [p for p in _visible_under(root) if p.is_file() and p.suffix.lower() in suffixes]


@dataclass
class SyntheticAdapter(Adapter):
    """Procedural videos generated once as mp4 under the root (see data/synthetic.py)."""

    num_videos: int = 12
    num_frames: int = 64
    frame_size: int = 128
    seed: int = 0
    scene: str = "objects"

    def _marker(self, root: Path) -> Path:
        return root / "synthetic.json"

    def prepare(self, root: Path) -> None:  # noqa: B027 (optional hook)
        """Writes the videos unless the folder holds these settings' (one process at a time)."""
        marker = self._marker(root)
        wanted = self.settings()
        with exclusive(root / ".synthetic.lock"):
            if marker.exists() and json.loads(marker.read_text()) == wanted:
                return
            for old in root.glob("video_*.mp4"):
                old.unlink()
            write_synthetic_videos(
                root, self.num_videos, self.num_frames, self.frame_size, self.seed, self.scene
            )
            tmp = marker.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(wanted))
            tmp.replace(marker)

    def find(self, root: Path) -> list[Candidate]:
        return [Candidate(p) for p in sorted(root.glob("video_*.mp4"))]


@dataclass
class FolderAdapter(Adapter):
    """Any tree of video files of any size and fps; crop "center" (to the aspect of `size`)
    or "full" (resize the whole frame)."""

    extensions: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv")
    crop: str = "center"

    def __post_init__(self) -> None:
        self.extensions = tuple(self.extensions)
        _check_crop(self.crop)

    def find(self, root: Path) -> list[Candidate]:
        return [Candidate(p) for p in _videos_under(root, self.extensions)]


@dataclass
class FramesAdapter(Adapter):
    """Folders of JPEG/PNG frames (DAVIS, YouTube-VOS), each folder one video.

    frames_dir: where the sequence folders are, relative to root (null: JPEGImages/480p or
    JPEGImages if present, else the root itself). masks_dir: matching mask folders (null:
    Annotations/480p or Annotations if present, else none). Every folder holding images is a
    sequence; its mask folder has the same relative path under masks_dir.
    """

    frames_dir: str | None = None
    masks_dir: str | None = None
    crop: str = "center"

    def __post_init__(self) -> None:
        _check_crop(self.crop)

    @staticmethod
    def _pick(root: Path, given: str | None, defaults: tuple[str, ...]) -> Path | None:
        if given is not None:
            if not (root / given).is_dir():
                raise FileNotFoundError(f"folder not found: {root / given}")
            return root / given
        return next((root / d for d in defaults if (root / d).is_dir()), None)

    def find(self, root: Path) -> list[Candidate]:
        frames_root = self._pick(root, self.frames_dir, ("JPEGImages/480p", "JPEGImages")) or root
        masks_root = self._pick(root, self.masks_dir, ("Annotations/480p", "Annotations"))
        folders = [frames_root, *(p for p in _visible_under(frames_root) if p.is_dir())]
        candidates = []
        for folder in folders:
            if masks_root is not None and masks_root in (folder, *folder.parents):
                continue
            if not frame_files(folder):
                continue
            mask = masks_root / folder.relative_to(frames_root) if masks_root else None
            candidates.append(Candidate(folder, "frames", mask if mask and mask.is_dir() else None))
        return candidates


def _foreground_boxes(
    mask_video: Path, info: SourceInfo, background: str, chunk: int = 32
) -> np.ndarray:
    """Per-frame bounding box (x0, y0, x1, y1) of a mask video's non-background pixels; NaN rows
    for frames without any. Background "white" (FaceForensics) or "black" (FF++ masks)."""
    import decord

    reader = decord.VideoReader(str(mask_video), num_threads=1)
    if len(reader) != info.num_frames:
        raise SourceError(f"mask video has {len(reader)} frames, video has {info.num_frames}")
    height, width = reader[0].shape[:2]
    if (height, width) != (info.height, info.width):
        raise SourceError(f"mask video is {height}x{width}, video is {info.height}x{info.width}")
    value = 255 if background == "white" else 0
    boxes = np.full((len(reader), 4), np.nan)
    for first in range(0, len(reader), chunk):
        frames = reader.get_batch(list(range(first, min(first + chunk, len(reader))))).asnumpy()
        fg = np.abs(frames.astype(np.int16) - value).max(axis=3) > 32
        rows, cols = fg.any(axis=2), fg.any(axis=1)
        for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
            if r.any():
                ys, xs = np.flatnonzero(r), np.flatnonzero(c)
                boxes[first + i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def _union_square_boxes(
    frame_boxes: np.ndarray, starts: list[int], clip_len: int, scale: float, info: SourceInfo
) -> list[Box | None]:
    """Per clip: square around the union of the per-frame boxes (NaN rows = no box)."""
    result: list[Box | None] = []
    for start in starts:
        boxes = frame_boxes[start : start + clip_len]
        boxes = boxes[~np.isnan(boxes).any(axis=1)]
        if len(boxes) == 0:
            result.append(None)
            continue
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        x1, y1 = boxes[:, 2].max(), boxes[:, 3].max()
        result.append(square_box(x0, y0, x1, y1, scale, info.height, info.width))
    return result


@dataclass
class FaceForensicsAdapter(Adapter):
    """FaceForensics (2018) `{train,val,test}/{altered,mask,original}/<id>.avi`, or
    FaceForensics++ `original_sequences/youtube/<compression>/videos/<id>.mp4`.

    Face box per clip: bounding box of the mask video's non-background pixels over the clip's
    frames, square of side box_scale * max(w, h), shrunk to fit the frame. FF++ ships no boxes:
    its masks come from `ffpp_masks_dir` (files `<id>_*.mp4`, white face on black), or boxes
    from `boxes_file` (JSON {"<id>": [x0, y0, x1, y1]} or a list of such per frame).
    Videos of the `test` subset go to the test split; train and val are split 5:1.
    """

    layout: str = "auto"
    subsets: tuple[str, ...] = ("train", "val", "test")
    compression: str = "c23"
    ffpp_masks_dir: str = "manipulated_sequences/Deepfakes/masks/videos"
    boxes_file: str | None = None
    box_scale: float = 1.3

    def __post_init__(self) -> None:
        self.subsets = tuple(self.subsets)
        check_choice("layout", self.layout, ("auto", "v1", "ffpp"))

    def _layout(self, root: Path) -> str:
        if self.layout != "auto":
            return self.layout
        return "ffpp" if (root / "original_sequences").is_dir() else "v1"

    def find(self, root: Path) -> list[Candidate]:
        v1 = self._layout(root) == "v1"
        self._mask_background = "white" if v1 else "black"
        if v1:
            candidates = []
            for subset in self.subsets:
                for video in _videos_under(root / subset / "original", VIDEO_SUFFIXES):
                    mask = root / subset / "mask" / video.name
                    split = "test" if subset == "test" else None
                    candidates.append(Candidate(video, annotation=mask, split=split))
            return candidates
        videos_dir = root / "original_sequences" / "youtube" / self.compression / "videos"
        masks_dir = root / self.ffpp_masks_dir
        candidates = []
        for video in _videos_under(videos_dir, VIDEO_SUFFIXES):
            masks = sorted(masks_dir.glob(f"{video.stem}_*.mp4")) if masks_dir.is_dir() else []
            candidates.append(Candidate(video, annotation=masks[0] if masks else None))
        return candidates

    def clip_boxes(self, candidate, info, starts, clip_len, aspect):
        if self.boxes_file is not None:
            boxes = json.loads(Path(self.boxes_file).read_text()).get(candidate.path.stem)
            if boxes is None:
                raise SourceError(f"no box for {candidate.path.stem} in {self.boxes_file}")
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            if len(boxes) == 1:
                boxes = np.repeat(boxes, info.num_frames, axis=0)
            if len(boxes) != info.num_frames:
                raise SourceError(f"{len(boxes)} boxes for {info.num_frames} frames")
            return _union_square_boxes(boxes, starts, clip_len, self.box_scale, info)
        if candidate.annotation is None or not candidate.annotation.exists():
            raise SourceError(f"no face mask video ({candidate.annotation}) and no boxes_file")
        frame_boxes = _foreground_boxes(candidate.annotation, info, self._mask_background)
        return _union_square_boxes(frame_boxes, starts, clip_len, self.box_scale, info)


@dataclass
class VW300Adapter(Adapter):
    """300VW `<id>/vid.avi` with 68 landmarks per frame in `<id>/annot/000001.pts` (1-based).

    Face box per clip: min/max of the landmarks over the clip's frames, made square (side
    box_scale * max(w, h)) and shrunk to fit the frame. Clips without landmarks are dropped.
    """

    box_scale: float = 1.0

    def find(self, root: Path) -> list[Candidate]:
        return [
            Candidate(video, annotation=video.parent / "annot")
            for video in sorted(root.glob("*/vid.avi"))
        ]

    def clip_boxes(self, candidate, info, starts, clip_len, aspect):
        annot = candidate.annotation
        if annot is None or not annot.is_dir():
            raise SourceError(f"no landmark folder {annot}")
        frame_boxes = np.full((info.num_frames, 4), np.nan)
        for t in range(info.num_frames):
            pts = annot / f"{t + 1:06d}.pts"
            if pts.exists():
                points = read_pts(pts)
                frame_boxes[t] = (*points.min(axis=0), *points.max(axis=0))
        if np.isnan(frame_boxes).all():
            raise SourceError(f"no .pts landmark files in {annot}")
        return _union_square_boxes(frame_boxes, starts, clip_len, self.box_scale, info)


@dataclass
class CaltechAdapter(Adapter):
    """Caltech Pedestrian `setXX/VYYY.seq` (Norpix .seq of JPEGs, 640x480): central crop to the
    aspect of `size` (480x480, columns 80..559, for square sizes). Sets in test_sets form the
    test split; the others are split 5:1 into train/val."""

    test_sets: tuple[str, ...] = ("set06", "set07", "set08", "set09", "set10")
    crop: str = "center"

    def __post_init__(self) -> None:
        self.test_sets = tuple(self.test_sets)
        _check_crop(self.crop)

    def find(self, root: Path) -> list[Candidate]:
        return [
            Candidate(p, "seq", split="test" if p.parent.name in self.test_sets else None)
            for p in _videos_under(root, (".seq",))
        ]
