"""DAVIS semi-supervised evaluation with the davis2017-evaluation toolkit's definitions (FORMATS.md §5).

    results = evaluate_davis("DAVIS", "results/osvos")        # a DAVIS root, or its Annotations/480p folder
    results.j_and_f_mean, results.j_mean, results.f_mean
    write_davis_csvs(results, "results/osvos", "val")       # global_results-val.csv, per-sequence_results-val.csv

Ground truth: ``<annotations>/<sequence>/<frame>.png``. Predictions: ``<pred>/<sequence>/<frame>.png``, same names.

Objects, as the toolkit: the object ids of the first ground-truth frame, each scored as a binary mask on every frame
(first and last excluded in the semi-supervised task), one :class:`~vng.benchmark.frames.ObjectScores` per object,
named ``<sequence>_<id>``. A sequence whose annotations hold only 0 and 255 is a DAVIS-2016 sequence: one object, id
1, no void. Otherwise ids 1-254 are objects and 255 is void: its pixels are left out of both masks.

Where this departs from the toolkit, on input the toolkit mishandles:
- objects are the ids present in the first frame; the toolkit takes ``1 … max id`` (the same for DAVIS, whose ids are
  contiguous) and would score a missing id as an object;
- the toolkit turns 255 into background before scoring, so its void masks are always empty (DAVIS-2017 annotations
  have no 255 pixels, so the numbers agree); its loader would also erase DAVIS-2016's 0/255 objects;
- a prediction with an id the first ground-truth frame lacks is a FormatError naming it (the toolkit exits); a
  single-object sequence accepts any binary prediction (0/1 or 0/255);
- per-object statistics avoid the toolkit's uint8 overflow beyond 256 frames; CSVs are always rewritten.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vng.benchmark.frames import ObjectScores, check_binary, read_binary_mask, read_label_png, run_jobs
from vng.io.common import FormatError, Location, atomic_write
from vng.io.video import list_frame_files
from vng.metrics import BOUND_TH, binary_frame_scores

__all__ = ["DavisResults", "GLOBAL_COLUMNS", "davis_annotations_dir", "evaluate_davis", "object_ids",
           "evaluate_davis_sequence", "write_davis_csvs"]

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
VOID = 255


@dataclass(frozen=True)
class DavisResults:
    """Per-object scores in sequence order; the global figures are means over objects, as the toolkit's."""

    objects: tuple[ObjectScores, ...]

    def _mean(self, attribute: str) -> float:
        return float(np.mean([getattr(o, attribute) for o in self.objects])) if self.objects else math.nan

    j_mean = property(lambda self: self._mean("j_mean"))
    j_recall = property(lambda self: self._mean("j_recall"))
    j_decay = property(lambda self: self._mean("j_decay"))
    f_mean = property(lambda self: self._mean("f_mean"))
    f_recall = property(lambda self: self._mean("f_recall"))
    f_decay = property(lambda self: self._mean("f_decay"))

    @property
    def j_and_f_mean(self) -> float:
        """(J-Mean + F-Mean) / 2."""
        return (self.j_mean + self.f_mean) / 2

    def global_row(self) -> dict[str, float]:
        """The global CSV row: ``{column: value}`` in :data:`GLOBAL_COLUMNS` order."""
        values = (self.j_and_f_mean, self.j_mean, self.j_recall, self.j_decay, self.f_mean, self.f_recall,
                  self.f_decay)
        return dict(zip(GLOBAL_COLUMNS, values))

    def format_table(self, *, decimals: int = 6) -> str:
        """The global figures as a two-line, fixed-width text table."""
        width = max(len(c) for c in GLOBAL_COLUMNS) + 1
        header = "".join(c.rjust(width) for c in GLOBAL_COLUMNS)
        row = "".join(f"{v:.{decimals}f}".rjust(width) for v in self.global_row().values())
        return f"{header}\n{row}"


def davis_annotations_dir(gt: str | os.PathLike, *, resolution: str = "480p") -> Path:
    """``<gt>/Annotations/<resolution>`` when ``gt`` is a DAVIS root, else ``gt`` itself (a folder of sequences)."""
    gt = Path(gt)
    nested = gt / "Annotations" / resolution
    if nested.is_dir():
        return nested
    if not gt.is_dir():
        raise FormatError("no such ground-truth folder", Location(str(gt)))
    return gt


