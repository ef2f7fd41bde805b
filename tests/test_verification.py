import numpy as np
import pytest

from vng.io.pointvos import read_pv_annotations, write_pv_annotations
from vng.types import Candidate, CandidateKind, PointLabel, TaskFrame, VerdictAction, VerdictEvent, VerificationTask
from vng.verification import (AnnotatorState, ResolveConfig, SimulatedAnnotatorConfig, replay, resolve_verdicts,
                              simulate_labels, simulate_verdicts)

FG, BG, UN = CandidateKind.FOREGROUND, CandidateKind.BACKGROUND, CandidateKind.UNCERTAIN
A, R, M = PointLabel.FOREGROUND, PointLabel.BACKGROUND, PointLabel.AMBIGUOUS


def make_task(object_id="o1"):
    frames = tuple(TaskFrame(i, f"f/{i}.jpg") for i in (0, 9))
    candidates = (Candidate(0, 20, 20, FG), Candidate(9, 21, 20, FG), Candidate(0, 2, 2, BG), Candidate(9, 30, 20, UN))
    return VerificationTask(object_id, "video", "Oops", "train", "ball", "A ball rolls.", "qh", (2, 6), (40, 30),
                            TaskFrame(0, "f/0.jpg"), frames, candidates)


class Log:
    def __init__(self):
        self.events = []

    def add(self, annotator, action, candidate=None, label=None, object_id="o1"):
        self.events.append(VerdictEvent(str(len(self.events)), object_id, annotator, action, candidate, label,
                                        time_ms=len(self.events), duration_ms=1000))

    def verdicts(self, annotator, labels, object_id="o1"):
        for position, label in enumerate(labels):
            self.add(annotator, VerdictAction.VERDICT, position, label, object_id)


def test_undo_takes_back_the_latest_verdict_and_replay_keeps_the_rest():
    log = Log()
    log.verdicts("ana", [A, A, R])
    log.add("ana", VerdictAction.UNDO, 2)           # takes back R on candidate 2
    log.add("ana", VerdictAction.UNDO, 1)           # then A on candidate 1
    log.add("ana", VerdictAction.VERDICT, 1, M)
    state = replay(log.events)["o1"]["ana"]
    assert state.labels == {0: A, 1: M}
    assert state.seconds == 2.0 and not state.finished(4)
    log.add("ana", VerdictAction.VERDICT, 2, R)
    log.add("ana", VerdictAction.VERDICT, 3, A)
    log.add("ana", VerdictAction.VERDICT, 0, R)     # a second verdict on candidate 0 replaces the first
    state = replay(log.events)["o1"]["ana"]
    assert state.labels == {0: R, 1: M, 2: R, 3: A} and state.finished(4)
    log.add("ana", VerdictAction.UNDO, 0)           # undoing the second verdict on 0 puts the first back in force
    state = replay(log.events)["o1"]["ana"]
    assert state.labels == {0: A, 1: M, 2: R, 3: A} and state.seconds == 4.0


def test_the_state_is_kept_event_by_event():
    """What the tool keeps per annotator as events arrive: apply() says which candidate an undo left unlabelled."""
    log = Log()
    log.verdicts("ana", [A, R])
    log.add("ana", VerdictAction.VERDICT, 1, M)
    state = AnnotatorState()
    assert [state.apply(event) for event in log.events] == [None, None, None]
    assert state.labels == {0: A, 1: M} and len(state.verdicts) == 3
    def undo(candidate):
        return VerdictEvent(f"u{candidate}", "o1", "ana", VerdictAction.UNDO, candidate, None, time_ms=0)

    assert state.apply(undo(1)) is None and state.labels == {0: A, 1: R}  # 1 still has its earlier verdict
    assert state.apply(undo(1)) == 1 and state.labels == {0: A}
    assert state.apply(undo(0)) == 0 and state.apply(undo(0)) is None and state.labels == {} and state.verdicts == []
    state.apply(VerdictEvent("s", "o1", "ana", VerdictAction.SKIP, None, None, time_ms=0))
    assert state.skipped and not state.finished(0)


