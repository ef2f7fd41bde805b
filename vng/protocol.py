"""The Point-VOS benchmark protocol's conventions, below both the datasets that write benchmark data and the
benchmarks that read it (Sec. 4.1, Tabs. 3-8).

- :data:`SETTINGS`: the test-time point settings, 1 / 2 / 5 / 10 reference points per object;
- :func:`reference_points`: the k-point initialisation of an object, the first k foreground points of its first
  annotated frame (so the settings are nested, 1 ⊂ 2 ⊂ 5 ⊂ 10);
- :func:`object_key` / :func:`parse_object_key`: PV-DAVIS / PV-YT object ids ``<sequence>_<mask id>``, the row names
  of the DAVIS toolkit's per-sequence CSV;
- :data:`MAX_GT_FRAMES`: PV-Oops val has dense masks on at most 3 frames per object.
"""

from __future__ import annotations

import numpy as np

from vng.types import ObjectAnnotation, Points

__all__ = ["SETTINGS", "MAX_GT_FRAMES", "reference_points", "object_key", "parse_object_key"]

SETTINGS = (1, 2, 5, 10)  # reference points per object at test time (Sec. 4.1, Tab. 3)
MAX_GT_FRAMES = 3  # PV-Oops val: dense masks on at most 3 frames per object (FORMATS.md §2)


def reference_points(obj: ObjectAnnotation, num_points: int) -> tuple[int, Points]:
    """The k-point test-time initialisation of an object: ``(frame_index, first num_points foreground points)`` of its
    reference frame (its first annotated frame), in file order.

    Fewer points come back when the frame has fewer (small objects, Sec. 3.1). Raises ValueError when the object
    has no annotated frame or no foreground point on it.
    """
    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    if not obj.frames:
        raise ValueError(f"object {obj.object_id} has no annotated frame")
    reference = obj.frames[0]
    foreground = reference.points.foreground
    if len(foreground) == 0:
        raise ValueError(f"object {obj.object_id} has no foreground point on its reference frame "
                         f"{reference.frame_index}")
    return reference.frame_index, foreground.select(np.arange(len(foreground)) < num_points)


def object_key(sequence: str, mask_id: int) -> str:
    """The object id of a simulated record: ``f"{sequence}_{mask_id}"``."""
    return f"{sequence}_{int(mask_id)}"


def parse_object_key(object_id: str) -> tuple[str, int]:
    """Inverse of :func:`object_key`: ``"dog_2"`` → ``("dog", 2)`` (sequence names may contain ``_``)."""
    sequence, _, mask_id = object_id.rpartition("_")
    if not sequence or not mask_id.isdigit():
        raise ValueError(f"object id {object_id!r} is not '<sequence>_<mask id>'")
    return sequence, int(mask_id)
