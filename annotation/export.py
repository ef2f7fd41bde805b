"""Export: the verdict log (the format of :mod:`vng.io.tasks`) and the Point-VOS release made from it.

``<out>/``::

    verdicts.jsonl              every stored event, in the order stored (undos and skips included)
    <dataset>/<split>.json      the release (vng.pipeline.release.write_release): the records of the objects enough
                                annotators finished (PV-Oops layout); Kinetics: <split>.jsonl (PV-Kinetics layout)
    summary.json                released / unfinished / skipped objects, agreement per candidate kind, and per
                                annotator: objects finished, verdicts, seconds per point

Every file is written atomically; the release reads back with :func:`vng.io.pointvos.read_pv_annotations`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vng.io.common import read_json, write_json
from vng.io.tasks import write_verdicts
from vng.pipeline.release import write_release
from vng.types import VerdictEvent, VerificationTask
from vng.verification import ResolveConfig, ResolveResult

__all__ = ["ExportResult", "annotator_stats", "export"]


@dataclass(frozen=True)
class ExportResult:
    verdicts: Path
    release: tuple[Path, ...]
    summary: Path
    resolved: ResolveResult


def annotator_stats(tasks: Sequence[VerificationTask], resolved: ResolveResult) -> dict[str, dict]:
    """Per annotator of ``resolved`` (its replay of the log): objects finished and skipped, verdicts in force, and
    the mean seconds per verdict (the paper's figure: 0.95 s per point, Sec. 3.2)."""
    sizes = {task.object_id: len(task.candidates) for task in tasks}
    totals: dict[str, dict] = defaultdict(lambda: {"objects_finished": 0, "objects_skipped": 0, "verdicts": 0,
                                                   "seconds": 0.0})
    for object_id, annotators in resolved.states.items():
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


def export(tasks: Sequence[VerificationTask], events: Sequence[VerdictEvent], out: str | Path, *,
           annotators_per_object: int = 1) -> ExportResult:
    """Write the verdict log, the release files (one per dataset and split of the tasks, empty when nothing is
    released there yet) and the summary under ``out``."""
    out = Path(out)
    summary = out / "summary.json"
    previous = read_json(summary) if summary.is_file() else {}
    earlier = previous.get("files", []) if isinstance(previous, dict) else []
    verdicts = out / "verdicts.jsonl"
    write_verdicts(verdicts, events)
    release = write_release(tasks, events, out, config=ResolveConfig(annotators_per_object=annotators_per_object))
    resolved = release.resolved
    files = [str(path.relative_to(out)) for path in (verdicts, *release.files)]
    for stale in set(earlier) - set(files):  # an earlier export's release of other tasks: never mixed with this one
        if isinstance(stale, str) and Path(stale).suffix in (".json", ".jsonl") and ".." not in Path(stale).parts:
            (out / stale).unlink(missing_ok=True)
    write_json(summary, {
        "annotators_per_object": annotators_per_object, "events": len(events), "tasks": len(tasks),
        "released": len(resolved.objects), "unfinished": list(resolved.unfinished), "skipped": list(resolved.skipped),
        "unknown_objects": list(resolved.unknown), "out_of_range_events": resolved.out_of_range,
        "agreement": resolved.agreement, "annotators": annotator_stats(tasks, resolved),
        "files": files}, indent=2)
    return ExportResult(verdicts, release.files, summary, resolved)
