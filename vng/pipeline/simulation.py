"""The simulated annotator on a work folder: verdicts from dense masks, and how precise the candidates were.

For data with dense masks (the sample data, DAVIS): each task's object is the ground-truth object under its trace on
the keyframe (the label most trace pixels fall on, as the ``oracle`` method reads a prompt); the annotator of
:func:`vng.verification.simulate_verdicts` then accepts the candidates inside it, rejects those outside and calls
those within ``edge_band`` px of its edge ambiguous. An object no trace pixel of which lies on a labelled object
(a wall, the sky) is skipped, as an annotator would skip an object they cannot find.

:class:`CandidatePrecision` counts verdicts per proposed kind: the pipeline's precision (Sec. 3.2 hopes that
foreground candidates are accepted and background ones rejected; uncertain ones are where it was unsure).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from vng.io.common import FormatError, Location
from vng.io.masks import read_mask_png
from vng.io.pipeline import read_traced_objects
from vng.io.tasks import read_tasks
from vng.io.video import list_frame_files
from vng.pipeline.workdir import WorkDir
from vng.types import Candidate, CandidateKind, PointLabel, VerdictAction, VerdictEvent
from vng.verification import SimulatedAnnotatorConfig, simulate_verdicts

__all__ = ["CandidatePrecision", "label_under", "SimulationResult", "simulate_tasks"]

_VERDICT_NAMES = {PointLabel.FOREGROUND: "accepted", PointLabel.BACKGROUND: "rejected",
                  PointLabel.AMBIGUOUS: "ambiguous"}


@dataclass
class CandidatePrecision:
    """Verdicts per proposed kind: ``counts[kind][label]``."""

    counts: dict[CandidateKind, Counter] = field(default_factory=lambda: {kind: Counter() for kind in CandidateKind})

    def add(self, candidates: Iterable[Candidate], labels: Iterable[PointLabel]) -> None:
        for candidate, label in zip(candidates, labels, strict=True):
            self.counts[candidate.kind][PointLabel(int(label))] += 1

    def share(self, kind: CandidateKind, label: PointLabel) -> float | None:
        """The share of ``kind`` candidates that got ``label``; None without candidates of that kind."""
        total = sum(self.counts[kind].values())
        return self.counts[kind][label] / total if total else None

    @property
    def foreground_right(self) -> float | None:
        """Foreground candidates accepted (the goal: >= 95 %)."""
        return self.share(CandidateKind.FOREGROUND, PointLabel.FOREGROUND)

    @property
    def background_right(self) -> float | None:
        """Background candidates rejected (the goal: >= 99 %)."""
        return self.share(CandidateKind.BACKGROUND, PointLabel.BACKGROUND)

    def as_dict(self) -> dict:
        return {kind.value: {"candidates": sum(self.counts[kind].values()),
                             **{name: self.share(kind, label) for label, name in _VERDICT_NAMES.items()}}
                for kind in CandidateKind}

    def table(self) -> str:
        lines = [f"{'candidates':<12}{'count':>8}{'accepted':>10}{'rejected':>10}{'ambiguous':>10}"]
        for kind in CandidateKind:
            shares = [self.share(kind, label) for label in _VERDICT_NAMES]
            cells = "".join(f"{'-' if s is None else f'{100 * s:.1f}%':>10}" for s in shares)
            lines.append(f"{kind.value:<12}{sum(self.counts[kind].values()):>8}{cells}")
        return "\n".join(lines)


def label_under(trace: np.ndarray, labels: np.ndarray) -> int:
    """The non-zero value of the (H, W) ``labels`` most pixels of the (H, W) bool ``trace`` lie on; 0 when none."""
    values = labels[np.asarray(trace, bool)]
    values = values[values != 0]
    return int(np.bincount(values).argmax()) if len(values) else 0


def _mask_files(masks: Path, video_name: str, num_frames: int) -> list[Path]:
    files = list_frame_files(masks / video_name, suffixes=(".png",))
    if len(files) != num_frames:
        raise FormatError(f"{len(files)} mask PNGs for a video of {num_frames} frames: the simulated annotator needs "
                          f"dense masks, one per frame (frame i = the i-th file)", Location(str(masks / video_name)))
    return files


@dataclass(frozen=True)
class SimulationResult:
    """The events to log, the precision they show, and the objects skipped for want of a ground-truth object."""

    events: tuple[VerdictEvent, ...]
    precision: CandidatePrecision
    skipped: tuple[str, ...]


def simulate_tasks(workdir: WorkDir, masks: str | os.PathLike, *,
                   config: SimulatedAnnotatorConfig = SimulatedAnnotatorConfig(),
                   annotator: str = "simulated") -> SimulationResult:
    """Verdicts for every task of a work folder against dense masks (module docstring).

    Args:
        masks: ``<masks>/<video_name>/*.png`` (DAVIS ``Annotations/480p``: palette or 0/255 PNGs), one per frame,
            frame i = the i-th file in name order.
    """
    masks = Path(masks)
    num_frames = {obj.video_name: obj.num_frames for key in workdir.keys()
                  for obj in read_traced_objects(workdir.objects_file(key))}
    events: list[VerdictEvent] = []
    precision = CandidatePrecision()
    skipped = []
    files: dict[str, list[Path]] = {}
    for task in read_tasks(workdir.tasks_dir):
        if task.video_name not in files:
            files[task.video_name] = _mask_files(masks, task.video_name, num_frames[task.video_name])
        video_masks = files[task.video_name]
        trace = read_mask_png(workdir.tasks_dir / task.keyframe.mask).astype(bool)
        label = label_under(trace, read_mask_png(video_masks[task.keyframe.frame_index]))
        if label == 0:
            skipped.append(task.object_id)
            events.append(VerdictEvent(f"{task.object_id}/{annotator}/skip", task.object_id, annotator,
                                       VerdictAction.SKIP, None, None, 0))
            continue
        truth = {frame.frame_index: read_mask_png(video_masks[frame.frame_index]) == label for frame in task.frames}
        verdicts = simulate_verdicts(task, truth, annotator=annotator, config=config)
        precision.add(task.candidates, [event.label for event in verdicts])
        events += verdicts
    return SimulationResult(tuple(events), precision, tuple(skipped))
