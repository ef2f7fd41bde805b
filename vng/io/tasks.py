"""Verification tasks (what the pipeline asks annotators) and the verdict log (what they answered), as files.

A task folder, written by ``vng annotate prepare`` and read by the verification tool (``annotation/``)::

    <tasks>/tasks.jsonl          one VerificationTask per line
    <tasks>/<files the records name, relative to <tasks>: frame images, rough masks, trace masks>

One record::

    {"object_id": "0f3c…", "video_name": "…", "dataset": "Oops", "split": "train",
     "object_name": "cake", "question": "A woman is holding a cake …", "question_hash": "", "noun_span": [20, 24],
     "frame_size": [854, 480],
     "keyframe": {"frame_id": "000012", "image": "frames/…/000012.jpg", "mask": "traces/0f3c….png"},
     "frames": [{"frame_id": "000000", "image": "frames/…/000000.jpg", "mask": "masks/0f3c…/000000.png"}, …],
     "candidates": [{"frame_id": "000000", "x": 312, "y": 140, "kind": "foreground"}, …]}

Candidates are in verification order (all foreground over the frames, then background, then uncertain); a verdict
names a candidate by its position. Their ``kind`` is a proposal and is spelled apart from the release statuses, so a
task file can never be read as a release.

The verdict log is append-only JSONL, one :class:`~vng.types.VerdictEvent` per line::

    {"event_id": "…", "object_id": "0f3c…", "annotator": "ana", "action": "verdict", "candidate": 3,
     "status": "ACCEPTED", "time_ms": 1733450000000, "duration_ms": 950}
    {"event_id": "…", "object_id": "0f3c…", "annotator": "ana", "action": "undo", "candidate": 3, "time_ms": …}
    {"event_id": "…", "object_id": "0f3c…", "annotator": "ana", "action": "skip", "time_ms": …}

``status`` uses the release's words (ACCEPTED = the object, REJECTED = not the object, AMBIGUOUS).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from vng.io.common import (FormatError, Location, ReadReport, iter_jsonl, read_records, require, skip_or_raise,
                           write_jsonl)
from vng.io.pointvos import LABEL_TO_STATUS, STATUS_TO_LABEL
from vng.types import (Candidate, CandidateKind, TaskFrame, VerdictAction, VerdictEvent, VerificationTask, frame_id,
                       parse_frame_id)

__all__ = ["TASKS_FILE", "task_record", "read_tasks", "write_tasks", "verdict_record", "read_verdicts",
           "append_verdicts", "write_verdicts"]

TASKS_FILE = "tasks.jsonl"


def _frame_record(frame: TaskFrame) -> dict:
    return {"frame_id": frame_id(frame.frame_index), "image": frame.image, "mask": frame.mask}


def task_record(task: VerificationTask) -> dict:
    """One task as its JSON record (module docstring)."""
    return {"object_id": task.object_id, "video_name": task.video_name, "dataset": task.dataset,
            "split": task.split, "object_name": task.object_name, "question": task.question,
            "question_hash": task.question_hash,
            "noun_span": None if task.noun_span is None else list(task.noun_span),
            "frame_size": list(task.frame_size), "keyframe": _frame_record(task.keyframe),
            "frames": [_frame_record(frame) for frame in task.frames],
            "candidates": [{"frame_id": frame_id(c.frame_index), "x": c.x, "y": c.y, "kind": c.kind.value}
                           for c in task.candidates]}


def _frame_index(raw, location: Location, name: str) -> int:
    value = require(raw, "frame_id", str, location, prefix=f"{name}.")
    try:
        return parse_frame_id(value)
    except ValueError as error:
        raise FormatError(str(error), location, f"{name}.frame_id") from None


def _parse_frame(raw, location: Location, name: str) -> TaskFrame:
    index = _frame_index(raw, location, name)
    image = require(raw, "image", str, location, prefix=f"{name}.")
    mask = require(raw, "mask", (str, type(None)), location, prefix=f"{name}.", optional=True)
    try:
        return TaskFrame(index, image, mask)
    except ValueError as error:
        raise FormatError(str(error), location, name) from None


def _parse_task(location: Location, raw) -> VerificationTask:
    object_id = require(raw, "object_id", str, location)
    location = location.at(record=object_id)
    candidates = []
    for position, item in enumerate(require(raw, "candidates", list, location)):
        name = f"candidates[{position}]"
        kind = require(item, "kind", str, location, prefix=f"{name}.")
        try:
            kind = CandidateKind(kind)
        except ValueError:
            raise FormatError(f"unknown kind {kind!r} (expected one of {[k.value for k in CandidateKind]})",
                              location, f"{name}.kind") from None
        index = _frame_index(item, location, name)
        x = require(item, "x", int, location, prefix=f"{name}.")
        y = require(item, "y", int, location, prefix=f"{name}.")
        try:
            candidates.append(Candidate(index, x, y, kind))
        except (ValueError, TypeError) as error:
            raise FormatError(str(error), location, name) from None
    span = require(raw, "noun_span", (list, type(None)), location, optional=True)
    size = require(raw, "frame_size", list, location)
    if len(size) != 2:
        raise FormatError(f"expected [width, height], got {size!r:.40}", location, "frame_size")
    if span is not None and len(span) != 2:
        raise FormatError(f"expected [start, end], got {span!r:.40}", location, "noun_span")
    return VerificationTask(
        object_id=object_id, video_name=require(raw, "video_name", str, location),
        dataset=require(raw, "dataset", str, location), split=require(raw, "split", str, location),
        object_name=require(raw, "object_name", str, location), question=require(raw, "question", str, location),
        question_hash=require(raw, "question_hash", str, location),
        noun_span=None if span is None else tuple(span), frame_size=tuple(size),
        keyframe=_parse_frame(require(raw, "keyframe", dict, location), location, "keyframe"),
        frames=tuple(_parse_frame(item, location, f"frames[{i}]")
                     for i, item in enumerate(require(raw, "frames", list, location))),
        candidates=tuple(candidates))


def read_tasks(path: str | os.PathLike, *, report: ReadReport | None = None) -> list[VerificationTask]:
    """The tasks of ``<folder>/tasks.jsonl`` (``path`` is the file or its folder); a duplicate object id is an
    error (skipped and reported with ``report``)."""
    path = Path(path)
    if path.is_dir():
        path = path / TASKS_FILE
    if not path.is_file():
        raise FormatError("no such task file", Location(str(path)))
    tasks, seen = [], set()
    for location, raw in iter_jsonl(path, report):
        for task in read_records(iter([(location, raw)]), _parse_task, report):
            if task.object_id in seen:
                skip_or_raise(FormatError(f"object {task.object_id!r} has a task already", location, "object_id"),
                              report)
                continue
            seen.add(task.object_id)
            tasks.append(task)
    return tasks


def write_tasks(path: str | os.PathLike, tasks: Iterable[VerificationTask]) -> None:
    """Write tasks JSONL atomically; duplicate object ids are refused before anything is written."""
    tasks = list(tasks)
    ids = [task.object_id for task in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate object ids would make verdicts ambiguous in {path}")
    write_jsonl(path, (task_record(task) for task in tasks))


def verdict_record(event: VerdictEvent) -> dict:
    """One event as its log line (module docstring)."""
    record = {"event_id": event.event_id, "object_id": event.object_id, "annotator": event.annotator,
              "action": event.action.value}
    if event.candidate is not None:
        record["candidate"] = event.candidate
    if event.label is not None:
        record["status"] = LABEL_TO_STATUS[int(event.label)]
    record["time_ms"] = event.time_ms
    if event.duration_ms is not None:
        record["duration_ms"] = event.duration_ms
    return record


def _parse_verdict(location: Location, raw) -> VerdictEvent:
    action = require(raw, "action", str, location)
    try:
        action = VerdictAction(action)
    except ValueError:
        raise FormatError(f"unknown action {action!r} (expected one of {[a.value for a in VerdictAction]})",
                          location, "action") from None
    status = require(raw, "status", str, location, optional=True)
    if status is not None and status not in STATUS_TO_LABEL:
        raise FormatError(f"unknown status {status!r} (expected one of {sorted(STATUS_TO_LABEL)})", location,
                          "status")
    return VerdictEvent(event_id=require(raw, "event_id", str, location),
                        object_id=require(raw, "object_id", str, location),
                        annotator=require(raw, "annotator", str, location), action=action,
                        candidate=require(raw, "candidate", int, location, optional=True),
                        label=None if status is None else STATUS_TO_LABEL[status],
                        time_ms=require(raw, "time_ms", int, location),
                        duration_ms=require(raw, "duration_ms", int, location, optional=True))


def read_verdicts(path: str | os.PathLike, *, report: ReadReport | None = None) -> list[VerdictEvent]:
    """The events of a verdict log, in log order. An event id seen before is a retry and is dropped when the two
    lines agree; two different events under one id are an error."""
    events, seen = [], {}
    for event in read_records(iter_jsonl(path, report), _parse_verdict, report):
        if event.event_id in seen:
            if seen[event.event_id] != event:
                skip_or_raise(FormatError(f"event id {event.event_id!r} names two different events",
                                          Location(str(path)), "event_id"), report)
            continue
        seen[event.event_id] = event
        events.append(event)
    return events


def append_verdicts(path: str | os.PathLike, events: Iterable[VerdictEvent]) -> None:
    """Append events to a log, each line written whole and flushed to disk before returning."""
    lines = "".join(json.dumps(verdict_record(event), ensure_ascii=False) + "\n" for event in events)
    if not lines:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(lines)
        handle.flush()
        os.fsync(handle.fileno())


def write_verdicts(path: str | os.PathLike, events: Iterable[VerdictEvent]) -> None:
    """Write a whole log atomically (an export of the tool's store)."""
    write_jsonl(path, (verdict_record(event) for event in events))
