"""Verdicts → the Point-VOS release: the last step of the annotation pipeline (Sec. 3.2, Fig. 4).

The verdict log (the verification tool's, or the simulated annotator's) is replayed over the work folder's tasks by
:func:`vng.verification.resolve_verdicts`; the released objects are written as PV-Oops ``{split}.json`` or
PV-Kinetics ``train.jsonl`` (by the suffix, :mod:`vng.io.pointvos`): statuses ACCEPTED / REJECTED / AMBIGUOUS,
``is_fg_candidate``, 6-digit frame ids, and the caption's noun span. With ``link_videos`` the objects' videos are
linked where the release expects them, ``<root>/<Dataset>/videos/<split>/<video_name>.mp4`` beside
``<root>/<Dataset>/<split>.json``, so that :func:`vng.datasets.hf.load_oops_vng` reads the release as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from vng.io.common import FormatError, Location
from vng.io.pipeline import read_traced_objects
from vng.io.pointvos import write_pv_annotations
from vng.io.tasks import read_tasks, read_verdicts
from vng.pipeline.workdir import WorkDir
from vng.verification import ResolveConfig, ResolveResult, resolve_verdicts

__all__ = ["export_release"]


def _link_videos(workdir: WorkDir, result: ResolveResult, out: Path) -> None:
    videos = {obj.video_name: Path(obj.video_path) for key in workdir.keys()
              for obj in read_traced_objects(workdir.objects_file(key))}
    split = out.stem
    for name in sorted({obj.video_name for obj in result.objects}):
        source = videos[name].resolve()
        if source.suffix != ".mp4":
            raise FormatError("the release expects .mp4 videos: this one is a frame folder", Location(str(source)))
        target = out.parent / "videos" / split / f"{name}.mp4"
        if target.is_symlink() or target.exists():
            if target.resolve() == source:
                continue
            raise FileExistsError(f"{target} exists and is not {source}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)


def export_release(workdir: WorkDir, verdicts: str | os.PathLike, out: str | os.PathLike, *,
                   config: ResolveConfig = ResolveConfig(), link_videos: bool = False) -> ResolveResult:
    """Write the release ``out`` (``.json``: PV-Oops, ``.jsonl``: PV-Kinetics) from the verdict log ``verdicts``
    over the tasks of ``workdir``; returns what was released and what was left out, with why."""
    out = Path(out)
    if out.suffix not in (".json", ".jsonl"):
        raise ValueError(f"the release file must end in .json (PV-Oops) or .jsonl (PV-Kinetics), got {out.name}")
    result = resolve_verdicts(read_tasks(workdir.tasks_dir), read_verdicts(verdicts), config=config)
    write_pv_annotations(out, result.objects)
    if link_videos:
        _link_videos(workdir, result, out)
    return result
