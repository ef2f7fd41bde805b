"""vng.metrics: hand-computed J and F, the toolkit's edge and empty-mask rules, void pixels, statistics."""

import math

import cv2
import numpy as np
import pytest
from scipy import ndimage

from vng.metrics import (binary_frame_scores, boundary_f, boundary_map, boundary_tolerance, disk, jaccard,
                         jaccard_and_boundary_f, statistics)


def square(top, left, size=6, shape=(12, 12)):
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


# --- J and F by hand ------------------------------------------------------------------------------------------------

def test_tolerance_and_disk():
    assert boundary_tolerance(480, 854) == 8  # ceil(0.008 * 979.7)
    assert boundary_tolerance(12, 12) == 1  # ceil(0.008 * 16.97) = ceil(0.136)
    assert boundary_tolerance(12, 12, 3) == 3  # bound_th >= 1 is already in pixels
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(disk(2), [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0],
                                            [0, 0, 1, 0, 0]])
    assert disk(8).shape == (17, 17) and disk(8).sum() == 197  # lattice points with x² + y² ≤ 64
    assert disk(2.5).shape == (6, 6)  # skimage's grid arange(-2.5, 3.5) for a non-integer radius


def test_boundary_of_a_square_is_its_outline_shifted_towards_the_origin():
    # Rows/columns 2..7 set: a pixel is on the boundary when its E, S or SE neighbour differs, so the boundary is the
    # outline of rows/columns 1..7: the row above and column left of the square plus its last row and column.
    expected = np.zeros((12, 12), bool)
    expected[1, 1:8] = expected[7, 1:8] = expected[1:8, 1] = expected[1:8, 7] = True
    np.testing.assert_array_equal(boundary_map(square(2, 2)), expected)
    assert expected.sum() == 24


def test_boundary_edge_rules():
    corner = np.zeros((4, 4), np.uint8)
    corner[3, 3] = 1  # bottom-right pixel: never a boundary itself (the toolkit zeroes that corner)
    expected = np.zeros((4, 4), bool)
    expected[2, 2] = expected[2, 3] = expected[3, 2] = True  # SE, S (last column), E (last row) differ
    np.testing.assert_array_equal(boundary_map(corner), expected)
    top_right = np.zeros((4, 4), np.uint8)
    top_right[0, 3] = 1  # last column compares south only: (0, 3) is a boundary pixel, its west neighbour too
    expected = np.zeros((4, 4), bool)
    expected[0, 2] = expected[0, 3] = True
    np.testing.assert_array_equal(boundary_map(top_right), expected)
    assert not boundary_map(np.ones((5, 7), bool)).any()  # the image edge is not a boundary
    stack = np.stack([corner, top_right])
    np.testing.assert_array_equal(boundary_map(stack)[1], boundary_map(top_right))


def test_squares_shifted_by_one_pixel():
    gt, pred = square(2, 2), square(2, 3)
    # J: overlap 6 x 5 = 30, union 36 + 36 - 30 = 42.
    # F: tolerance 1 px (a plus-shaped disk). Both outlines (24 px each) lie within one pixel of each other.
    j, f = jaccard_and_boundary_f(gt, pred)
    assert j[0] == pytest.approx(30 / 42) and f[0] == 1.0


def test_squares_shifted_by_two_pixels():
    gt, pred = square(2, 2), square(2, 4)
    # J: overlap 6 x 4 = 24, union 72 - 24 = 48 → 1/2.
    # Boundaries: gt = outline of rows 1..7 x cols 1..7, pred = outline of rows 1..7 x cols 3..9 (24 px each).
    # Precision (pred pixels within the 1-px plus of a gt pixel):
    #   top row (1, 3..9): 3..7 on gt, 8 next to (1, 7), 9 not        → 6 of 7
    #   bottom row (7, 3..9): likewise                                → 6 of 7
    #   left column (2..6, 3): (2, 3) under (1, 3), (6, 3) above (7, 3) → 2 of 5
    #   right column (2..6, 9): gt's nearest column is 7, two away    → 0 of 5   → P = 14/24
    # Recall (gt pixels near pred): top and bottom rows 6 of 7 each ((1, 1) and (7, 1) too far), left column 0 of 5,
    #   right column (2..6, 7): (2, 7) and (6, 7) touch pred's rows 1 and 7 → 2 of 5    → R = 14/24
    # F = 2PR / (P + R) = 7/12.
    j, f = jaccard_and_boundary_f(gt, pred)
    assert j[0] == pytest.approx(0.5) and f[0] == pytest.approx(7 / 12)
    assert jaccard(gt, pred)[0] == pytest.approx(0.5) and boundary_f(gt, pred)[0] == pytest.approx(7 / 12)
    # A wider tolerance matches every pixel.
    assert boundary_f(gt, pred, bound_th=2)[0] == 1.0