@dataclass(frozen=True)
class _SequenceJob:
    annotations_dir: Path
    pred_dir: Path
    sequence: str
    first_last_excluded: bool
    bound_th: float


def _run(job: _SequenceJob) -> list[ObjectScores]:
    return evaluate_davis_sequence(job.annotations_dir, job.pred_dir, job.sequence,
                                   first_last_excluded=job.first_last_excluded, bound_th=job.bound_th)


def object_ids(first: np.ndarray, sequence: str, path: Path) -> tuple[list[int], bool]:
    """(object ids, DAVIS-2016 0/255 layout?) from the first annotation."""
    present = np.flatnonzero(np.bincount(first.ravel(), minlength=256))
    if present.tolist() in ([255], [0, 255]):
        return [1], True
    ids = [int(v) for v in present if 0 < v < VOID]
    if not ids:
        raise FormatError(f"sequence {sequence!r} frame {path.stem!r}: the first ground-truth frame has no object",
                          Location(str(path)))
    return ids, False


def _check_prediction_ids(pred: np.ndarray, ids: list[int], where: str, path: Path) -> None:
    high = int(cv2.minMaxLoc(pred)[1])
    contiguous = ids == list(range(1, len(ids) + 1))
    if high <= ids[-1] and contiguous:  # every value 0 … max id is 0 or an object: nothing more to check
        return
    unknown = sorted(set(np.unique(pred).tolist()) - {0, *ids})
    if unknown:
        raise FormatError(f"{where}: prediction holds object id(s) {unknown} that the first ground-truth frame "
                          f"lacks (objects {ids})", Location(str(path)))


def evaluate_davis_sequence(annotations_dir: str | os.PathLike, pred_dir: str | os.PathLike, sequence: str, *,
                            first_last_excluded: bool = True, bound_th: float = BOUND_TH) -> list[ObjectScores]:
    """Score one sequence: one :class:`ObjectScores` per object of its first annotation, in id order.

    Frames stream one at a time (a ground-truth and a prediction PNG in memory), so memory does not grow with
    sequence length.

    Raises:
        FormatError naming the sequence and frame: a missing or unreadable prediction, a size mismatch, a
        non-binary prediction of a single-object sequence, an unknown object id, or too few frames.
    """
    annotations_dir, pred_dir = Path(annotations_dir), Path(pred_dir)
    gt_paths = list_frame_files(annotations_dir / sequence, suffixes=(".png",))
    first = read_label_png(gt_paths[0])
    ids, binary_layout = object_ids(first, sequence, gt_paths[0])
    evaluated = range(1, len(gt_paths) - 1) if first_last_excluded else range(len(gt_paths))
    if not evaluated:
        raise FormatError(f"sequence {sequence!r}: {len(gt_paths)} frame(s), none left once the first and last "
                          "are excluded", Location(str(annotations_dir / sequence)))
    if not (pred_dir / sequence).is_dir():
        raise FormatError(f"sequence {sequence!r}: no prediction folder", Location(str(pred_dir / sequence)))
    scores = np.empty((len(ids), len(evaluated), 2))
    for position, index in enumerate(evaluated):
        gt_path = gt_paths[index]
        where = f"sequence {sequence!r} frame {gt_path.stem!r}"
        gt = first if index == 0 else read_label_png(gt_path)
        pred_path = pred_dir / sequence / f"{gt_path.stem}.png"
        if len(ids) == 1:
            pred = read_binary_mask(pred_path, where)
        else:
            if not pred_path.is_file():
                raise FormatError(f"{where}: no prediction", Location(str(pred_path)))
            pred = read_label_png(pred_path)
        if pred.shape != gt.shape:
            raise FormatError(f"{where}: prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth is "
                              f"{gt.shape[1]}x{gt.shape[0]}", Location(str(pred_path)))
        if binary_layout:
            # A DAVIS-2016 annotation is already a 0/255 mask: score it as it is, no copy.
            gt = check_binary(gt, Location(str(gt_path)), f"{where} ground truth")
            scores[0, position] = binary_frame_scores(gt, pred, bound_th=bound_th)
            continue
        if len(ids) > 1:
            _check_prediction_ids(pred, ids, where, pred_path)
        keep = cv2.compare(gt, VOID, cv2.CMP_NE) if cv2.minMaxLoc(gt)[1] == VOID else None  # 255 off void
        for slot, object_id in enumerate(ids):
            gt_object = (gt == object_id).view(np.uint8)
            pred_object = pred if len(ids) == 1 else (pred == object_id).view(np.uint8)
            if keep is not None:
                pred_object = cv2.bitwise_and(pred_object, keep)
            scores[slot, position] = binary_frame_scores(gt_object, pred_object, bound_th=bound_th)
    frames = tuple(evaluated)
    return [ObjectScores(sequence, object_id, frames, scores[slot, :, 0].copy(), scores[slot, :, 1].copy())
            for slot, object_id in enumerate(ids)]


