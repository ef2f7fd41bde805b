"""Scoring one object frame by frame: the piece every protocol (DAVIS, YouTube-VOS, VNG, PV-Oops) builds on.

    scores = evaluate_frames(gt_masks, pred_masks, [3, 40, 77], sequence="video", object_id="obj")
    scores.j, scores.f          # (3,) float64: J and F of frames 3, 40 and 77
    scores.j_mean, scores.f_decay, ...

Plus the helpers the protocols share: reading a binary prediction PNG with located errors, and running one job per
sequence/video over worker processes.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from vng.io.common import FormatError, Location
from vng.io.masks import read_mask_png
from vng.metrics import BOUND_TH, binary_frame_scores, statistics

__all__ = ["ObjectScores", "MeanScores", "evaluate_frames", "check_binary", "read_label_png", "read_binary_mask",
           "run_jobs", "default_processes"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class ObjectScores:
    """Per-frame J and F of one object: a DAVIS object of a sequence, a VNG expression, a PV-Oops object.

    Attributes:
        sequence: the sequence / video name.
        object_id: DAVIS object id (palette index), VNG expression id or PV-Oops object id.
        frames: the N frame indices scored, in order.
        j, f: (N,) float64 per-frame J and F.
    """

    sequence: str
    object_id: int | str
    frames: tuple[int, ...]
    j: np.ndarray
    f: np.ndarray

    @property
    def name(self) -> str:
        """``<sequence>_<object_id>``: the toolkit's per-sequence CSV name."""
        return f"{self.sequence}_{self.object_id}"

    @property
    def j_statistics(self) -> tuple[float, float, float]:
        """(mean, recall, decay) of J (:func:`vng.metrics.statistics`)."""
        return statistics(self.j)

    @property
    def f_statistics(self) -> tuple[float, float, float]:
        return statistics(self.f)

    j_mean = property(lambda self: self.j_statistics[0])
    j_recall = property(lambda self: self.j_statistics[1])
    j_decay = property(lambda self: self.j_statistics[2])
    f_mean = property(lambda self: self.f_statistics[0])
    f_recall = property(lambda self: self.f_statistics[1])
    f_decay = property(lambda self: self.f_statistics[2])


@dataclass(frozen=True)
class MeanScores:
    """A protocol whose figure is the mean over objects (VNG expressions, PV-Oops objects) of per-object means.

    ``j`` = mean over objects of their mean J, ``f`` likewise, ``j_and_f = (j + f) / 2``.
    """

    objects: tuple[ObjectScores, ...]

    @property
    def j(self) -> float:
        return float(np.mean([o.j_mean for o in self.objects])) if self.objects else float("nan")

    @property
    def f(self) -> float:
        return float(np.mean([o.f_mean for o in self.objects])) if self.objects else float("nan")

    @property
    def j_and_f(self) -> float:
        return (self.j + self.f) / 2


