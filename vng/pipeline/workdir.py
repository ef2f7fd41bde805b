"""The annotation pipeline's work folder, and what every stage shares: one folder per video, sharding by video,
resuming per video, and reports of what each stage did.

Layout (``WORKDIR/``)::

    videos/<key>/objects.jsonl            stage 1: the video's objects (vng.io.pipeline)
    videos/<key>/trace_masks/<id>.png     stage 2: each object's keyframe pseudo-mask, 0/1
    videos/<key>/trace_masks.jsonl        stage 2: their records
    videos/<key>/probabilities.npz        stage 3: the maps of the frames candidates are sampled on
    videos/<key>/tasks.jsonl              stage 4: the video's verification tasks
    tasks/tasks.jsonl                     stage 4: every video's tasks, the task folder of vng.io.tasks
    tasks/<key>/frames/<frame_id>.jpg     frames the tasks show, at the video's size
    tasks/<key>/masks/<id>/<frame_id>.png the propagated rough masks, 0/1
    tasks/<key>/traces/<id>.png           the traces rasterised on their keyframes, 0/1
    stages.json                           the settings each stage ran with
    summary.json                          the last run's report (summary.<i>-of-<n>.json per process when sharded)

``<key>`` names a video safely on any file system (:func:`video_key`). A stage has finished a video when the
video's output file of that stage exists: every file is written atomically (a temporary file renamed over the
target), the stage's record file last, so a killed run leaves finished videos whole and resumes with the first
unfinished one; the temporary files a kill leaves behind are deleted when the video is taken up again. A work
folder holds one run: each stage records its settings (its inputs, its method, segmenter and configs) in
``stages.json`` (:meth:`WorkDir.begin_stage`), and a stage asked to run with other settings is refused, saying
what differs, unless it is told to overwrite: then it deletes its own and the later stages' results (of this
process's share of the videos) and runs again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tqdm.auto import tqdm

from vng.io.common import FormatError, Location, read_json, write_json
from vng.io.outputs import OutputConflict, remove_stale_temporaries
from vng.io.tasks import TASKS_FILE

__all__ = ["STAGES", "video_key", "shard_of", "stage_settings", "WorkDir", "Problem", "StageReport", "run_per_video",
           "write_summary"]

STAGES = ("objects", "trace-masks", "propagate", "candidates")  # in the order they run


def stage_settings(value: Any) -> Any:
    """``value`` (dataclasses, paths, sets, …) as plain JSON data, for :meth:`WorkDir.begin_stage` to record and
    compare: dataclasses as their fields but those marked :data:`vng.inference.RUNTIME` (device, threads, caches:
    they do not change results), sets sorted, paths as strings, any other object as its type's name and, when it has
    them, its ``settings()`` (a segmenter) — never its ``str``, which may hold an address that differs every run."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if not f.metadata.get("runtime")}
    if isinstance(value, dict):
        return {str(key): stage_settings(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(stage_settings(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [stage_settings(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    described = {"type": f"{type(value).__module__}.{type(value).__qualname__}"}
    if callable(getattr(value, "settings", None)):
        described["settings"] = stage_settings(value.settings())
    return described


def video_key(video_name: str) -> str:
    """A folder name for a video: its name with anything but ``[A-Za-z0-9._-]`` replaced (at most 80 characters)
    and 8 hex digits of its MD5, so that names differing only in replaced characters stay apart."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", video_name).strip("._")[:80] or "video"
    return f"{slug}-{hashlib.md5(video_name.encode()).hexdigest()[:8]}"


def shard_of(key: str, num_processes: int) -> int:
    """The process (of ``num_processes``) that handles a video: by a hash of its key, so that every process knows
    its share without a global list of videos (stage 1 reads the narratives once, in file order)."""
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % num_processes


@dataclass(frozen=True)
class WorkDir:
    """Paths of a work folder (module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def video_dir(self, key: str) -> Path:
        return self.root / "videos" / key

    def objects_file(self, key: str) -> Path:
        return self.video_dir(key) / "objects.jsonl"

    def trace_masks_file(self, key: str) -> Path:
        return self.video_dir(key) / "trace_masks.jsonl"

    def probabilities_file(self, key: str) -> Path:
        return self.video_dir(key) / "probabilities.npz"

    def tasks_part(self, key: str) -> Path:
        return self.video_dir(key) / "tasks.jsonl"

    @property
    def tasks_dir(self) -> Path:
        return self.root / "tasks"

    def video_task_dir(self, key: str) -> Path:
        return self.tasks_dir / key

    def keys(self) -> list[str]:
        """The videos stage 1 finished, by key, sorted."""
        folder = self.root / "videos"
        return sorted(path.parent.name for path in folder.glob("*/objects.jsonl")) if folder.is_dir() else []

    def summary_file(self, process_index: int, num_processes: int) -> Path:
        if num_processes == 1:
            return self.root / "summary.json"
        return self.root / f"summary.{process_index}-of-{num_processes}.json"

    def remove_partial_files(self, key: str) -> None:
        """Delete what a killed run left unfinished for a video: atomic writes' temporary files and the frame cache
        of propagation."""
        for folder in (self.video_dir(key), self.video_task_dir(key)):
            remove_stale_temporaries(folder, recursive=True)
        shutil.rmtree(self.frame_cache(key), ignore_errors=True)

    @property
    def stages_file(self) -> Path:
        return self.root / "stages.json"

    def begin_stage(self, stage: str, settings: dict, *, overwrite: bool = False, process_index: int = 0,
                    num_processes: int = 1) -> None:
        """Record ``stage``'s settings, or find the same ones recorded: a stage never mixes results of two runs.
        The main process (``process_index`` 0) records; the others only compare.

        Raises:
            OutputConflict: the stage ran here with other settings (the message says which differ), or results of
                it lie in this process's share of the videos with no record of their settings, and ``overwrite`` is
                off (only its own share: the other processes of this run write theirs before the main process has
                recorded the stage, and they do not wait for each other). With ``overwrite`` this
                process's share of the videos loses the stage's and the later stages' results first (every process
                clears its own share, so sharded runs stay apart).
        """
        settings = stage_settings(settings)
        recorded = self._recorded_stages()
        main = process_index == 0  # only the main process writes what all share (stages.json, the joined tasks)
        if overwrite:
            for key in self.keys():
                if shard_of(key, num_processes) == process_index:
                    self.clear(key, stage)
            if main:
                (self.tasks_dir / TASKS_FILE).unlink(missing_ok=True)
            for later in STAGES[STAGES.index(stage) + 1:]:
                recorded.pop(later, None)
        elif stage not in recorded and self.has_results(stage, process_index, num_processes):
            raise OutputConflict(f"{self.root}: holds results of stage {stage!r} from a run that left no record "
                                 f"({self.stages_file.name}); use another work folder, or overwrite to redo this "
                                 "stage and the later ones")
        elif stage in recorded and recorded[stage] != settings:
            before, now = recorded[stage], settings
            differing = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
            shown = "; ".join(f"{k}: {json.dumps(before.get(k))} → {json.dumps(now.get(k))}" for k in differing)
            raise OutputConflict(f"{self.root}: stage {stage!r} ran here with other settings ({shown}); use another "
                                 "work folder, or overwrite to redo this stage and the later ones")
        if main:
            recorded[stage] = settings
            write_json(self.stages_file, recorded, indent=1)

    def _recorded_stages(self) -> dict[str, dict]:
        """``stages.json``: stage name -> its recorded settings ({} when no stage ran yet)."""
        if not self.stages_file.is_file():
            return {}
        recorded = read_json(self.stages_file)
        if not isinstance(recorded, dict):
            raise FormatError("expected a JSON object of stage settings (delete the file, or use another work "
                              "folder, to start again)", Location(str(self.stages_file)))
        for stage, settings in recorded.items():
            if stage not in STAGES or not isinstance(settings, dict):
                raise FormatError(f"not a stage's settings (stages: {', '.join(STAGES)}; each a JSON object)",
                                  Location(str(self.stages_file)), stage)
        return recorded

    def has_results(self, stage: str, process_index: int = 0, num_processes: int = 1) -> bool:
        """Whether a video of the share of process ``process_index`` (of ``num_processes``) holds a result of
        ``stage``."""
        result = {"objects": self.objects_file, "trace-masks": self.trace_masks_file,
                  "propagate": self.probabilities_file, "candidates": self.tasks_part}[stage]
        return any(result(key).is_file() for key in self.keys() if shard_of(key, num_processes) == process_index)

    def clear(self, key: str, stage: str) -> None:
        """Delete a video's results of ``stage`` and of the stages after it."""
        first = STAGES.index(stage)
        if first <= STAGES.index("candidates"):
            self.tasks_part(key).unlink(missing_ok=True)
            shutil.rmtree(self.video_task_dir(key), ignore_errors=True)
        if first <= STAGES.index("propagate"):
            self.probabilities_file(key).unlink(missing_ok=True)
        if first <= STAGES.index("trace-masks"):
            self.trace_masks_file(key).unlink(missing_ok=True)
            shutil.rmtree(self.video_dir(key) / "trace_masks", ignore_errors=True)
        if first == 0:
            shutil.rmtree(self.video_dir(key), ignore_errors=True)

    def frame_cache(self, key: str) -> Path:
        """Where stage 3 keeps a video file's decoded frames while it propagates (removed afterwards)."""
        return self.video_dir(key) / ".frames"


@dataclass(frozen=True)
class Problem:
    """A video a stage skipped, with why (a missing or unreadable video, a bad record: the message names it)."""

    stage: str
    video: str
    message: str


@dataclass
class StageReport:
    """What one stage did in one run (of one process)."""

    stage: str
    videos_done: int = 0  # finished in this run
    videos_kept: int = 0  # found finished by an earlier run
    objects: int = 0  # objects this run processed
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)  # stage-specific counts (e.g. nouns dropped)

    @property
    def objects_per_minute(self) -> float | None:
        return 60.0 * self.objects / self.seconds if self.seconds > 0 and self.objects else None

    def count(self, name: str, value: int = 1) -> None:
        self.notes[name] = self.notes.get(name, 0) + value

    def as_dict(self) -> dict:
        return {"stage": self.stage, "videos_done": self.videos_done, "videos_kept": self.videos_kept,
                "videos_skipped": len(self.problems), "objects": self.objects, "seconds": round(self.seconds, 3),
                "objects_per_minute": (None if self.objects_per_minute is None
                                       else round(self.objects_per_minute, 2)),
                "notes": dict(self.notes),
                "problems": [{"video": p.video, "message": p.message} for p in self.problems]}

    def line(self) -> str:
        rate = "" if self.objects_per_minute is None else f", {self.objects_per_minute:.1f} objects/min"
        notes = "".join(f", {name} {value}" for name, value in self.notes.items())
        return (f"{self.stage:<12} {self.videos_done} videos done, {self.videos_kept} already done, "
                f"{len(self.problems)} skipped; {self.objects} objects in {self.seconds:.1f} s{rate}{notes}")


def run_per_video(report: StageReport, workdir: WorkDir, keys: Iterable[str], work: Callable[[str], int], *,
                  output: Callable[[str], Path], needs: Callable[[str], Path] | None = None, process_index: int = 0,
                  num_processes: int = 1, name_of: Callable[[str], str] = str, progress: bool = False) -> StageReport:
    """Run ``work(key)`` (it returns the number of objects it processed) for this process's share of the videos
    (:func:`shard_of`) whose ``output`` file does not exist yet and whose previous stage wrote the file it ``needs``
    (the others are counted as waiting).

    A video whose work raises a :class:`~vng.io.common.FormatError` (a missing or unreadable video, a bad record) or
    an OSError is reported in ``report.problems`` and skipped: at tens of thousands of videos one bad file must not
    stop a run. Its partial files are deleted before it is taken up (:meth:`WorkDir.remove_partial_files`).
    """
    start = time.perf_counter()
    mine = sorted(key for key in keys if shard_of(key, num_processes) == process_index)
    for key in tqdm(mine, desc=report.stage, disable=not progress, unit="video"):
        if output(key).is_file():
            report.videos_kept += 1
            continue
        if needs is not None and not needs(key).is_file():
            report.count("videos waiting for the previous stage")
            continue
        workdir.remove_partial_files(key)
        try:
            report.objects += work(key)
        except (FormatError, OSError) as error:
            report.problems.append(Problem(report.stage, name_of(key), str(error)))
            continue
        report.videos_done += 1
    report.seconds += time.perf_counter() - start
    return report


def write_summary(workdir: WorkDir, reports: list[StageReport], *, process_index: int = 0,
                  num_processes: int = 1) -> Path:
    """Write this run's reports as JSON (:meth:`WorkDir.summary_file`); returns the path."""
    path = workdir.summary_file(process_index, num_processes)
    write_json(path, {"process_index": process_index, "num_processes": num_processes,
                      "stages": [report.as_dict() for report in reports]}, indent=1)
    return path