def test_empty_mask_conventions():
    empty, full = np.zeros((12, 12), bool), np.ones((12, 12), bool)
    some = square(2, 2)
    j, f = jaccard_and_boundary_f([empty, empty, some, empty], [empty, some, empty, full])
    np.testing.assert_array_equal(j, [1, 0, 0, 0])
    # both empty → 1; one boundary empty → 0; a full-frame mask has no boundary (the edge is none), so empty vs
    # full has two empty boundaries: F = 1 although J = 0, exactly as the toolkit scores it.
    np.testing.assert_array_equal(f, [1, 0, 0, 1])


def test_void_pixels_are_left_out():
    gt = square(2, 2)
    pred = gt.copy()
    pred[9:12, 9:12] = True  # a false positive entirely inside void
    void = np.zeros_like(gt)
    void[8:12, 8:12] = True
    j, f = jaccard_and_boundary_f(gt, pred, void)
    assert j[0] == 1.0 and f[0] == 1.0
    j, f = jaccard_and_boundary_f(gt, pred)
    assert j[0] == pytest.approx(36 / 45) and f[0] < 1
    # void over columns 2..4 of both: gt keeps columns 5..7 (18 px), pred (3..8) keeps 5..8 (24 px) → 18 / 24
    void = np.zeros_like(gt)
    void[2:8, 2:5] = True
    assert jaccard(gt, square(2, 3), void)[0] == pytest.approx(18 / 24)
    assert jaccard_and_boundary_f(gt, square(2, 3), void)[0][0] == pytest.approx(18 / 24)


def test_inputs_and_shapes():
    gt = np.stack([square(2, 2), square(3, 3)]).astype(np.uint8) * 255  # 0/255 masks
    pred = np.stack([square(2, 3), square(3, 3)])
    j, f = jaccard_and_boundary_f(gt, pred)
    assert j.shape == f.shape == (2,) and j.dtype == np.float64
    assert j[1] == 1.0 and f[1] == 1.0
    assert binary_frame_scores(gt[0], pred[0].view(np.uint8)) == (j[0], f[0])
    # any single foreground value per mask, even ones with no bit in common (object ids 1 and 2)
    assert binary_frame_scores(pred[0].view(np.uint8) * np.uint8(2), (gt[0] != 0).view(np.uint8)) == (j[0], f[0])
    with pytest.raises(ValueError, match="frame 0"):
        jaccard_and_boundary_f(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="2 ground-truth frames, 1 predicted"):
        jaccard_and_boundary_f(gt, pred[:1])


# --- against a straightforward implementation of the toolkit's definitions -----------------------------------------

