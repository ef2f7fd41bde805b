"""vng: point-supervised video object segmentation and video narrative grounding (Point-VOS, CVPR 2024)."""

__version__ = "0.1.0"
