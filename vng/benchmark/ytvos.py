"""YouTube-VOS figures: J and F split by seen / unseen object classes, and the overall G (FORMATS.md §5).

The validation server scores submissions itself; these helpers compute the same kind of figures from per-object
scores (e.g. :func:`vng.benchmark.frames.evaluate_frames` on a split with ground truth) given the class lists::

    scores = ytvos_scores(objects, classes={"vid1_1": "person", ...}, seen_classes=train_classes,
                          unseen_classes=other_classes)
    scores.overall          # G = mean of J_seen, F_seen, J_unseen, F_unseen

How the server averages inside a group (over objects or over per-class means) is not published: ``average``
chooses, objects by default as in DAVIS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from vng.benchmark.frames import ObjectScores

__all__ = ["overall_g", "YTVOSScores", "ytvos_scores"]


def overall_g(j_seen: float, f_seen: float, j_unseen: float, f_unseen: float) -> float:
    """YouTube-VOS overall score G: the plain mean of the four figures."""
    return (j_seen + f_seen + j_unseen + f_unseen) / 4


@dataclass(frozen=True)
class YTVOSScores:
    """The four YouTube-VOS figures (means of per-object mean J / F) and the object counts behind them."""

    j_seen: float
    f_seen: float
    j_unseen: float
    f_unseen: float
    seen_objects: int
    unseen_objects: int

    @property
    def overall(self) -> float:
        """G = (J_seen + F_seen + J_unseen + F_unseen) / 4."""
        return overall_g(self.j_seen, self.f_seen, self.j_unseen, self.f_unseen)


def _group_mean(values: Sequence[tuple[str, float]], average: str) -> float:
    """Mean of (class, value) pairs: over all pairs, or over classes of each class's mean."""
    if not values:
        return math.nan
    if average == "object":
        return float(np.mean([v for _, v in values]))
    by_class: dict[str, list[float]] = {}
    for name, value in values:
        by_class.setdefault(name, []).append(value)
    return float(np.mean([np.mean(v) for v in by_class.values()]))


def ytvos_scores(objects: Iterable[ObjectScores], classes: Mapping[str, str], *, seen_classes: Iterable[str],
                 unseen_classes: Iterable[str], average: str = "object") -> YTVOSScores:
    """J/F seen and unseen from per-object scores.

    Args:
        objects: per-object scores; each object's J and F are its frame means.
        classes: object name (:attr:`ObjectScores.name`, ``<video>_<object id>``) → class name.
        seen_classes, unseen_classes: disjoint class-name lists (seen = the training classes).
        average: ``"object"`` (mean over the group's objects) or ``"class"`` (mean over its classes of per-class
            means).

    Raises:
        ValueError: an object without a class, a class in neither or both lists, or an unknown ``average``.
    """
    if average not in ("object", "class"):
        raise ValueError(f"average must be 'object' or 'class', got {average!r}")
    seen, unseen = set(seen_classes), set(unseen_classes)
    both = sorted(seen & unseen)
    if both:
        raise ValueError(f"classes {both} are both seen and unseen")
    groups: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    for scores in objects:
        if scores.name not in classes:
            raise ValueError(f"object {scores.name!r} has no class")
        name = classes[scores.name]
        if name not in seen and name not in unseen:
            raise ValueError(f"object {scores.name!r}: class {name!r} is neither seen nor unseen")
        j_values, f_values = groups[name in seen]
        j_values.append((name, scores.j_mean))
        f_values.append((name, scores.f_mean))
    return YTVOSScores(_group_mean(groups[True][0], average), _group_mean(groups[True][1], average),
                       _group_mean(groups[False][0], average), _group_mean(groups[False][1], average),
                       len(groups[True][0]), len(groups[False][0]))