def check_binary(mask: np.ndarray, location: Location | str, what: str) -> np.ndarray:
    """``mask`` as (H, W) uint8 with 0 and at most one other value (a free view of bool); FormatError otherwise.

    Accepts bool and numeric masks whose non-zero pixels all hold one value (0/1 and 0/255 masks both pass); uint8
    masks (what PNGs decode to) are checked without a histogram and returned as they are.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise FormatError(f"{what}: expected an (H, W) mask, got shape {mask.shape}", location)
    if mask.dtype == bool:
        return np.ascontiguousarray(mask).view(np.uint8)
    if mask.dtype != np.uint8:  # other integer or float masks: the slow, general check
        if len(np.unique(mask[mask != 0])) > 1:
            raise FormatError(f"{what}: not a binary mask (values {_some_values(mask)})", location)
        return np.ascontiguousarray(mask != 0).view(np.uint8)
    mask = np.ascontiguousarray(mask)
    high = int(cv2.minMaxLoc(mask)[1]) if mask.size else 0
    # Every non-zero pixel must equal the maximum: one comparison pass, no histogram.
    if high and cv2.countNonZero(mask) != cv2.countNonZero(cv2.inRange(mask, high, high)):
        raise FormatError(f"{what}: not a binary mask (values {_some_values(mask)})", location)
    return mask


def _some_values(mask: np.ndarray) -> str:
    values = np.unique(mask)
    text = ", ".join(str(v) for v in values[:8])
    return text + (", ..." if len(values) > 8 else "")


def read_label_png(path: Path) -> np.ndarray:
    """:func:`vng.io.masks.read_mask_png`, faster for 8-bit greyscale PNGs (DAVIS-2016 annotations, most results).

    PNG decoding is most of an evaluation's time. OpenCV decodes an 8-bit greyscale PNG straight into an array,
    without PIL's copy through ``tobytes`` (~20 % less per frame); palette PNGs (whose indices OpenCV would
    expand to colours) and anything unusual go to ``read_mask_png``, which also words the errors.
    """
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    # Signature (8 bytes), IHDR length and type (8), width, height (8): bit depth at 24, colour type at 25.
    if len(data) > 26 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data[24] == 8 \
            and data[25] == 0:
        labels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if labels is not None and labels.ndim == 2 and labels.dtype == np.uint8:
            return labels
    return read_mask_png(path)


def read_binary_mask(path: Path, location_text: str) -> np.ndarray:
    """A prediction PNG as (H, W) uint8 holding 0 and one foreground value; FormatError naming ``location_text``."""
    if not path.is_file():
        raise FormatError(f"{location_text}: no prediction", Location(str(path)))
    return check_binary(read_label_png(path), Location(str(path)), location_text)


def _frame_mask(masks, index: int):
    try:
        return masks[index]
    except (KeyError, IndexError):
        return None


def evaluate_frames(gt_masks: Sequence | Mapping[int, np.ndarray | None], pred_masks: Sequence | Mapping,
                    frame_indices: Iterable[int] | None = None, *, sequence: str = "", object_id: int | str = 1,
                    void_masks: Sequence | Mapping | None = None, bound_th: float = BOUND_TH) -> ObjectScores:
    """J and F of one object on the given frames.

    Args:
        gt_masks: frame index → (H, W) binary mask (bool, 0/1 or 0/255) or None (not annotated): a list or a dict.
        pred_masks: frame index → (H, W) binary mask, for every frame scored.
        frame_indices: the frames to score; default every frame whose ground truth is not None, in order.
        sequence, object_id: names for the result and for error messages.
        void_masks: frame index → (H, W) mask of pixels to ignore, or None.
        bound_th: boundary tolerance (:func:`vng.metrics.boundary_tolerance`).

    Raises:
        FormatError naming the sequence, object and frame: no ground truth or prediction for a scored frame, a size
        mismatch, or a mask that is not binary.
    """
    if frame_indices is None:
        keys = sorted(gt_masks) if isinstance(gt_masks, Mapping) else range(len(gt_masks))
        frame_indices = [k for k in keys if gt_masks[k] is not None]
    frames = tuple(int(i) for i in frame_indices)
    source = Location(f"{sequence}/{object_id}" if sequence else str(object_id))
    j, f = np.empty(len(frames)), np.empty(len(frames))
    for position, index in enumerate(frames):
        where = f"sequence {sequence!r} object {object_id!r} frame {index}"
        gt, pred = _frame_mask(gt_masks, index), _frame_mask(pred_masks, index)
        if gt is None:
            raise FormatError(f"{where}: no ground truth", source)
        if pred is None:
            raise FormatError(f"{where}: no prediction", source)
        gt, pred = check_binary(gt, source, f"{where} ground truth"), check_binary(pred, source, f"{where} prediction")
        if gt.shape != pred.shape:
            raise FormatError(f"{where}: prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth is "
                              f"{gt.shape[1]}x{gt.shape[0]}", source)
        void = None if void_masks is None else _frame_mask(void_masks, index)
        if void is not None:
            keep = np.asarray(void) == 0
            if keep.shape != gt.shape:
                raise FormatError(f"{where}: void mask is {keep.shape[1]}x{keep.shape[0]}, ground truth is "
                                  f"{gt.shape[1]}x{gt.shape[0]}", source)
            gt, pred = (gt != 0) & keep, (pred != 0) & keep
            gt, pred = gt.view(np.uint8), pred.view(np.uint8)
        j[position], f[position] = binary_frame_scores(gt, pred, bound_th=bound_th)
    return ObjectScores(sequence, object_id, frames, j, f)


# --- one job per sequence over worker processes -------------------------------------------------------------------

def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV threads would only oversubscribe


def _call(function: Callable[[T], R], item: T) -> tuple[str, object]:
    # FormatError does not survive pickling (its __init__ takes the location apart), so send its parts back.
    try:
        return "ok", function(item)
    except FormatError as error:
        return "format_error", (error.reason, error.location, error.field)


def default_processes() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _context() -> multiprocessing.context.BaseContext:
    """Workers must not be forked from the caller, which may run threads (OpenCV's pool, the caller's own) whose
    locks a fork would copy held. A fork server is one clean process, started once per interpreter with numpy,
    OpenCV and PIL already imported, that forks the workers cheaply; where there is none (Windows), spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def run_jobs(function: Callable[[T], R], items: Sequence[T], *, processes: int | None = None,
             costs: Sequence[float] | None = None, progress: str | None = None, unit: str = "item") -> list[R]:
    """``[function(item) for item in items]``, spread over ``processes`` worker processes.

    Args:
        function: a module-level function (it is pickled by name).
        processes: None → one per available core; 1 → inline, no worker process.
        costs: a rough cost per item (e.g. its frame count); the costliest start first, so no worker is left with a
            long sequence at the end.
        progress: a progress bar with this description, advanced by each item's cost (in ``unit``) as it ends.
    """
    processes = default_processes() if processes is None else processes
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    processes = min(processes, len(items))
    costs = [1] * len(items) if costs is None else list(costs)
    order = sorted(range(len(items)), key=lambda i: -costs[i])
    results: dict[int, R] = {}
    with tqdm(total=sum(costs), unit=unit, desc=progress, disable=progress is None) as bar:
        if processes <= 1:
            for i in range(len(items)):  # in the caller's order: the first bad item raises first
                results[i] = function(items[i])
                bar.update(costs[i])
            return [results[i] for i in range(len(items))]
        errors: dict[int, FormatError] = {}
        with ProcessPoolExecutor(processes, mp_context=_context(), initializer=_worker_init) as pool:
            futures = {pool.submit(_call, function, items[i]): i for i in order}
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                index = futures[future]
                status, value = future.result()
                if status == "format_error":
                    errors[index] = FormatError(*value)
                    for other in futures:  # bad input: stop the items not started yet
                        other.cancel()
                    continue
                results[index] = value
                bar.update(costs[index])
        if errors:
            raise errors[min(errors)]  # the first bad item in the caller's order among those that ran
    return [results[i] for i in range(len(items))]