def evaluate_davis(gt: str | os.PathLike, pred_dir: str | os.PathLike, *, sequences: Sequence[str] | None = None,
                   first_last_excluded: bool = True, processes: int | None = None, bound_th: float = BOUND_TH,
                   resolution: str = "480p") -> DavisResults:
    """Evaluate a semi-supervised results folder against DAVIS ground truth.

    Args:
        gt: a DAVIS root (``<gt>/Annotations/<resolution>``) or an annotations folder of sequence folders.
        pred_dir: ``<pred_dir>/<sequence>/<frame>.png`` palette (object ids) or 0/255 masks.
        sequences: the sequences to score, in this order (e.g. :func:`vng.io.davis.read_davis_split`); default
            every sequence folder of the annotations, sorted.
        first_last_excluded: leave out each sequence's first and last frame (the semi-supervised protocol).
        processes: worker processes over sequences; None → one per available core; 1 → inline.
        bound_th: boundary tolerance of F.

    Raises:
        FormatError naming the sequence and frame for bad input (see :func:`evaluate_davis_sequence`).
    """
    annotations_dir, pred_dir = davis_annotations_dir(gt, resolution=resolution), Path(pred_dir)
    if not pred_dir.is_dir():
        raise FormatError("no such prediction folder", Location(str(pred_dir)))
    if sequences is None:
        sequences = sorted(p.name for p in annotations_dir.iterdir() if p.is_dir())
        if not sequences:
            raise FormatError("no sequence folders in the ground truth", Location(str(annotations_dir)))
    jobs = [_SequenceJob(annotations_dir, pred_dir, s, first_last_excluded, bound_th) for s in sequences]
    costs = [sum(1 for _ in os.scandir(annotations_dir / s)) if (annotations_dir / s).is_dir() else 0
             for s in sequences]
    per_sequence = run_jobs(_run, jobs, processes=processes, costs=costs)
    return DavisResults(tuple(scores for objects in per_sequence for scores in objects))


def _number(value: float, decimals: int) -> str:
    return "" if math.isnan(value) else f"{value:.{decimals}f}"  # pandas writes NaN as an empty field


def write_davis_csvs(results: DavisResults, out_dir: str | os.PathLike, set_name: str, *,
                     decimals: int = 3) -> tuple[Path, Path]:
    """Write ``global_results-<set>.csv`` and ``per-sequence_results-<set>.csv`` as the toolkit does, atomically.

    Always written from ``results``, never read back (the toolkit reuses whatever CSVs it finds). ``decimals=3`` is
    the toolkit's ``%.3f``.

    Returns:
        (global CSV path, per-sequence CSV path).
    """
    out_dir = Path(out_dir)
    global_path = out_dir / f"global_results-{set_name}.csv"
    sequence_path = out_dir / f"per-sequence_results-{set_name}.csv"
    with atomic_write(global_path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(GLOBAL_COLUMNS)
        writer.writerow([_number(v, decimals) for v in results.global_row().values()])
    with atomic_write(sequence_path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["Sequence", "J-Mean", "F-Mean"])
        for scores in results.objects:
            writer.writerow([scores.name, _number(scores.j_mean, decimals), _number(scores.f_mean, decimals)])
    return global_path, sequence_path
