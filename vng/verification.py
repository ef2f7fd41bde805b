"""From verdicts to verified points: replaying the verdict log, combining annotators, and the simulated annotator.

The verification step of the pipeline (Sec. 3.2, Fig. 4) asks annotators about each candidate of a
:class:`~vng.types.VerificationTask`; their answers arrive as :class:`~vng.types.VerdictEvent` s (the tool's log, or
:func:`simulate_verdicts` for data with dense masks). This module turns them into release records::

    tasks = read_tasks("work/tasks")
    events = read_verdicts("work/verdicts.jsonl")
    result = resolve_verdicts(tasks, events, config=ResolveConfig(annotators_per_object=1))
    write_pv_annotations("release/Oops/train.json", result.objects)
    print(result.summary())

Replay, per (object, annotator), in log order: a verdict judges a candidate (a later verdict on the same candidate
replaces the earlier one); an undo takes back that annotator's latest verdict on the object that is not yet taken
back; a skip gives the object up. An annotator has *finished* an object when every candidate has a verdict.

Combining (the paper has one annotator per object; the tool can ask several): an object is released when at least
``annotators_per_object`` annotators finished it; each candidate gets the majority verdict of those who finished,
and a tie is AMBIGUOUS (annotators disagreeing is what "ambiguous" means).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import cv2
import numpy as np

from vng.types import (Candidate, CandidateKind, FramePoints, ObjectAnnotation, PointLabel, Points, VerdictAction,
                       VerdictEvent, VerificationTask)

__all__ = ["AnnotatorState", "replay", "ResolveConfig", "ResolveResult", "resolve_verdicts", "candidates_to_points",
           "SimulatedAnnotatorConfig", "simulate_labels", "simulate_verdicts"]


@dataclass
class AnnotatorState:
    """One annotator's answers on one object, kept up to date event by event (the replay of the module docstring):
    what :func:`replay` folds a log into and what the verification tool keeps per annotator as events arrive."""

    verdicts: list[VerdictEvent] = field(default_factory=list)  # the verdicts in force, oldest first
    labels: dict[int, PointLabel] = field(default_factory=dict)  # candidate position -> its latest verdict in force
    skipped: bool = False

    def apply(self, event: VerdictEvent) -> int | None:
        """Apply the annotator's next event on the object; returns the candidate an undo left without a label (else
        None). Costs O(1), an undo O(verdicts in force)."""
        if event.action is VerdictAction.SKIP:
            self.skipped = True
        elif event.action is VerdictAction.VERDICT:
            self.verdicts.append(event)
            self.labels[event.candidate] = event.label
        elif self.verdicts:  # an undo; with nothing to take back it takes nothing
            undone = self.verdicts.pop().candidate
            earlier = next((verdict for verdict in reversed(self.verdicts) if verdict.candidate == undone), None)
            if earlier is not None:  # an earlier verdict on the same candidate is in force again
                self.labels[undone] = earlier.label
            else:
                del self.labels[undone]
                return undone
        return None

    @property
    def seconds(self) -> float:
        """Time spent on the verdicts in force."""
        return sum(verdict.duration_ms or 0 for verdict in self.verdicts) / 1000

    def finished(self, num_candidates: int) -> bool:
        return not self.skipped and len(self.labels) == num_candidates


def replay(events: Iterable[VerdictEvent]) -> dict[str, dict[str, AnnotatorState]]:
    """``{object_id: {annotator: AnnotatorState}}`` from events in log order (module docstring)."""
    states: dict[str, dict[str, AnnotatorState]] = defaultdict(dict)
    for event in events:
        states[event.object_id].setdefault(event.annotator, AnnotatorState()).apply(event)
    return dict(states)


@dataclass(frozen=True)
class ResolveConfig:
    annotators_per_object: int = 1  # finished annotators an object needs to be released (the paper: one)

    def __post_init__(self) -> None:
        if self.annotators_per_object < 1:
            raise ValueError(f"annotators_per_object must be >= 1, got {self.annotators_per_object}")


@dataclass(frozen=True)
class ResolveResult:
    """Released objects and what was left out, with why."""

    objects: tuple[ObjectAnnotation, ...]
    unfinished: tuple[str, ...]  # object ids with fewer finished annotators than asked for
    skipped: tuple[str, ...]  # object ids every annotator who touched them skipped
    unknown: tuple[str, ...]  # object ids in the log without a task
    out_of_range: int  # events naming a candidate the task does not have (ignored)
    agreement: dict[str, float]  # candidate kind -> share of candidates on which all finished annotators agree
    # the replay of the events that name a candidate of their task: {object_id: {annotator: AnnotatorState}}
    states: dict[str, dict[str, AnnotatorState]] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        lines = [f"{len(self.objects)} objects released, {len(self.unfinished)} unfinished, "
                 f"{len(self.skipped)} skipped"]
        if self.unknown:
            lines.append(f"{len(self.unknown)} object ids in the log have no task (first: {self.unknown[0]})")
        if self.out_of_range:
            lines.append(f"{self.out_of_range} events name a candidate outside their task (ignored)")
        if self.agreement:
            lines.append("agreement between annotators: " + ", ".join(
                f"{kind} {100 * share:.1f}%" for kind, share in self.agreement.items()))
        return "\n".join(lines)


def candidates_to_points(candidates: Sequence[Candidate], labels: Sequence[PointLabel]) -> tuple[FramePoints, ...]:
    """Verified candidates as release points per frame (``is_fg_candidate`` = proposed as foreground)."""
    by_frame: dict[int, list[tuple[Candidate, PointLabel]]] = defaultdict(list)
    for candidate, label in zip(candidates, labels, strict=True):
        by_frame[candidate.frame_index].append((candidate, label))
    return tuple(FramePoints(index, Points(xy=np.array([(c.x, c.y) for c, _ in rows], np.float32),
                                           labels=np.array([int(label) for _, label in rows], np.int8),
                                           is_fg_candidate=np.array([c.kind is CandidateKind.FOREGROUND
                                                                     for c, _ in rows], bool)))
                 for index, rows in sorted(by_frame.items()))


def _majority(labels: list[PointLabel]) -> PointLabel:
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return PointLabel.AMBIGUOUS
    return counts[0][0]


def resolve_verdicts(tasks: Iterable[VerificationTask], events: Iterable[VerdictEvent], *,
                     config: ResolveConfig = ResolveConfig()) -> ResolveResult:
    """Release records for the objects enough annotators finished (module docstring), in task order."""
    tasks = list(tasks)
    by_id = {task.object_id: task for task in tasks}
    events = list(events)
    out_of_range = 0
    valid = []
    for event in events:
        task = by_id.get(event.object_id)
        if task is not None and event.candidate is not None and event.candidate >= len(task.candidates):
            out_of_range += 1
            continue
        valid.append(event)
    states = replay(valid)
    released, unfinished, skipped = [], [], []
    agreed: Counter = Counter()
    judged: Counter = Counter()
    for task in tasks:
        annotators = states.get(task.object_id, {})
        finished = [state for state in annotators.values() if state.finished(len(task.candidates))]
        if len(finished) < config.annotators_per_object:
            if annotators and all(state.skipped for state in annotators.values()):
                skipped.append(task.object_id)
            else:
                unfinished.append(task.object_id)
            continue
        labels = []
        for position, candidate in enumerate(task.candidates):
            votes = [state.labels[position] for state in finished]
            labels.append(_majority(votes))
            if len(finished) > 1:
                judged[candidate.kind.value] += 1
                agreed[candidate.kind.value] += len(set(votes)) == 1
        released.append(ObjectAnnotation(object_id=task.object_id, video_name=task.video_name,
                                         object_name=task.object_name, question=task.question,
                                         question_hash=task.question_hash,
                                         frames=candidates_to_points(task.candidates, labels),
                                         noun_span=task.noun_span))
    unknown = sorted({event.object_id for event in events} - set(by_id))
    agreement = {kind.value: agreed[kind.value] / judged[kind.value] for kind in CandidateKind
                 if judged[kind.value]}
    return ResolveResult(tuple(released), tuple(unfinished), tuple(skipped), tuple(unknown), out_of_range,
                         agreement, states)


@dataclass(frozen=True)
class SimulatedAnnotatorConfig:
    """A perfect annotator with a fuzzy edge: it accepts candidates inside the object, rejects those outside, and
    calls AMBIGUOUS those within ``edge_band`` px of the object's boundary, where a person zoomed out cannot tell
    (and where dense masks themselves disagree by a pixel or two)."""

    edge_band: float = 2.0  # px; 0: only the mask decides

    def __post_init__(self) -> None:
        if self.edge_band < 0:
            raise ValueError(f"edge_band must be >= 0, got {self.edge_band}")


def simulate_labels(mask: np.ndarray, xy: np.ndarray, *,
                    config: SimulatedAnnotatorConfig = SimulatedAnnotatorConfig()) -> np.ndarray:
    """The simulated annotator's verdicts for points on one frame.

    Args:
        mask: (H, W) bool, the object's true mask on the frame.
        xy: (N, 2) (x, y) pixels; a point lies in pixel (floor(x), floor(y)).

    Returns:
        (N,) int8 :class:`PointLabel` values.
    """
    mask = np.asarray(mask, bool)
    xy = np.floor(np.asarray(xy, np.float64).reshape(-1, 2)).astype(int)
    height, width = mask.shape
    if len(xy) and ((xy < 0).any() or (xy[:, 0] >= width).any() or (xy[:, 1] >= height).any()):
        raise ValueError(f"points outside the {width}x{height} mask")
    inside = mask[xy[:, 1], xy[:, 0]]
    labels = np.where(inside, PointLabel.FOREGROUND, PointLabel.BACKGROUND).astype(np.int8)
    if config.edge_band > 0 and len(xy):
        u8 = np.pad(mask, 1, mode="edge").astype(np.uint8)
        # distance of each pixel to the nearest pixel of the other side: inside to background, outside to object
        to_background = cv2.distanceTransform(u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        to_object = cv2.distanceTransform(1 - u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        distance = np.where(mask, to_background, to_object)[xy[:, 1], xy[:, 0]]
        if mask.any() and not mask.all():
            labels[distance <= config.edge_band] = PointLabel.AMBIGUOUS
    return labels


def simulate_verdicts(task: VerificationTask, masks: dict[int, np.ndarray], *, annotator: str = "simulated",
                      config: SimulatedAnnotatorConfig = SimulatedAnnotatorConfig(),
                      time_ms: int = 0) -> list[VerdictEvent]:
    """One VERDICT event per candidate of ``task``, judged against ``masks`` ({frame index: (H, W) bool}); event ids
    are derived from (object, annotator, candidate), so simulating twice logs nothing new."""
    events = []
    for frame_index in sorted({candidate.frame_index for candidate in task.candidates}):
        if frame_index not in masks:
            raise KeyError(f"object {task.object_id}: no true mask for frame {frame_index}")
    for position, candidate in enumerate(task.candidates):
        label = simulate_labels(masks[candidate.frame_index], np.array([[candidate.x, candidate.y]]), config=config)[0]
        events.append(VerdictEvent(event_id=f"{task.object_id}/{annotator}/{position}", object_id=task.object_id,
                                   annotator=annotator, action=VerdictAction.VERDICT, candidate=position,
                                   label=PointLabel(int(label)), time_ms=time_ms))
    return events
