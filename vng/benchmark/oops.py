"""PV-Oops evaluation: each object has dense ground truth on at most 3 frames, all of them scored (FORMATS.md §2).

The release does not say how its val masks are stored, so this module chooses a layout, the same for ground truth
and predictions (binary PNGs, 0/1 or 0/255; ``frame_name`` formats the 0-based frame index, by default the
Point-VOS ``frame_id`` convention ``f"{i:06d}"``)::

    <gt>/<object id>/<frame_id>.png            e.g. gt/0123…cdef/000042.png
    <pred>/<object id>/<frame_id>.png          a prediction for every ground-truth frame

Unlike DAVIS no frame is excluded: the annotated frames are not the reference frames. The figure is the mean over
objects of their mean J and F (:class:`~vng.benchmark.frames.MeanScores`), J&F = (J + F) / 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from vng.benchmark.frames import MeanScores, ObjectScores, evaluate_frames, read_binary_mask, run_jobs
from vng.io.common import FormatError, Location
from vng.io.video import list_frame_files
from vng.metrics import BOUND_TH

__all__ = ["MAX_GT_FRAMES", "evaluate_pv_oops", "read_sparse_masks"]

MAX_GT_FRAMES = 3  # PV-Oops val: dense masks on at most 3 frames per object


def read_sparse_masks(gt_dir: str | os.PathLike, *, max_frames: int = MAX_GT_FRAMES
                      ) -> dict[str, dict[int, np.ndarray]]:
    """``<gt_dir>/<object id>/<frame index>.png`` → {object id: {frame index: (H, W) uint8 binary mask}}.

    Raises:
        FormatError naming the file: a stem that is not a frame number, a non-binary mask, more than
        ``max_frames`` frames for an object.
    """
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise FormatError("no such ground-truth folder", Location(str(gt_dir)))
    objects: dict[str, dict[int, np.ndarray]] = {}
    for folder in sorted(p for p in gt_dir.iterdir() if p.is_dir()):
        frames = {}
        for path in list_frame_files(folder, suffixes=(".png",)):
            if not path.stem.isdigit():
                raise FormatError(f"object {folder.name!r}: {path.name!r} is not named by a frame index",
                                  Location(str(path)))
            frames[int(path.stem)] = read_binary_mask(path, f"object {folder.name!r} frame {path.stem!r}")
        if len(frames) > max_frames:
            raise FormatError(f"object {folder.name!r}: {len(frames)} ground-truth frames, at most {max_frames} "
                              "expected", Location(str(folder)))
        objects[folder.name] = frames
    return objects


class _Predictions:
    def __init__(self, folder: Path, frame_name: str, object_id: str):
        self.folder, self.frame_name, self.object_id = folder, frame_name, object_id

    def __getitem__(self, index: int):
        stem = self.frame_name.format(index)
        return read_binary_mask(self.folder / f"{stem}.png", f"object {self.object_id!r} frame {stem!r}")


@dataclass(frozen=True)
class _ObjectJob:
    object_id: str
    gt: dict[int, np.ndarray]
    pred_dir: Path
    frame_name: str
    bound_th: float


def _run(job: _ObjectJob) -> ObjectScores:
    predictions = _Predictions(job.pred_dir / job.object_id, job.frame_name, job.object_id)
    return evaluate_frames(job.gt, predictions, sorted(job.gt), sequence="", object_id=job.object_id,
                           bound_th=job.bound_th)


def evaluate_pv_oops(gt: str | os.PathLike | Mapping[str, Mapping[int, np.ndarray]], pred_dir: str | os.PathLike,
                     *, max_frames: int = MAX_GT_FRAMES, frame_name: str = "{:06d}", processes: int | None = 1,
                     bound_th: float = BOUND_TH) -> MeanScores:
    """PV-Oops J, F and J&F: every ground-truth frame of every object scored, objects averaged.

    Args:
        gt: a ground-truth folder (:func:`read_sparse_masks`) or {object id: {frame index: (H, W) binary mask}}.
        pred_dir: ``<pred_dir>/<object id>/<frame_name.format(index)>.png``.
        max_frames: more ground-truth frames than this for one object is an error.
        processes: worker processes over objects (None → one per core; 1 → inline).

    Raises:
        FormatError naming the object and frame for bad input.
    """
    objects = read_sparse_masks(gt, max_frames=max_frames) if isinstance(gt, (str, os.PathLike)) else gt
    jobs = []
    for object_id, frames in objects.items():
        if len(frames) > max_frames:
            raise FormatError(f"object {object_id!r}: {len(frames)} ground-truth frames, at most {max_frames} "
                              "expected", Location(str(object_id)))
        jobs.append(_ObjectJob(str(object_id), dict(frames), Path(pred_dir), frame_name, bound_th))
    return MeanScores(tuple(run_jobs(_run, jobs, processes=processes)))
