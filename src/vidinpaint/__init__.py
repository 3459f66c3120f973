"""vidinpaint: Lightning + Hydra experiments for learning-based video inpainting."""

from pathlib import Path

__version__ = "0.1.0"

# conf/ of the checkout (src layout, editable install). Entry points pass it to @hydra.main as
# an absolute path: a relative config_path ("../../conf") is looked up as a Python package when
# the command runs as a console script, and is not found.
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
