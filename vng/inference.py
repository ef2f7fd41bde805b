"""The video segmentation session: the one interface every propagation method offers (init → prompt → propagate).

Modelled on SAM 2's ``init_state`` → ``add_new_points_or_box`` → ``propagate_in_video``, with typed arguments::

    session = method.start(Video.open("JPEGImages/480p/dog"))
    session.add_points(0, 1, Points(xy=[[420, 240]], labels=[1]))    # object 1, one foreground click on frame 0
    for frame_index, masks in session.propagate():                      # frame 0, 1, 2, …
        masks[1]                                                        # (H, W) bool

Object ids are small positive ints (the palette index the object gets in DAVIS-style PNGs). A method is anything
with a ``name`` and a ``start(video)``; :data:`vng.baselines.METHODS` lists the ones the library ships.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import numpy as np

from vng.io.video import Video
from vng.types import Points

__all__ = ["SegmentationSession", "Method"]


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


class Method(Protocol):
    """A segmentation method: a ``name`` (for reports) and a factory of sessions, one per video."""

    name: str

    def start(self, video: Video) -> SegmentationSession:
        """A fresh session on ``video`` (frames are read from it lazily, never all at once)."""
