"""Fixtures of the data tests (writers in data_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import make_video


@pytest.fixture
def video_folder(tmp_path: Path) -> Path:
    """Six 16-frame 32x32 videos in a small tree."""
    root = tmp_path / "videos"
    for i in range(6):
        make_video(root / ("sub" if i % 2 else "") / f"v{i}.mp4", 16, 32, 32, seed=i)
    return root
