import json

import pytest

from vng.io.common import FormatError, ReadReport
from vng.io.pointvos import read_pv_annotations
from vng.io.tasks import append_verdicts, read_tasks, read_verdicts, task_record, write_tasks, write_verdicts
from vng.types import (Candidate, CandidateKind, PointLabel, TaskFrame, VerdictAction, VerdictEvent,
                       VerificationTask)

FG, BG, UN = CandidateKind.FOREGROUND, CandidateKind.BACKGROUND, CandidateKind.UNCERTAIN


def make_task(object_id="a" * 32, question="A <script>alert(1)</script> dog runs.", span=(23, 26)):
    frames = tuple(TaskFrame(i, f"frames/v/{i:06d}.jpg", f"masks/{object_id}/{i:06d}.png") for i in (0, 5))
    candidates = (Candidate(0, 10, 10, FG), Candidate(5, 12, 11, FG), Candidate(0, 50, 40, BG),
                  Candidate(5, 3, 4, UN))
    return VerificationTask(object_id=object_id, video_name="train/clip one!", dataset="Oops", split="train",
                            object_name="dog", question=question, question_hash="h", noun_span=span,
                            frame_size=(64, 48), keyframe=TaskFrame(3, "frames/v/000003.jpg", f"traces/{object_id}.png"),
                            frames=frames, candidates=candidates)


def test_tasks_round_trip(tmp_path):
    tasks = [make_task(), make_task("b" * 32, question="A cat.", span=None)]
    write_tasks(tmp_path / "tasks.jsonl", tasks)
    assert read_tasks(tmp_path) == tasks
    record = task_record(tasks[0])
    assert record["candidates"][0] == {"frame_id": "000000", "x": 10, "y": 10, "kind": "foreground"}
    assert record["keyframe"] == {"frame_id": "000003", "image": "frames/v/000003.jpg", "mask": f"traces/{'a' * 32}.png"}


def test_a_task_file_is_never_a_release(tmp_path):
    # Candidates carry kinds, not statuses: the release reader refuses a task file.
    write_tasks(tmp_path / "tasks.jsonl", [make_task()])
    with pytest.raises(FormatError):
        read_pv_annotations(tmp_path / "tasks.jsonl")


@pytest.mark.parametrize("change, field", [
    (lambda r: r["candidates"][0].update(kind="ACCEPTED"), "candidates[0].kind"),
    (lambda r: r["candidates"][0].update(x=-1), "candidates[0]"),
    (lambda r: r["candidates"][0].update(frame_id="7"), "candidates[0].frame_id"),
    (lambda r: r["frames"][0].update(image="../../etc/passwd"), "frames[0]"),
    (lambda r: r["keyframe"].update(image="/etc/passwd"), "keyframe"),
    (lambda r: r.update(frame_size=[64]), "frame_size"),
    (lambda r: r.pop("question"), "question"),
])
def test_bad_task_fields_are_located(tmp_path, change, field):
    record = task_record(make_task())
    change(record)
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(FormatError) as error:
        read_tasks(path)
    assert error.value.field == field and error.value.location.line == 1


def test_tasks_out_of_order_or_off_frame_are_refused(tmp_path):
    record = task_record(make_task())
    record["candidates"].reverse()
    (tmp_path / "tasks.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(FormatError, match="verification order"):
        read_tasks(tmp_path)
    record = task_record(make_task())
    record["candidates"][0]["frame_id"] = "000001"
    (tmp_path / "tasks.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(FormatError, match="not one of the task's frames"):
        read_tasks(tmp_path)


def test_duplicate_task_ids_are_refused_and_reported(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        write_tasks(tmp_path / "tasks.jsonl", [make_task(), make_task()])
    line = json.dumps(task_record(make_task())) + "\n"
    (tmp_path / "tasks.jsonl").write_text(line + line + "{not json\n")
    report = ReadReport()
    assert len(read_tasks(tmp_path, report=report)) == 1
    assert [error.location.line for error in report.skipped] == [2, 3]


def event(event_id, action=VerdictAction.VERDICT, candidate=0, label=PointLabel.FOREGROUND, annotator="ana"):
    return VerdictEvent(event_id, "a" * 32, annotator, action, candidate, label, time_ms=1000, duration_ms=900)


def test_verdict_log_round_trip_and_retries(tmp_path):
    log = tmp_path / "verdicts.jsonl"
    events = [event("1"), event("2", candidate=1, label=PointLabel.AMBIGUOUS),
              event("3", VerdictAction.UNDO, candidate=1, label=None),
              VerdictEvent("4", "a" * 32, "ana", VerdictAction.SKIP, None, None, time_ms=5)]
    append_verdicts(log, events[:2])
    append_verdicts(log, events[1:])  # a retried request writes event 2 again: it counts once
    assert read_verdicts(log) == events
    assert json.loads(log.read_text().splitlines()[1])["status"] == "AMBIGUOUS"
    write_verdicts(tmp_path / "copy.jsonl", events)
    assert read_verdicts(tmp_path / "copy.jsonl") == events


def test_verdict_log_conflicts_and_bad_lines(tmp_path):
    log = tmp_path / "verdicts.jsonl"
    append_verdicts(log, [event("1"), event("1", label=PointLabel.BACKGROUND)])
    with pytest.raises(FormatError, match="two different events"):
        read_verdicts(log)
    log.write_text('{"event_id": "1", "object_id": "x", "annotator": "a", "action": "verdict", "candidate": 0, '
                   '"status": "MAYBE", "time_ms": 1}\n{"event_id": "2"')
    report = ReadReport()
    assert read_verdicts(log, report=report) == []
    assert [(e.location.line, e.field) for e in report.skipped] == [(1, "status"), (2, None)]
    with pytest.raises(ValueError, match="needs a label"):
        VerdictEvent("1", "x", "a", VerdictAction.VERDICT, 0, None, time_ms=1)
