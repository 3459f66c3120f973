"""vidinpaint: Lightning + Hydra experiments for learning-based video inpainting."""

__version__ = "0.1.0"
