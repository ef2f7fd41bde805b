"""The video segmentation session: the one interface every propagation method offers (init → prompt → propagate),
and the one loop that runs a session over a whole video.

Modelled on SAM 2's ``init_state`` → ``add_new_points_or_box`` → ``propagate_in_video``, with typed arguments::

    session = build_method("flow").start(Video.open("JPEGImages/480p/dog"))
    session.add_points(0, 1, Points(xy=[[420, 240]], labels=[1]))    # object 1, one foreground click on frame 0
    for frame_index, masks in session.propagate():                      # frame 0, 1, 2, …
        masks[1]                                                        # (H, W) bool

Object ids are small positive ints (the palette index the object gets in DAVIS-style PNGs). A method is anything
with a ``name`` and a ``start(video)``; :mod:`vng.methods` maps names to the ones the library ships.

:func:`propagate_video` is how every caller runs a session over a video (``vng segment``, the benchmarks, the
annotation pipeline): forward from the prompts, then backward from them, every (frame, object) covered once.
:func:`label_map` merges objects into one id map with one rule for overlaps: the smallest mask wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Collection, Iterator, Protocol

import cv2
import numpy as np

from vng.io.masks import write_mask_png
from vng.io.video import Video
from vng.types import Points

__all__ = ["RUNTIME", "SegmentationSession", "Method", "ObjectPrompt", "PromptedSession", "mask_to_probability",
           "propagate_video", "label_map", "write_segmentation"]


class SegmentationSession(Protocol):
    """One video being segmented. Prompts are added per (frame, object); :meth:`propagate` streams the masks."""

    def add_points(self, frame_index: int, object_id: int, points: Points) -> None:
        """Prompt ``object_id`` on ``frame_index`` with points: ``points.xy`` (N, 2) float32 (x, y) pixels of the
        original frame; ``points.labels`` (N,) int8, 1 foreground, 0 background (-1 ambiguous: ignored)."""

    def add_mask(self, frame_index: int, object_id: int, mask: np.ndarray) -> None:
        """Prompt ``object_id`` on ``frame_index`` with a (H, W) bool mask (e.g. a pseudo-mask reference)."""

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Segment the video frame by frame, from the earliest prompted frame to the last frame (``reverse``: from
        the latest prompted frame back to frame 0), the prompted frame included.

        Yields:
            ``(frame_index, {object_id: (H, W) bool mask})`` per frame, for the objects prompted on this frame or
            on one already passed in this direction. An object prompted again on a later frame is re-initialised
            there from its prompt.
        """

    def propagate_probabilities(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """As :meth:`propagate`, with each object's (H, W) float32 foreground probability in [0, 1] instead of its
        mask: what the annotation pipeline thresholds into likely foreground, likely background and uncertain
        regions to sample point candidates (Sec. 3.2)."""

    def allow_overlap(self) -> bool:
        """Segment each object as if it were alone, so that masks may overlap (the annotation pipeline's objects are
        referents of captions: a tiger and its stripes, or one tiger named by two narratives, must not compete for
        pixels). Returns whether the session can: one whose objects interact (STCN's aggregation) returns False,
        and a caller that needs independent objects gives each its own session. Called before propagating; by
        default a session's objects are exclusive (a pixel belongs to at most one), as VOS benchmarks score them."""


# Dataclass field metadata of a method's (or its config's) settings that change where and how fast it runs, not what
# it predicts (the device, threads, caches): ``device: str = field(default="cpu", metadata=RUNTIME)``. A record of
# what produced a result leaves them out, so that processes on other GPUs, or a resume on another machine, count as
# the same run (vng.pipeline.workdir.stage_settings).
RUNTIME = {"runtime": True}


class Method(Protocol):
    """A segmentation method: a ``name`` (for reports) and a factory of sessions, one per video."""

    name: str

    def start(self, video: Video) -> SegmentationSession:
        """A fresh session on ``video`` (frames are read from it lazily, never all at once)."""


ObjectPrompt = Points | np.ndarray  # what one object is prompted with on one frame: points, or an (H, W) bool mask


def mask_to_probability(mask: np.ndarray, edge_width: float) -> np.ndarray:
    """A binary mask as a probability map: 0.5 on its edge, ramping linearly to 1 inside and 0 outside over
    ``edge_width`` px on either side (0: the mask as 0 / 1).

    Methods without probabilities of their own (the oracle, the flow baseline) give the pipeline this, so that
    their uncertain region is the band where a mask's edge is drawn (a pixel off either way is a fair call).

    Args:
        mask: (H, W) bool.

    Returns:
        (H, W) float32 in [0, 1].
    """
    mask = np.asarray(mask, bool)
    if edge_width <= 0 or mask.all() or not mask.any():
        return mask.astype(np.float32)
    u8 = mask.view(np.uint8)
    inside = cv2.distanceTransform(u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # distance to the nearest background
    outside = cv2.distanceTransform(1 - u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # to the nearest object pixel
    signed = np.where(mask, inside - 0.5, 0.5 - outside)  # the edge lies between the two pixel rows
    return np.clip(0.5 + signed / (2 * edge_width), 0.0, 1.0).astype(np.float32)


class PromptedSession:
    """Prompt bookkeeping that every session shares: validated prompts per (frame, object) and the order of a
    propagation pass (forward from the earliest prompted frame, backward from the latest)."""

    def __init__(self, video: Video):
        self.video = video
        self._num_frames = len(video)
        self._prompts: dict[int, dict[int, ObjectPrompt]] = {}

    @property
    def object_ids(self) -> list[int]:
        """The ids of the prompted objects, sorted."""
        return sorted({object_id for prompts in self._prompts.values() for object_id in prompts})

    @property
    def prompted_frames(self) -> list[int]:
        """The frames with prompts, sorted."""
        return sorted(self._prompts)

    @property
    def first_prompted_frames(self) -> dict[int, int]:
        """Object id → the earliest frame it is prompted on."""
        first: dict[int, int] = {}
        for frame_index in sorted(self._prompts):
            for object_id in self._prompts[frame_index]:
                first.setdefault(object_id, frame_index)
        return first

    def _check(self, frame_index: int, object_id: int) -> None:
        if not 0 <= frame_index < self._num_frames:
            raise IndexError(f"frame {frame_index} is outside the {self._num_frames} frames of {self.video.path}")
        if not 1 <= object_id <= 255:
            raise ValueError(f"object ids are palette indices in [1, 255], got {object_id}")

    def add_points(self, frame_index: int, object_id: int, points: Points | np.ndarray,
                   labels: np.ndarray | None = None) -> None:
        """Prompt ``object_id`` on ``frame_index`` with points, replacing its earlier prompt on that frame.

        Args:
            points: :class:`~vng.types.Points`, or an (N, 2) array of (x, y) pixels of the original frame.
            labels: with an array: (N,) int8, 1 foreground, 0 background, -1 ambiguous (ignored); default all
                foreground.
        """
        self._check(frame_index, object_id)
        if not isinstance(points, Points):
            xy = np.asarray(points, np.float32).reshape(-1, 2)
            points = Points(xy, np.ones(len(xy), np.int8) if labels is None else labels)
        elif labels is not None:
            raise ValueError("labels are given with an array of points, not with Points")
        if len(points.foreground) == 0:
            raise ValueError(f"object {object_id} on frame {frame_index}: no foreground point")
        outside = points.outside(*self.video.size)
        if outside.any():
            raise ValueError(f"object {object_id} on frame {frame_index}: points {points.xy[outside].tolist()} lie "
                             f"outside the {self.video.size[0]}x{self.video.size[1]} frame")
        self._prompts.setdefault(frame_index, {})[object_id] = points

    def add_mask(self, frame_index: int, object_id: int, mask: np.ndarray) -> None:
        """Prompt ``object_id`` on ``frame_index`` with a (H, W) bool mask (e.g. a pseudo-mask)."""
        self._check(frame_index, object_id)
        mask = np.asarray(mask, bool)
        width, height = self.video.size
        if mask.shape != (height, width):
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, the video is {width}x{height}")
        if not mask.any():
            raise ValueError(f"object {object_id} on frame {frame_index}: empty mask")
        self._prompts.setdefault(frame_index, {})[object_id] = mask

    def allow_overlap(self) -> bool:
        """Objects are exclusive unless a method says otherwise (:meth:`SegmentationSession.allow_overlap`)."""
        return False

    def _frame_order(self, reverse: bool) -> range:
        if not self._prompts:
            raise ValueError("add points or a mask before propagating")
        if reverse:
            return range(max(self._prompts), -1, -1)
        return range(min(self._prompts), self._num_frames)


    # Binary methods: the edge band of mask_to_probability, as a fraction of the frame's shorter side (5 px at 480p).
    soft_edge: float = 0.01

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        raise NotImplementedError

    def propagate_probabilities(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """The masks of :meth:`propagate` as probabilities (:func:`mask_to_probability`); methods with
        probabilities of their own override this."""
        edge = self.soft_edge * min(self.video.size)
        for frame_index, masks in self.propagate(reverse=reverse):
            yield frame_index, {object_id: mask_to_probability(mask, edge) for object_id, mask in masks.items()}


def propagate_video(session: PromptedSession, *, probabilities: bool = False,
                    frames: Collection[int] | None = None) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
    """Run a prompted session over its video: forward from the earliest prompted frame to the end, then backward
    from the latest prompted frame to frame 0, each (frame, object) taken from the pass that reaches it from the
    object's own prompt (the forward pass from an object's first prompted frame on, the backward pass before it).

    Frames are yielded once each, with every object: forward-only frames as they come, then the rest in reverse
    order. The forward results of frames that still wait for an object's backward pass (those between the earliest
    and the latest first-prompted frame) are held until then: nothing is held when all objects are prompted on one
    frame.

    Args:
        session: prompted (:meth:`PromptedSession.add_points` / ``add_mask``).
        probabilities: yield ``propagate_probabilities`` maps ((H, W) float32) instead of masks.
        frames: yield only these frames, and stop each pass once it is past the last of them in its direction
            (the annotation pipeline keeps 10 frames; the PV-Oops benchmark scores 3).

    Yields:
        ``(frame_index, {object_id: (H, W) mask or probability})``.
    """
    first = session.first_prompted_frames
    if not first:
        raise ValueError("add points or a mask before propagating")
    wanted = None if frames is None else set(frames)
    if wanted is not None and not wanted:
        return
    latest = max(first.values())
    run = session.propagate_probabilities if probabilities else session.propagate
    held: dict[int, dict[int, np.ndarray]] = {}
    for frame_index, results in run():
        if wanted is None or frame_index in wanted:
            if frame_index < latest:
                held[frame_index] = results  # objects prompted later still need their backward pass here
            else:
                yield frame_index, results
        if wanted is not None and frame_index >= max(wanted):
            break
    if latest == 0 or (wanted is not None and min(wanted) >= latest):
        yield from sorted(held.items(), reverse=True)
        return
    for frame_index, results in run(reverse=True):
        if frame_index >= latest:
            continue  # the forward pass covered it
        if wanted is None or frame_index in wanted:
            merged = held.pop(frame_index, {})
            merged.update({object_id: value for object_id, value in results.items() if first[object_id] > frame_index})
            yield frame_index, merged
        if wanted is not None and frame_index <= min(wanted):
            break


def label_map(masks: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """One (H, W) uint8 id map from ``{object id: (H, W) bool}``; where objects overlap, the smallest mask on this
    frame wins (it is painted last; ties: the higher id), so that a large, loose mask cannot swallow a small object.
    """
    labels = np.zeros(shape, np.uint8)
    for object_id in sorted(masks, key=lambda k: (-int(np.count_nonzero(masks[k])), k)):
        labels[masks[object_id]] = object_id
    return labels


def write_segmentation(session: PromptedSession, out: str | os.PathLike, *,
                       frame_names: list[str] | None = None) -> int:
    """Run a prompted session over its whole video (:func:`propagate_video`) and write one palette PNG per frame,
    ``<out>/<frame name>.png`` (pixel value = object id, 0 = background; overlaps: :func:`label_map`).

    Returns the number of files written.
    """
    out = Path(out)
    names = frame_names or session.video.frame_names
    width, height = session.video.size
    written = 0
    for frame_index, masks in propagate_video(session):
        write_mask_png(out / f"{names[frame_index]}.png", label_map(masks, (height, width)))
        written += 1
    return written
