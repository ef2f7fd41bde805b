"""``flow``: a training-free baseline anyone can run on a CPU — GrabCut from the points, then optical flow.

On the prompted frame, GrabCut grows the points into a mask (:mod:`vng.segmenters.grabcut`); every later (or, in
reverse, earlier) frame gets the previous mask warped by OpenCV DIS optical flow (backward flow, ``cv2.remap``), a
small morphological closing, and — with ``refine`` — one GrabCut round in a band around the warped mask's edge under
the object's colour models learnt on the prompted frame (frozen: re-learning them every frame lets the mask drift
into the background). No learning, no model files. DAVIS-2016 val, J&F 1/2/5/10 points: 25.7 / 30.2 / 35.1 / 42.8;
without refinement 10 points give 32.8.

Frames are read one at a time through :class:`~vng.io.video.Video` (cheap random access on frame folders; on video
files, reverse propagation re-decodes from the start for every frame, as ``Video`` never seeks backwards).

Overlapping objects are not resolved here: every object's mask is its own; :func:`vng.inference.label_map` merges
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

from vng.inference import ObjectPrompt, PromptedSession, SegmentationSession
from vng.io.video import Video
from vng.methods.motion import OpticalFlow, warp
from vng.segmenters.grabcut import ColourModels, GrabCutConfig, grabcut, point_seeds
from vng.types import Points

__all__ = ["FlowConfig", "FlowMethod"]


@dataclass(frozen=True)
class FlowConfig:
    """Knobs of the GrabCut + optical-flow baseline. Lengths are fractions of the frame's shorter side (px at 480p
    in the comments)."""

    grabcut: GrabCutConfig = field(default_factory=GrabCutConfig)  # the seeding on the prompted frame
    flow_preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM  # ~40 ms a 854x480 pair on 2 cores, 10 ms at 427x240
    # px: flow is computed at this shorter side (never upscaled) and resized back; on DAVIS-2016 val at 10 points
    # half size costs 0.9 J&F against full size and halves the run time
    flow_size: int = 240
    closing_radius: float = 0.01  # 5 px closing after each warp: fills the pinholes that flow interpolation leaves
    refine: bool = True  # re-cut each carried mask with GrabCut (module docstring): 32.8 → 42.8 J&F at 10 points
    refine_band: float = 0.03  # 14 px: the re-cut moves the edge within this band (0.05: +0.9 J&F, 1.5x slower)

    def __post_init__(self) -> None:
        for name in ("closing_radius", "refine_band"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} is a fraction of the frame's shorter side in [0, 1), got "
                                 f"{getattr(self, name)}")
        if self.flow_size < 16:
            raise ValueError(f"flow_size must be >= 16, got {self.flow_size}")


def _disk_kernel(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _mask_seeds(mask: np.ndarray, config: FlowConfig) -> tuple[np.ndarray, tuple[slice, slice]] | None:
    """GrabCut seeds around a carried mask: sure foreground deep inside, probable foreground/background in a band of
    ``refine_band`` on either side of its edge, sure background beyond. None for an empty mask."""
    height, width = mask.shape
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    radius = max(int(round(config.refine_band * min(height, width))), 1)
    kernel = _disk_kernel(radius)
    u8 = mask.view(np.uint8)
    seeds = np.full((height, width), cv2.GC_BGD, np.uint8)
    seeds[cv2.dilate(u8, kernel).astype(bool)] = cv2.GC_PR_BGD
    seeds[mask] = cv2.GC_PR_FGD
    seeds[cv2.erode(u8, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)] = cv2.GC_FGD
    margin = 2 * radius
    return seeds, (slice(max(y - margin, 0), min(y + h + margin, height)),
                   slice(max(x - margin, 0), min(x + w + margin, width)))


class _FlowSession(PromptedSession):
    def __init__(self, video: Video, config: FlowConfig):
        super().__init__(video)
        self.config = config
        width, height = video.size
        radius = int(round(config.closing_radius * min(width, height)))
        self._closing = _disk_kernel(radius) if radius > 0 else None
        self._models: dict[int, ColourModels] = {}

    def _initial_mask(self, object_id: int, image: np.ndarray, prompt: ObjectPrompt) -> np.ndarray:
        """The object's mask on its prompted frame; learns its colour models for the refinement on the way."""
        if isinstance(prompt, Points):
            mask, self._models[object_id] = grabcut(
                image, *point_seeds(prompt, *self.video.size, self.config.grabcut), self.config.grabcut)
            return mask
        if self.config.refine:  # a mask prompt is taken as it is; GrabCut only learns its colours
            self._models[object_id] = grabcut(image, *_mask_seeds(prompt, self.config), self.config.grabcut)[1]
        return prompt

    def _carry(self, object_id: int, image: np.ndarray, mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
        warped = warp(mask, flow, fill=0.0) > 0.5
        if self._closing is not None:
            warped = cv2.morphologyEx(warped.view(np.uint8), cv2.MORPH_CLOSE, self._closing).astype(bool)
        if self.config.refine:
            seeded = _mask_seeds(warped, self.config)
            if seeded is not None:
                refined, _ = grabcut(image, *seeded, self.config.grabcut, self._models[object_id])
                if refined.any():
                    return refined
        return warped

    def allow_overlap(self) -> bool:
        return True  # each object is carried and re-cut on its own

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        masks: dict[int, np.ndarray] = {}
        optical_flow = OpticalFlow(*self.video.size, self.config.flow_size, self.config.flow_preset)
        previous = None  # the previous frame, grey at the flow size
        for frame_index in self._frame_order(reverse):
            image = self.video[frame_index]  # streamed: one frame in memory (plus the previous grey one)
            grey = optical_flow.grey(image)
            if masks:
                flow = optical_flow(grey, previous)  # current → previous: backward flow for warp
                masks = {object_id: self._carry(object_id, image, mask, flow) for object_id, mask in masks.items()}
            for object_id, prompt in self._prompts.get(frame_index, {}).items():
                masks[object_id] = self._initial_mask(object_id, image, prompt)
            previous = grey
            if masks:
                yield frame_index, dict(masks)


@dataclass(frozen=True)
class FlowMethod:
    """GrabCut from the points on the prompted frame, then DIS optical flow frame to frame (module docstring)."""

    config: FlowConfig = field(default_factory=FlowConfig)
    name: str = "flow"

    def start(self, video: Video) -> SegmentationSession:
        return _FlowSession(video, self.config)