def test_resolve_gives_release_records_with_statuses_and_fg_candidates(tmp_path):
    log = Log()
    log.verdicts("ana", [A, R, R, M])
    result = resolve_verdicts([make_task(), make_task("o2")], log.events)
    assert result.unfinished == ("o2",) and len(result.objects) == 1
    obj = result.objects[0]
    assert (obj.object_id, obj.video_name, obj.object_name, obj.question, obj.noun_span) == (
        "o1", "video", "ball", "A ball rolls.", (2, 6))
    assert obj.frame_indices == [0, 9]
    assert obj.points_on(0).labels.tolist() == [A, R] and obj.points_on(0).xy.tolist() == [[20, 20], [2, 2]]
    assert obj.points_on(9).labels.tolist() == [R, M]
    assert obj.points_on(0).is_fg_candidate.tolist() == [True, False]
    assert obj.points_on(9).is_fg_candidate.tolist() == [True, False]
    write_pv_annotations(tmp_path / "train.json", result.objects)
    assert read_pv_annotations(tmp_path / "train.json") == list(result.objects)


def test_several_annotators_majority_ties_are_ambiguous_and_agreement():
    log = Log()
    log.verdicts("ana", [A, A, R, A])
    log.verdicts("bo", [A, R, R, R])
    log.verdicts("cy", [A, A, R, R])
    log.verdicts("dee", [A, A], object_id="o1")  # unfinished: does not vote
    three = resolve_verdicts([make_task()], log.events, config=ResolveConfig(annotators_per_object=3))
    labels = [label for frame in three.objects[0].frames for label in frame.points.labels.tolist()]
    assert labels == [A, R, A, R]  # frame 0: candidates 0 (A) and 2 (R); frame 9: candidates 1 (A) and 3 (R)
    assert three.agreement == {"foreground": 0.5, "background": 1.0, "uncertain": 0.0}
    two = Log()
    two.verdicts("ana", [A, A, R, A])
    two.verdicts("bo", [A, R, R, R])
    tied = resolve_verdicts([make_task()], two.events, config=ResolveConfig(annotators_per_object=2))
    assert tied.objects[0].points_on(9).labels.tolist() == [M, M]
    assert resolve_verdicts([make_task()], two.events, config=ResolveConfig(annotators_per_object=3)).objects == ()


def test_skips_unknown_objects_and_out_of_range_candidates_are_reported():
    log = Log()
    log.add("ana", VerdictAction.SKIP)
    log.add("ana", VerdictAction.VERDICT, 99, A)
    log.add("ana", VerdictAction.VERDICT, 0, A, object_id="nope")
    result = resolve_verdicts([make_task()], log.events)
    assert result.skipped == ("o1",) and result.unknown == ("nope",) and result.out_of_range == 1
    assert "1 events name a candidate outside" in result.summary()


def test_simulated_annotator_accepts_inside_rejects_outside_ambiguous_at_the_edge():
    mask = np.zeros((30, 40), bool)
    mask[10:20, 10:30] = True
    xy = np.array([[20, 15], [2, 2], [10, 15], [9, 15], [7, 15], [29.9, 19.9]])
    assert simulate_labels(mask, xy).tolist() == [A, R, M, M, R, M]
    assert simulate_labels(mask, xy, config=SimulatedAnnotatorConfig(edge_band=0)).tolist() == [A, R, A, R, R, A]
    with pytest.raises(ValueError, match="outside"):
        simulate_labels(mask, np.array([[40, 0]]))


def test_simulated_verdicts_resolve_to_the_truth():
    task = make_task()
    mask = np.zeros((30, 40), bool)
    mask[15:25, 15:25] = True
    events = simulate_verdicts(task, {0: mask, 9: mask})
    assert [e.candidate for e in events] == [0, 1, 2, 3] and len({e.event_id for e in events}) == 4
    result = resolve_verdicts([task], events + simulate_verdicts(task, {0: mask, 9: mask}))
    assert [f.points.labels.tolist() for f in result.objects[0].frames] == [[A, R], [A, R]]
