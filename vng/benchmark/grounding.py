"""Video Narrative Grounding J&F (OVIS-VNG, UVO-VNG; FORMATS.md §3).

    videos = read_meta_expressions("meta_expressions.json")
    tracks = merge_tracks(read_vis_annotations(...)[1], read_extra_masks(...)[1])
    results = evaluate_vng(videos, tracks, "results/rf_vng")
    results.j, results.f, results.j_and_f

Each expression is scored on the frames where its ground-truth mask is not None (J and F, DAVIS definitions,
boundary threshold 0.008); J = mean over all expressions of all videos of the expression's mean J, F likewise,
J&F = (J + F) / 2. Predictions: ``<result>/<video>/<expression id>/<frame stem>.png``, binary (0/1 or 0/255).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from vng.benchmark.frames import MeanScores, ObjectScores, evaluate_frames, read_binary_mask, run_jobs
from vng.io.common import FormatError, Location
from vng.io.vng_format import expression_masks
from vng.metrics import BOUND_TH
from vng.types import MaskTrack, VNGVideo

__all__ = ["evaluate_vng", "evaluate_vng_video", "vng_scores_from_frames"]


class _Predictions:
    """Frame index → the prediction PNG of that frame, read when asked for (one frame in memory at a time)."""

    def __init__(self, folder: Path, frames: tuple[str, ...], where: str):
        self.folder, self.frames, self.where = folder, frames, where

    def __getitem__(self, index: int):
        stem = self.frames[index]
        return read_binary_mask(self.folder / f"{stem}.png", f"{self.where} frame {stem!r}")


def evaluate_vng_video(video: VNGVideo, tracks: Mapping[int, MaskTrack], result_dir: str | os.PathLike, *,
                       bound_th: float = BOUND_TH) -> list[ObjectScores]:
    """One :class:`ObjectScores` per expression of ``video`` (``sequence`` = video, ``object_id`` = expression id).

    Raises:
        FormatError naming the video, expression and frame: an obj_id without a track, a track whose length
        differs from the video's frames, an expression with no annotated frame, or a missing, mis-sized or
        non-binary prediction.
    """
    result_dir = Path(result_dir)
    scores = []
    for expression in video.expressions:
        where = f"video {video.name!r} expression {expression.expression_id!r}"
        location = Location(str(result_dir / video.name / expression.expression_id))
        track = tracks.get(expression.obj_id)
        if track is None:
            raise FormatError(f"{where}: no mask track with obj_id {expression.obj_id}", location)
        if len(track.segmentations) != len(video.frames):
            raise FormatError(f"{where}: track {track.obj_id} has {len(track.segmentations)} frames, the video "
                              f"{len(video.frames)}", location)
        gt = expression_masks(track)
        if all(mask is None for mask in gt):
            raise FormatError(f"{where}: track {track.obj_id} annotates no frame", location)
        predictions = _Predictions(result_dir / video.name / expression.expression_id, video.frames, where)
        scores.append(evaluate_frames(gt, predictions, sequence=video.name, object_id=expression.expression_id,
                                      bound_th=bound_th))
    return scores


@dataclass(frozen=True)
class _VideoJob:
    video: VNGVideo
    tracks: dict[int, MaskTrack]
    result_dir: Path
    bound_th: float


def _run(job: _VideoJob) -> list[ObjectScores]:
    return evaluate_vng_video(job.video, job.tracks, job.result_dir, bound_th=job.bound_th)


def evaluate_vng(videos: Mapping[str, VNGVideo], tracks: Mapping[int, MaskTrack], result_dir: str | os.PathLike, *,
                 processes: int | None = 1, bound_th: float = BOUND_TH) -> MeanScores:
    """VNG J, F and J&F of a results folder, pooled over all expressions of all videos.

    Args:
        videos: ``read_meta_expressions`` output (its keys are only iterated; order = result order).
        tracks: obj_id → mask track, dense per video frame (see :mod:`vng.io.vng_format`).
        result_dir: ``<result_dir>/<video>/<expression id>/<frame stem>.png``.
        processes: worker processes over videos (None → one per core; 1 → inline).
    """
    jobs = []
    for video in videos.values():
        needed = {e.obj_id: tracks[e.obj_id] for e in video.expressions if e.obj_id in tracks}
        jobs.append(_VideoJob(video, needed, Path(result_dir), bound_th))
    costs = [len(job.video.frames) * len(job.video.expressions) for job in jobs]
    per_video = run_jobs(_run, jobs, processes=processes, costs=costs)
    return MeanScores(tuple(scores for video in per_video for scores in video))


def vng_scores_from_frames(rows: np.ndarray, expressions: Sequence[tuple[str, str]]) -> MeanScores:
    """VNG J, F and J&F from per-frame scores computed in memory (a training loop's evaluation), pooled as
    :func:`evaluate_vng` pools a results folder: per expression over its frames, then over all expressions.

    Args:
        rows: (N, 4) float ``(expression, frame index, J, F)``, one row per scored frame in any order; an
            expression < 0 marks padding (dropped).
        expressions: ``(video, expression id)`` of each expression index.
    """
    rows = np.asarray(rows, np.float64).reshape(-1, 4)
    rows = rows[rows[:, 0] >= 0]
    objects = []
    for item in np.unique(rows[:, 0]).astype(int):
        mine = rows[rows[:, 0] == item]
        mine = mine[np.argsort(mine[:, 1], kind="stable")]
        video, expression_id = expressions[item]
        objects.append(ObjectScores(video, expression_id, tuple(mine[:, 1].astype(int).tolist()), mine[:, 2],
                                    mine[:, 3]))
    return MeanScores(tuple(objects))
