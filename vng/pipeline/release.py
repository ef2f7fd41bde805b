"""Verdicts → the Point-VOS release: the last step of the annotation pipeline (Sec. 3.2, Fig. 4).

The verdict log (the verification tool's, or the simulated annotator's) is replayed over the tasks by
:func:`vng.verification.resolve_verdicts`, and the released objects are written as a release root, one file per
dataset and split of the tasks (:func:`vng.io.pointvos.release_file`): ``<root>/Oops/<split>.json`` (PV-Oops),
``<root>/Kinetics/train.jsonl`` (PV-Kinetics), with statuses ACCEPTED / REJECTED / AMBIGUOUS, ``is_fg_candidate``,
6-digit frame ids and the caption's noun span. Given the videos, they are linked where the release expects them,
``<root>/<Dataset>/videos/<split>/<video_name>.mp4``, so that :func:`vng.datasets.hf.load_oops_vng` reads the
release as it is. ``vng annotate export`` and the verification tool's export both write through
:func:`write_release`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from vng.io.common import FormatError, Location
from vng.io.pipeline import read_traced_objects
from vng.io.pointvos import pv_video_path, release_file, write_pv_annotations
from vng.io.tasks import read_tasks, read_verdicts
from vng.pipeline.workdir import WorkDir
from vng.types import ObjectAnnotation, VerdictEvent, VerificationTask
from vng.verification import ResolveConfig, ResolveResult, resolve_verdicts

__all__ = ["Release", "write_release", "export_release"]


@dataclass(frozen=True)
class Release:
    """What :func:`write_release` wrote: one file per dataset and split, and what was released or left out."""

    files: tuple[Path, ...]
    resolved: ResolveResult

    def summary(self) -> str:
        return self.resolved.summary() + "".join(f"\n→ {path}" for path in self.files)


def _link_video(root: Path, dataset: str, split: str, name: str, source: Path) -> None:
    source = source.resolve()
    if source.suffix != ".mp4":
        raise FormatError("the release expects .mp4 videos: this one is a frame folder", Location(str(source)))
    target = pv_video_path(root, dataset, split, name)
    if target.is_symlink() or target.exists():
        if target.resolve() == source:
            return
        raise FileExistsError(f"{target} exists and is not {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)


def write_release(tasks: Sequence[VerificationTask], events: Sequence[VerdictEvent], root: str | os.PathLike, *,
                  config: ResolveConfig = ResolveConfig(), videos: Mapping[str, Path] | None = None) -> Release:
    """Write the release of ``events`` over ``tasks`` under ``root`` (module docstring): every dataset / split of
    the tasks gets its file, empty while nothing of it is released. ``videos`` (video name → file) links the
    released objects' videos beside the annotations."""
    root = Path(root)
    resolved = resolve_verdicts(tasks, events, config=config)
    where = {task.object_id: (task.dataset, task.split) for task in tasks}
    groups: dict[tuple[str, str], list[ObjectAnnotation]] = {key: [] for key in dict.fromkeys(where.values())}
    for obj in resolved.objects:
        groups[where[obj.object_id]].append(obj)
    paths = {key: release_file(root, *key) for key in groups}  # every name checked before anything is written
    for key, objects in groups.items():
        write_pv_annotations(paths[key], objects)
        for name in sorted({obj.video_name for obj in objects}) if videos is not None else ():
            _link_video(root, *key, name, Path(videos[name]))
    return Release(tuple(paths.values()), resolved)


def export_release(workdir: WorkDir, verdicts: str | os.PathLike, root: str | os.PathLike, *,
                   config: ResolveConfig = ResolveConfig(), link_videos: bool = False) -> Release:
    """The release of a work folder's tasks from the verdict log ``verdicts`` (:func:`write_release`); with
    ``link_videos``, the videos the pipeline read are linked into it."""
    videos = None
    if link_videos:
        videos = {obj.video_name: Path(obj.video_path) for key in workdir.keys()
                  for obj in read_traced_objects(workdir.objects_file(key))}
    return write_release(read_tasks(workdir.tasks_dir), read_verdicts(verdicts), root, config=config, videos=videos)
