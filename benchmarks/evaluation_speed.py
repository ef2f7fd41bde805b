"""DAVIS evaluation speed: a straightforward implementation of the toolkit's definitions vs ``vng.benchmark.davis``.

Both run in this process on the same files, one after the other, pinned to one core; ours then also runs on every
core. The reference follows the davis2017-evaluation toolkit step by step: PIL reads each PNG into a float64 stack,
per-object boolean masks, ``db_eval_iou`` over the frame stack, ``f_measure`` frame by frame (``_seg2bmap``,
``disk`` dilation with OpenCV over the whole frame), ``db_statistics``. Its one change: DAVIS-2016's 0/255 masks are
one object (mask > 0), where the toolkit's loader would turn 255 into background and its result reader would see
255 objects. Not run by CI; needs the data::

    .venv/bin/python benchmarks/evaluation_speed.py --gt ../shared/data/davis2016-val/Annotations/480p \\
        --pred ../shared/data/predictions/osvos-davis2016-val

Prints seconds, the speed-ups and the largest difference between the two (per object and global).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vng.benchmark.davis import davis_annotations_dir, evaluate_davis
from vng.benchmark.frames import read_label_png


# --- the reference: the toolkit's definitions, as the toolkit computes them ---------------------------------------

def ref_disk(radius: float) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(offsets, offsets)
    return (x ** 2 + y ** 2 <= radius ** 2).astype(np.uint8)


def ref_seg2bmap(seg: np.ndarray) -> np.ndarray:
    seg = seg.astype(bool)
    east, south, south_east = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = seg ^ east | seg ^ south | seg ^ south_east
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = 0
    return boundary


def ref_f_measure(foreground: np.ndarray, gt: np.ndarray, void: np.ndarray, bound_th: float = 0.008) -> float:
    void = void.astype(bool)
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground.shape))
    fg_boundary = ref_seg2bmap(foreground * np.logical_not(void))
    gt_boundary = ref_seg2bmap(gt * np.logical_not(void))
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), ref_disk(bound_pix))
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), ref_disk(bound_pix))
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg, n_gt = np.sum(fg_boundary), np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision, recall = np.sum(fg_match) / float(n_fg), np.sum(gt_match) / float(n_gt)
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def ref_iou(gt: np.ndarray, pred: np.ndarray, void: np.ndarray) -> np.ndarray:
    gt, pred, void = gt.astype(bool), pred.astype(bool), void.astype(bool)
    intersection = np.sum((pred & gt) & np.logical_not(void), axis=(-2, -1))
    union = np.sum((pred | gt) & np.logical_not(void), axis=(-2, -1))
    j = intersection / union
    j[np.isclose(union, 0)] = 1
    return j


def ref_statistics(values: np.ndarray) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean, recall = np.nanmean(values), np.nanmean(values > 0.5)
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)  # toolkit: < 256 frames
        bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return mean, recall, decay


def ref_read_stack(paths: list[Path]) -> np.ndarray:
    first = np.array(Image.open(paths[0]))
    stack = np.zeros((len(paths), *first.shape))
    for index, path in enumerate(paths):
        stack[index] = np.array(Image.open(path))
    return stack


def ref_separate(stack: np.ndarray) -> np.ndarray:
    """(T, H, W) labels → (objects, T, H, W) bool, objects 1 … max of the first frame (0/255: one object)."""
    if set(np.unique(stack[0]).tolist()) <= {0.0, 255.0}:
        return (stack > 0)[None]
    stack = stack.copy()
    stack[stack == 255] = 0
    count = int(np.max(stack[0]))
    return np.arange(1, count + 1)[:, None, None, None] == stack[None]


def reference_evaluation(annotations: Path, predictions: Path, sequences: list[str]) -> dict[str, tuple]:
    """{<sequence>_<id>: (J stats, F stats)} computed as the toolkit does."""
    results = {}
    for sequence in sequences:
        gt_paths = sorted((annotations / sequence).glob("*.png"))
        gt = ref_separate(ref_read_stack(gt_paths))[:, 1:-1]
        pred_stack = ref_read_stack([predictions / sequence / p.name for p in gt_paths[1:-1]])
        # The toolkit separates the prediction into 1 … its max id objects and stops unless that is the number of
        # ground-truth objects; ids 1 … that number give the same masks without the stop.
        objects = np.arange(1, gt.shape[0] + 1)[:, None, None, None]
        pred = (pred_stack > 0)[None] if gt.shape[0] == 1 else objects == pred_stack[None]
        for index in range(gt.shape[0]):
            void = np.zeros_like(gt[index])  # the toolkit's void masks are always empty (see vng.benchmark.davis)
            j = ref_iou(gt[index], pred[index], void)
            f = np.array([ref_f_measure(pred[index, t], gt[index, t], void[t]) for t in range(gt.shape[1])])
            results[f"{sequence}_{index + 1}"] = (ref_statistics(j), ref_statistics(f))
    return results


# --- the comparison -----------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, type=Path, help="DAVIS root or Annotations/480p folder")
    parser.add_argument("--pred", required=True, type=Path, help="results folder <pred>/<sequence>/<frame>.png")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours per setting (the fastest is reported)")
    args = parser.parse_args()

    annotations = davis_annotations_dir(args.gt)
    sequences = sorted(p.name for p in annotations.iterdir() if p.is_dir())
    for folder in (annotations, args.pred):  # warm the page cache so neither side pays for the disk
        for path in folder.rglob("*.png"):
            path.read_bytes()
    all_cores = os.sched_getaffinity(0)
    one_core = {min(all_cores)}
    os.sched_setaffinity(0, one_core)

    start = time.perf_counter()
    reference = reference_evaluation(annotations, args.pred, sequences)
    reference_seconds = time.perf_counter() - start

    def timed(processes: int | None) -> tuple[list[float], object]:
        times, results = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            results = evaluate_davis(annotations, args.pred, sequences=sequences, processes=processes)
            times.append(time.perf_counter() - start)
        return times, results

    times_one, results = timed(1)
    # The floor: decoding the PNGs ours reads (every ground-truth frame but the last, every scored prediction).
    start = time.perf_counter()
    for sequence in sequences:
        gt_paths = sorted((annotations / sequence).glob("*.png"))
        for path in gt_paths[:-1]:
            read_label_png(path)
        for path in gt_paths[1:-1]:
            read_label_png(args.pred / sequence / path.name)
    decode_seconds = time.perf_counter() - start
    os.sched_setaffinity(0, all_cores)  # before the first worker process starts: workers inherit the affinity
    times_all, results_all = timed(None)  # the first run also starts the fork server
    ours_one, ours_all = min(times_one), min(times_all)

    differences = []
    for scores in results.objects:
        (jm, jr, jd), (fm, fr, fd) = reference[scores.name]
        differences += [abs(a - b) for a, b in zip((jm, jr, jd, fm, fr, fd), (*scores.j_statistics,
                                                                              *scores.f_statistics))]
    reference_jf = (np.mean([v[0][0] for v in reference.values()]) + np.mean([v[1][0] for v in reference.values()])) / 2
    differences.append(abs(reference_jf - results.j_and_f_mean))
    differences.append(abs(results_all.j_and_f_mean - results.j_and_f_mean))

    frames = sum(len(s.frames) for s in results.objects)
    print(f"{len(sequences)} sequences, {len(results.objects)} objects, {frames} frames scored; "
          f"CPU {os.cpu_count()} cores, {len(all_cores)} usable")
    print(f"reference (toolkit definitions), 1 core : {reference_seconds:7.2f} s")
    print(f"vng.benchmark.davis, processes=1, 1 core : {ours_one:7.2f} s   "
          f"speed-up {reference_seconds / ours_one:5.1f}x")
    print(f"  of which PNG decoding (OpenCV/libpng, zlib)   : {decode_seconds:7.2f} s")
    print(f"vng.benchmark.davis, {len(all_cores)} processes, all cores: {ours_all:7.2f} s   "
          f"speed-up {reference_seconds / ours_all:5.1f}x  (first run, starting the workers: {times_all[0]:.2f} s)")
    print(f"J&F-Mean reference {reference_jf:.6f}  ours {results.j_and_f_mean:.6f}  "
          f"(J-Mean {results.j_mean:.6f}, F-Mean {results.f_mean:.6f})")
    print(f"largest difference (per-object statistics and global): {max(differences):.3g}")


if __name__ == "__main__":
    main()
