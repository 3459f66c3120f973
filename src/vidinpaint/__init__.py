"""vidinpaint: Lightning + Hydra experiments for learning-based video inpainting."""

from pathlib import Path

import cv2  # before decord everywhere: decord's bundled zlib breaks cv2.imread on PNGs

# OpenCV's thread pool does not survive fork(): a DataLoader worker forked after this process
# used it (DIS flow in validation, resizing) deadlocks in its first OpenCV call. OpenCV runs
# sequentially in every vidinpaint process; the loader workers give the parallelism.
cv2.setNumThreads(0)

__version__ = "0.1.0"

# conf/ of the checkout (src layout, editable install). Entry points pass it to @hydra.main as
# an absolute path: a relative config_path ("../../conf") is looked up as a Python package when
# the command runs as a console script, and is not found.
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def __getattr__(name: str):
    """``vidinpaint.inpaint_video`` and ``vidinpaint.inpaint_frames`` (``api``), imported on
    first use: ``import vidinpaint.<module>`` does not load Hydra and the methods."""
    if name in ("inpaint_video", "inpaint_frames"):
        from vidinpaint import api

        return getattr(api, name)
    raise AttributeError(f"module 'vidinpaint' has no attribute {name!r}")
