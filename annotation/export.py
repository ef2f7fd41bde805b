"""Export: the verdict log (the format of :mod:`vng.io.tasks`) and the Point-VOS release made from it.

``<out>/``::

    verdicts.jsonl              every stored event, in the order stored (undos and skips included)
    <dataset>/<split>.json      the release records of the objects enough annotators finished (PV-Oops layout);
                                Kinetics: <split>.jsonl, a record per line (PV-Kinetics layout)
    summary.json                released / unfinished / skipped objects, agreement per candidate kind, and per
                                annotator: objects finished, verdicts, seconds per point

Every file is written atomically; the release reads back with :func:`vng.io.pointvos.read_pv_annotations`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vng.io.common import write_json
from vng.io.pointvos import write_pv_annotations
from vng.io.tasks import write_verdicts
from vng.types import ObjectAnnotation, VerdictEvent, VerificationTask
from vng.verification import ResolveConfig, ResolveResult, replay, resolve_verdicts

__all__ = ["JSONL_DATASETS", "ExportResult", "annotator_stats", "export"]

JSONL_DATASETS = frozenset({"Kinetics"})  # the release ships PV-Kinetics as JSONL, PV-Oops as one JSON per split
_PATH_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ExportResult:
    verdicts: Path
    release: tuple[Path, ...]
    summary: Path
    resolved: ResolveResult


def annotator_stats(tasks: Sequence[VerificationTask], events: Sequence[VerdictEvent]) -> dict[str, dict]:
    """Per annotator: objects finished and skipped, verdicts in force, and the mean seconds per verdict (the
    paper's figure: 0.95 s per point, Sec. 3.2)."""
    sizes = {task.object_id: len(task.candidates) for task in tasks}
    totals: dict[str, dict] = defaultdict(lambda: {"objects_finished": 0, "objects_skipped": 0, "verdicts": 0,
                                                   "seconds": 0.0})
    for object_id, annotators in replay(events).items():
        for name, state in annotators.items():
            row = totals[name]
            row["objects_finished"] += object_id in sizes and state.finished(sizes[object_id])
            row["objects_skipped"] += state.skipped
            row["verdicts"] += len(state.labels)
            row["seconds"] += state.seconds
    return {name: {"objects_finished": row["objects_finished"], "objects_skipped": row["objects_skipped"],
                   "verdicts": row["verdicts"],
                   "seconds_per_point": round(row["seconds"] / row["verdicts"], 3) if row["verdicts"] else None}
            for name, row in sorted(totals.items())}


def _release_path(out: Path, dataset: str, split: str) -> Path:
    for part in (dataset, split):
        if not _PATH_PART.fullmatch(part):
            raise ValueError(f"dataset / split {part!r} cannot name a release file")
    return out / dataset / f"{split}{'.jsonl' if dataset in JSONL_DATASETS else '.json'}"


def export(tasks: Sequence[VerificationTask], events: Sequence[VerdictEvent], out: str | Path, *,
           annotators_per_object: int = 1) -> ExportResult:
    """Write the verdict log, the release files (one per dataset and split of the tasks, empty when nothing is
    released there yet) and the summary under ``out``."""
    out = Path(out)
    resolved = resolve_verdicts(tasks, events, config=ResolveConfig(annotators_per_object=annotators_per_object))
    where = {task.object_id: (task.dataset, task.split) for task in tasks}
    groups: dict[tuple[str, str], list[ObjectAnnotation]] = {key: [] for key in dict.fromkeys(where.values())}
    for obj in resolved.objects:
        groups[where[obj.object_id]].append(obj)
    paths = {key: _release_path(out, *key) for key in groups}  # every name checked before anything is written
    verdicts = out / "verdicts.jsonl"
    write_verdicts(verdicts, events)
    for key, objects in groups.items():
        write_pv_annotations(paths[key], objects)
    summary = out / "summary.json"
    write_json(summary, {
        "annotators_per_object": annotators_per_object, "events": len(events), "tasks": len(tasks),
        "released": len(resolved.objects), "unfinished": list(resolved.unfinished), "skipped": list(resolved.skipped),
        "unknown_objects": list(resolved.unknown), "out_of_range_events": resolved.out_of_range,
        "agreement": resolved.agreement, "annotators": annotator_stats(tasks, events),
        "files": [str(path.relative_to(out)) for path in (verdicts, *paths.values())]}, indent=2)
    return ExportResult(verdicts, tuple(paths.values()), summary, resolved)
