"""PV-Oops evaluation: each object has dense ground truth on at most 3 frames, all of them scored (FORMATS.md §2).

The release does not say how its val masks are stored, so this module chooses a layout, the same for ground truth
and predictions (binary PNGs, 0/1 or 0/255; ``frame_name`` formats the 0-based frame index, by default the
Point-VOS ``frame_id`` convention ``f"{i:06d}"``)::

    <gt>/<object id>/<frame_id>.png            e.g. gt/0123…cdef/000042.png
    <pred>/<object id>/<frame_id>.png          a prediction for every ground-truth frame

Unlike DAVIS no frame is excluded: the annotated frames are not the reference frames. The figure is the mean over
objects of their mean J and F (:class:`~vng.benchmark.frames.MeanScores`), J&F = (J + F) / 2.

:func:`run_pv_oops_benchmark` is the whole benchmark (Tabs. 5 and 8): each object is segmented on its own, from the
first k foreground points of its first annotated frame (the release's val objects have their initialisation points
on one frame; in this library they are Point-VOS records, ``Oops/val.json``, read by
:func:`vng.io.pointvos.read_pv_annotations`), for k in 1 / 2 / 5 / 10, forward from that frame and backward when a
ground-truth frame lies before it; the ground-truth frames' predictions are written and scored::

    result = run_pv_oops_benchmark(method, read_pv_annotations("Oops/val.json"), videos="Oops/videos/val",
                                   gt="Oops/val_masks", out="bench/pv_oops")
    print(result.format_table())        # Tab. 5 layout: mean, 1-point, ..., 10-point
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from vng.benchmark.frames import MeanScores, ObjectScores, evaluate_frames, read_binary_mask, run_jobs
from vng.benchmark.protocol import PointBenchmarkResult, SettingResult, plot_j_and_f, write_summary
from vng.inference import Method, propagate_video
from vng.io.common import FormatError, Location
from vng.io.masks import write_mask_png
from vng.io.video import Video, find_video, list_frame_files
from vng.metrics import BOUND_TH
from vng.protocol import MAX_GT_FRAMES, SETTINGS, reference_points
from vng.types import ObjectAnnotation, frame_id

__all__ = ["evaluate_pv_oops", "read_sparse_masks", "segment_object", "run_pv_oops_benchmark"]


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


def segment_object(method: Method, video: str | os.PathLike, obj: ObjectAnnotation, num_points: int,
                   frames: Iterable[int], out: str | os.PathLike) -> int:
    """Segment one object from the first ``num_points`` foreground points of its first annotated frame and write
    its mask on ``frames`` as ``<out>/<frame_id>.png`` (0/255), forward from that frame, backward only when one of
    ``frames`` lies before it (:func:`vng.inference.propagate_video`). Returns the number of frames written."""
    reference, points = reference_points(obj, num_points)
    session = method.start(Video.open(video))
    session.add_points(reference, 1, points)
    written = 0
    for frame_index, masks in propagate_video(session, frames=frames):
        write_mask_png(Path(out) / f"{frame_id(frame_index)}.png", masks[1].astype(np.uint8) * 255)
        written += 1
    return written


@dataclass(frozen=True)
class _SegmentJob:
    method: Method
    video: Path
    obj: ObjectAnnotation
    num_points: int
    frames: tuple[int, ...]
    out: Path


def _segment(job: _SegmentJob) -> int:
    return segment_object(job.method, job.video, job.obj, job.num_points, job.frames, job.out)


def run_pv_oops_benchmark(method: Method, annotations: Iterable[ObjectAnnotation], *, videos: str | os.PathLike,
                          gt: str | os.PathLike, out: str | os.PathLike, settings: Sequence[int] = SETTINGS,
                          processes: int | None = None, progress: bool = True) -> PointBenchmarkResult:
    """The PV-Oops benchmark (module docstring): write ``<out>/<k>-points/<object id>/<frame_id>.png``, score
    every setting, and write ``<out>/summary.csv`` and ``<out>/jf_vs_points.png`` as the DAVIS protocol does.

    Args:
        method: e.g. ``build_method("point-stcn", checkpoint=...)``; pickled to worker processes.
        annotations: the objects' points (their first annotated frame holds the initialisation points).
        videos: ``<videos>/<video_name>.mp4`` or frame folders ``<videos>/<video_name>/``.
        gt: the ground-truth masks, ``<gt>/<object id>/<frame_id>.png`` (:func:`read_sparse_masks`).
        processes: worker processes over (object, setting) pairs; None → one per core; 1 → inline.

    Raises:
        ValueError: a ground-truth object without points or video, a setting < 1.
    """
    truth = read_sparse_masks(gt)
    by_id = {obj.object_id: obj for obj in annotations}
    missing = sorted(set(truth) - {key for key, obj in by_id.items() if obj.video_name is not None})
    if missing:
        raise ValueError(f"ground-truth objects {missing[:5]} have no points (or no video) in the annotations")
    if not settings or min(settings) < 1:
        raise ValueError(f"settings must be point counts >= 1, got {list(settings)}")
    out = Path(out)
    jobs = [_SegmentJob(method, find_video(videos, by_id[key].video_name, object_id=key), by_id[key], k,
                        tuple(sorted(frames)), out / f"{k}-points" / key)
            for k in settings for key, frames in truth.items()]
    # frames each job decodes and segments: from the reference to the farthest ground-truth frame
    costs = [max(abs(frame - reference_points(job.obj, 1)[0]) for frame in job.frames) + 1 for job in jobs]
    run_jobs(_segment, jobs, processes=processes, costs=costs, progress="segmenting" if progress else None,
             unit="frame")
    results = tuple(SettingResult(k, evaluate_pv_oops(truth, out / f"{k}-points", processes=processes))
                    for k in settings)
    result = PointBenchmarkResult(method.name, results, out)
    write_summary(result)
    plot_j_and_f(result)
    return result
