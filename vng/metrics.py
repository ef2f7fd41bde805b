"""Video object segmentation metrics with the DAVIS definitions (davis2017-evaluation toolkit; FORMATS.md §5).

- J (region similarity): intersection over union per frame; a frame where both masks are empty scores 1.
- F (boundary accuracy): F-measure of boundary pixels matched within ``ceil(bound_th × image diagonal)`` px
  (8 px at 854×480). A boundary pixel is one that differs from its east, south or south-east neighbour; the image
  edge itself is never a boundary (the toolkit's ``_seg2bmap``). Matching = dilating the other boundary with a
  ``skimage.morphology.disk``. Both boundaries empty → 1; exactly one empty → 0.
- :func:`statistics`: per-object mean, recall (fraction of frames > 0.5) and decay (first quarter − last quarter),
  as the toolkit's ``db_statistics``, without its uint8 overflow of the quarter indices beyond 256 frames.

Void pixels (DAVIS label 255) are removed from both masks before scoring, as the toolkit does with ``void_pixels``.
The numbers equal the toolkit's; the work does not: each frame is cropped to the bounding box of its two masks
(the metrics do not depend on the empty rest of the frame) and scored with OpenCV on uint8 crops.

Masks are (T, H, W) arrays (or a sequence of (H, W) arrays) of any integer or bool dtype, non-zero = foreground;
a single (H, W) mask is scored as one frame. Results are (T,) float64.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Sequence

import cv2
import numpy as np

__all__ = ["jaccard", "boundary_f", "jaccard_and_boundary_f", "binary_frame_scores", "boundary_map",
           "boundary_tolerance", "disk", "statistics", "BOUND_TH"]

BOUND_TH = 0.008  # the toolkit's default boundary tolerance: a fraction of the image diagonal


def disk(radius: float) -> np.ndarray:
    """``skimage.morphology.disk(radius)`` as (2r+1, 2r+1) uint8: offsets (dx, dy) with dx² + dy² ≤ r².

    The offsets run over ``arange(-radius, radius + 1)`` exactly as skimage's do, so a non-integer radius (possible
    only with ``bound_th >= 1``) gives skimage's off-centre grid too.
    """
    offsets = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(offsets, offsets)
    return (x ** 2 + y ** 2 <= radius ** 2).astype(np.uint8)


def boundary_tolerance(height: int, width: int, bound_th: float = BOUND_TH) -> float:
    """Match radius in px: ``bound_th`` when ≥ 1, else ``ceil(bound_th × sqrt(H² + W²))`` (8 at 854×480)."""
    return bound_th if bound_th >= 1 else float(np.ceil(bound_th * np.linalg.norm((height, width))))


def boundary_map(masks: np.ndarray) -> np.ndarray:
    """The toolkit's ``_seg2bmap`` over the last two axes: (..., H, W) → (..., H, W) bool.

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour; neighbours beyond the
    image repeat the edge pixel, so the last row compares east only, the last column south only, and the
    bottom-right corner is never a boundary (exactly the toolkit's edge rules).
    """
    seg = np.asarray(masks) != 0
    pad_width = [(0, 0)] * (seg.ndim - 2) + [(0, 1), (0, 1)]
    padded = np.pad(seg, pad_width, mode="edge")
    east, south, south_east = padded[..., :-1, 1:], padded[..., 1:, :-1], padded[..., 1:, 1:]
    return (seg ^ east) | (seg ^ south) | (seg ^ south_east)


def _boundary_u8(crop: np.ndarray) -> np.ndarray:
    """:func:`boundary_map` of one (h, w) uint8 0/1 crop, in OpenCV: (h, w) uint8 0/1."""
    padded = cv2.copyMakeBorder(crop, 0, 1, 0, 1, cv2.BORDER_REPLICATE)
    edge = cv2.bitwise_xor(crop, padded[:-1, 1:])
    edge = cv2.bitwise_or(edge, cv2.bitwise_xor(crop, padded[1:, :-1]))
    return cv2.bitwise_or(edge, cv2.bitwise_xor(crop, padded[1:, 1:]))


def _bounding_box(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int] | None:
    """Rows/columns [y0, y1) × [x0, x1) of both masks' foreground grown by one pixel each way, or None if empty.

    The one-pixel margin keeps every boundary pixel (the row above / column left of the mask are boundary pixels)
    and every neighbour that decides one, so scoring the crop equals scoring the frame: pixels outside it are
    background whose neighbours are background, and where the crop meets the image edge the edge rule applies.
    """
    boxes = [cv2.boundingRect(mask) for mask in (gt, pred)]
    boxes = [box for box in boxes if box[2] > 0]
    if not boxes:
        return None
    height, width = gt.shape
    y0 = max(min(box[1] for box in boxes) - 1, 0)
    x0 = max(min(box[0] for box in boxes) - 1, 0)
    y1 = min(max(box[1] + box[3] for box in boxes) + 1, height)
    x1 = min(max(box[0] + box[2] for box in boxes) + 1, width)
    return y0, y1, x0, x1


@functools.lru_cache(maxsize=16)
def _kernel(height: int, width: int, bound_th: float) -> np.ndarray:
    return disk(boundary_tolerance(height, width, bound_th))


def binary_frame_scores(gt: np.ndarray, pred: np.ndarray, *, bound_th: float = BOUND_TH) -> tuple[float, float]:
    """(J, F) of one frame: the fast path for callers that already hold binary uint8 masks.

    Args:
        gt, pred: (H, W) uint8, C-contiguous, each holding 0 and one foreground value (e.g. 1, 255 or an object
            id; the two may differ), void removed. Not checked: a mask with two foreground values gives wrong
            numbers (use :func:`jaccard_and_boundary_f` for anything else).
    """
    box = _bounding_box(gt, pred)
    if box is None:  # both empty: J = 1 and, both boundaries empty, F = 1
        return 1.0, 1.0
    kernel = _kernel(*gt.shape, bound_th)
    y0, y1, x0, x1 = box
    gt, pred = gt[y0:y1, x0:x1], pred[y0:y1, x0:x1]
    n_gt, n_pred = cv2.countNonZero(gt), cv2.countNonZero(pred)
    # min, not bitwise and: "both non-zero" whatever the two foreground values are (1 & 2 would be 0)
    intersection = cv2.countNonZero(cv2.min(gt, pred))
    j = intersection / (n_gt + n_pred - intersection)

    gt_boundary, pred_boundary = _boundary_u8(gt), _boundary_u8(pred)
    n_gt, n_pred = cv2.countNonZero(gt_boundary), cv2.countNonZero(pred_boundary)
    if n_gt == 0 or n_pred == 0:  # toolkit: both empty → P = R = 1; one empty → P or R = 0, so F = 0
        return j, 1.0 if n_gt == n_pred else 0.0
    # The crop holds every boundary pixel, and OpenCV's default dilation border adds nothing, so dilating the crop
    # equals dilating the frame wherever the other boundary can be.
    pred_matched = cv2.countNonZero(cv2.min(pred_boundary, cv2.dilate(gt_boundary, kernel)))
    gt_matched = cv2.countNonZero(cv2.min(gt_boundary, cv2.dilate(pred_boundary, kernel)))
    precision, recall = pred_matched / float(n_pred), gt_matched / float(n_gt)
    if precision + recall == 0:
        return j, 0.0
    return j, 2 * precision * recall / (precision + recall)


def _as_u8(mask: np.ndarray) -> np.ndarray:
    """(H, W) any dtype → C-contiguous uint8 0/1 (a free view for bool input)."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        mask = mask != 0
    return np.ascontiguousarray(mask).view(np.uint8)


def _frames(masks) -> Sequence[np.ndarray]:
    if isinstance(masks, np.ndarray) and masks.ndim == 2:
        return [masks]
    return masks


def jaccard_and_boundary_f(gt, pred, void=None, *, bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every frame in one pass (they share the crop).

    Args:
        gt, pred: (T, H, W) or a sequence of T (H, W) masks (any dtype, non-zero = foreground), or one (H, W) mask.
        void: like gt, or None; non-zero pixels are left out of both masks.
        bound_th: boundary tolerance, a fraction of the diagonal (< 1) or pixels (≥ 1).

    Returns:
        (j, f): (T,) float64 each.
    """
    gt, pred = _frames(gt), _frames(pred)
    void = None if void is None else _frames(void)
    if len(gt) != len(pred) or (void is not None and len(void) != len(gt)):
        raise ValueError(f"{len(gt)} ground-truth frames, {len(pred)} predicted"
                         + ("" if void is None else f", {len(void)} void masks"))
    j, f = np.empty(len(gt)), np.empty(len(gt))
    for index in range(len(gt)):
        gt_frame, pred_frame = _as_u8(gt[index]), _as_u8(pred[index])
        if gt_frame.shape != pred_frame.shape or gt_frame.ndim != 2:
            raise ValueError(f"frame {index}: ground truth is {gt_frame.shape}, prediction {pred_frame.shape}")
        if void is not None:
            keep = cv2.bitwise_not(_as_u8(void[index]) * np.uint8(255))  # 0 on void pixels, 255 elsewhere
            if keep.shape != gt_frame.shape:
                raise ValueError(f"frame {index}: void mask is {keep.shape}, ground truth {gt_frame.shape}")
            gt_frame, pred_frame = cv2.bitwise_and(gt_frame, keep), cv2.bitwise_and(pred_frame, keep)
        j[index], f[index] = binary_frame_scores(gt_frame, pred_frame, bound_th=bound_th)
    return j, f


def jaccard(gt, pred, void=None) -> np.ndarray:
    """Region similarity per frame: (T,) float64; |gt ∩ pred| / |gt ∪ pred| outside void, 1 where both are empty.

    Shapes as in :func:`jaccard_and_boundary_f`.
    """
    gt, pred = _frames(gt), _frames(pred)
    void = None if void is None else _frames(void)
    if len(gt) != len(pred) or (void is not None and len(void) != len(gt)):
        raise ValueError(f"{len(gt)} ground-truth frames, {len(pred)} predicted")
    scores = np.empty(len(gt))
    for index in range(len(gt)):
        gt_frame, pred_frame = np.asarray(gt[index]) != 0, np.asarray(pred[index]) != 0
        if gt_frame.shape != pred_frame.shape:
            raise ValueError(f"frame {index}: ground truth is {gt_frame.shape}, prediction {pred_frame.shape}")
        if void is not None:
            keep = np.asarray(void[index]) == 0
            gt_frame, pred_frame = gt_frame & keep, pred_frame & keep
        intersection = np.count_nonzero(gt_frame & pred_frame)
        union = np.count_nonzero(gt_frame | pred_frame)
        scores[index] = 1.0 if union == 0 else intersection / union
    return scores


def boundary_f(gt, pred, void=None, bound_th: float = BOUND_TH) -> np.ndarray:
    """Boundary F-measure per frame: (T,) float64. Shapes and conventions as in :func:`jaccard_and_boundary_f`."""
    return jaccard_and_boundary_f(gt, pred, void, bound_th=bound_th)[1]


def statistics(values) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame scores, exactly as the toolkit's ``db_statistics``.

    - mean: NaN-ignoring mean;
    - recall: fraction of frames scoring > 0.5 (a NaN frame counts as not above);
    - decay: mean of the first quarter minus mean of the last quarter (NaN-ignoring), the quarters being
      ``values[ids[i]:ids[i + 1] + 1]`` with ``ids = round(linspace(1, T, 5) + 1e-10) - 1`` (so neighbouring
      quarters share a frame). The toolkit stores ``ids`` as uint8, which wraps beyond 256 frames; these are ints.

    An empty input gives (nan, nan, nan), like the toolkit.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN slices give NaN, as in the toolkit
        mean = float(np.nanmean(values))
        recall = float(np.mean(values > 0.5))
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
        first, last = values[ids[0]:ids[1] + 1], values[ids[3]:ids[4] + 1]
        decay = float(np.nanmean(first) - np.nanmean(last))
    return mean, recall, decay