def reference_f(gt, pred, void, bound_th):
    """f_measure as the toolkit writes it: whole-frame boundaries, dilation with a disk (scipy here, not OpenCV)."""
    keep = ~void
    radius = bound_th if bound_th >= 1 else math.ceil(bound_th * np.hypot(*gt.shape))
    gt_b, pred_b = boundary_map(gt & keep), boundary_map(pred & keep)
    structure = disk(radius).astype(bool)
    n_gt, n_pred = gt_b.sum(), pred_b.sum()
    if n_gt == 0 or n_pred == 0:
        return 1.0 if n_gt == n_pred else 0.0
    precision = (pred_b & ndimage.binary_dilation(gt_b, structure)).sum() / n_pred
    recall = (gt_b & ndimage.binary_dilation(pred_b, structure)).sum() / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def reference_boundary(seg):
    """_seg2bmap written with explicit neighbour arrays and edge overrides, as the toolkit does."""
    east, south, south_east = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1], south[:-1, :], south_east[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
    boundary = seg ^ east | seg ^ south | seg ^ south_east
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = 0
    return boundary


def random_mask(rng, shape):
    if rng.random() < 0.3:
        return rng.random(shape) < rng.random()
    mask = np.zeros(shape, bool)
    for _ in range(rng.integers(0, 3)):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        mask[y:y + rng.integers(1, shape[0] + 1), x:x + rng.integers(1, shape[1] + 1)] = True
    return mask


def test_random_masks_match_the_reference():
    rng = np.random.default_rng(0)
    for trial in range(400):
        shape = tuple(int(v) for v in rng.integers(1, 40, 2))
        gt, pred = random_mask(rng, shape), random_mask(rng, shape)
        void = rng.random(shape) < 0.1 if trial % 3 == 0 else np.zeros(shape, bool)
        bound_th = (0.008, 0.05, 2, 3)[trial % 4]
        j, f = jaccard_and_boundary_f(gt, pred, void, bound_th=bound_th)
        np.testing.assert_array_equal(boundary_map(gt), reference_boundary(gt))
        union = ((gt | pred) & ~void).sum()
        assert j[0] == (1.0 if union == 0 else ((gt & pred) & ~void).sum() / union)
        assert f[0] == reference_f(gt, pred, void, bound_th), (trial, shape, bound_th)


def test_non_integer_tolerance_uses_the_same_off_centre_disk_as_the_toolkit():
    rng = np.random.default_rng(1)
    for _ in range(50):
        gt, pred = random_mask(rng, (30, 30)), random_mask(rng, (30, 30))
        gt_b, pred_b = reference_boundary(gt).astype(np.uint8), reference_boundary(pred).astype(np.uint8)
        kernel = disk(2.5)  # the toolkit dilates whole frames with OpenCV and this kernel
        n_gt, n_pred = gt_b.sum(), pred_b.sum()
        if not (n_gt and n_pred):
            continue
        precision = (pred_b & cv2.dilate(gt_b, kernel)).sum() / n_pred
        recall = (gt_b & cv2.dilate(pred_b, kernel)).sum() / n_gt
        expected = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        assert boundary_f(gt, pred, bound_th=2.5)[0] == expected


# --- statistics ---------------------------------------------------------------------------------------------------

def test_statistics_by_hand():
    # T = 5: quarters [0:2] and [3:5] → decay = mean(1, .2) - mean(.9, .4) = .6 - .65
    mean, recall, decay = statistics([1, 0.2, 0.6, 0.9, 0.4])
    assert mean == pytest.approx(0.62) and recall == pytest.approx(0.6) and decay == pytest.approx(-0.05)
    # T = 3: linspace(1, 3, 5) = 1, 1.5, 2, 2.5, 3; the toolkit's +1e-10 rounds 1.5 and 2.5 up → ids 0, 1, 1, 2, 2:
    # first quarter [1, .5], last [0] → .75 (banker's rounding would give [.5, 0] and .5)
    assert statistics([1, 0.5, 0])[2] == pytest.approx(0.75)
    # T = 8: ids 0, 2, 4, 5, 7 → first quarter frames 0-2, last 5-7
    assert statistics([1, 1, 1, 0, 0, 0.5, 0.5, 0.2])[2] == pytest.approx(1 - 0.4)
    assert statistics([0.7]) == pytest.approx((0.7, 1.0, 0.0))


def test_statistics_nan_handling():
    # mean ignores NaN; recall counts a NaN frame as not above 0.5; quarters ignore NaN (T = 4: [0:2] and [2:4])
    mean, recall, decay = statistics([math.nan, 1, 0.2, math.nan])
    assert mean == pytest.approx(0.6) and recall == pytest.approx(0.25) and decay == pytest.approx(0.8)
    assert all(math.isnan(v) for v in statistics([]))


def test_decay_beyond_255_frames():
    values = np.r_[np.ones(150), np.zeros(150)]
    # ids = 0, 75, 150, 224, 299: first quarter all 1, last all 0. The toolkit's uint8 ids wrap 299 to 43 and give
    # an empty last quarter (NaN).
    assert statistics(values) == pytest.approx((0.5, 0.5, 1.0))


def test_statistics_equal_the_toolkit_formula_below_256_frames():
    rng = np.random.default_rng(2)
    for length in (1, 2, 3, 4, 7, 50, 255):
        values = rng.random(length)
        ids = (np.round(np.linspace(1, length, 5) + 1e-10) - 1).astype(np.uint8)
        bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
        expected = (np.nanmean(values), np.nanmean(values > 0.5), np.nanmean(bins[0]) - np.nanmean(bins[3]))
        assert statistics(values) == expected
