import numpy as np
import pytest
from scipy.spatial.distance import pdist

from vng.points import (CandidateConfig, evenly_spaced_frames, sample_candidates, sample_object_candidates,
                        sample_points)
from vng.types import Candidate, CandidateKind


def disc_probability(height=480, width=854, centre=(400, 240), radius=120, band=15):
    yy, xx = np.mgrid[:height, :width]
    distance = np.hypot(xx - centre[0], yy - centre[1])
    # 1 inside, 0 outside, a linear ramp of +-band px around the circle: the uncertain ring
    return np.clip((radius + band - distance) / (2 * band), 0, 1).astype(np.float32)


def test_points_inside_and_far_apart():
    mask = disc_probability() > 0.5
    points = sample_points(mask, 10, min_distance=20, rng=np.random.default_rng(0))
    assert points.shape == (10, 2) and points.dtype == np.float32
    assert (points == np.round(points)).all()
    assert mask[points[:, 1].astype(int), points[:, 0].astype(int)].all()
    assert pdist(points).min() >= 20


def test_deterministic_for_a_generator_state():
    mask = np.ones((100, 200), bool)
    a = sample_points(mask, 8, rng=np.random.default_rng(5))
    b = sample_points(mask, 8, rng=np.random.default_rng(5))
    c = sample_points(mask, 8, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("shape, slices, expected", [
    ((10, 120), (slice(5, 6), slice(0, 100)), 5),     # 1-px strip of 100 px: x = 0, 20, 40, 60, 80
    ((10, 120), (slice(5, 6), slice(0, 41)), 3),      # 41 px: 0, 20, 40
    ((30, 30), (slice(0, 10), slice(0, 10)), 1),      # a 10x10 blob: its diagonal is 12.7 px < 20
    ((30, 60), (slice(0, 15), slice(0, 41)), 3),      # 41x15: a second row would be < 20 px from the first
    ((30, 60), (slice(0, 21), slice(0, 41)), 6),      # 41x21: two rows of three, 20 px apart
])
def test_fallback_keeps_the_maximum_that_fits(shape, slices, expected):
    mask = np.zeros(shape, bool)
    mask[slices] = True
    points = sample_points(mask, 10, min_distance=20, rng=np.random.default_rng(0))
    assert len(points) == expected
    if len(points) > 1:
        assert pdist(points).min() >= 20
    assert mask[points[:, 1].astype(int), points[:, 0].astype(int)].all()


def test_exclude_points_are_respected_and_empty_masks():
    mask = np.ones((50, 50), bool)
    points = sample_points(mask, 4, min_distance=20, rng=np.random.default_rng(1), exclude=[[25, 25]])
    assert (np.hypot(*(points - 25).T) >= 20).all()
    assert sample_points(np.zeros((5, 5), bool), 3, rng=np.random.default_rng(0)).shape == (0, 2)
    assert sample_points(mask, 0, rng=np.random.default_rng(0)).shape == (0, 2)


@pytest.mark.parametrize("num_frames, count, expected", [
    (100, 10, [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]),
    (25, 10, [0, 3, 5, 8, 11, 13, 16, 19, 21, 24]),
    (5, 10, [0, 1, 2, 3, 4]),
    (7, 1, [0]),
    (0, 10, []),
])
def test_evenly_spaced_frames(num_frames, count, expected):
    assert evenly_spaced_frames(num_frames, count) == expected


def test_candidates_per_frame_7_10_3_far_apart_across_kinds():
    probability = disc_probability()
    candidates = sample_candidates(probability, 4, rng=np.random.default_rng(0))
    kinds = [c.kind for c in candidates]
    assert kinds == [CandidateKind.FOREGROUND] * 7 + [CandidateKind.BACKGROUND] * 10 + [CandidateKind.UNCERTAIN] * 3
    assert {c.frame_index for c in candidates} == {4}
    xy = np.array([(c.x, c.y) for c in candidates])
    assert pdist(xy).min() >= 20
    values = probability[xy[:, 1], xy[:, 0]]
    assert (values[:7] >= 0.8).all() and (values[7:17] <= 0.2).all()
    assert ((values[17:] > 0.2) & (values[17:] < 0.8)).all()


def test_candidates_are_proposals_not_release_points():
    # A candidate has a kind and no label: nothing unverified can pass for an ACCEPTED / REJECTED point.
    candidate = sample_candidates(disc_probability(), 0, rng=np.random.default_rng(0))[0]
    assert not hasattr(candidate, "labels") and not hasattr(candidate, "label")
    with pytest.raises(TypeError):
        Candidate(0, 1, 2, 1)  # a PointLabel-like int is not a kind


def test_object_candidates_on_ten_frames_give_200_points_in_verification_order():
    probabilities = np.stack([disc_probability(120, 200, (60 + 5 * t, 60), 35, 6) for t in range(30)])
    maps = {t: probabilities[t] for t in evenly_spaced_frames(30, 10)}
    candidates = sample_object_candidates(maps, rng=np.random.default_rng(0), config=CandidateConfig(min_distance=10))
    assert sorted({c.frame_index for c in candidates}) == evenly_spaced_frames(30, 10)
    assert len(candidates) == 200
    # all 70 foreground candidates over the 10 frames first, then 100 background, then 30 uncertain
    assert [c.kind for c in candidates] == ([CandidateKind.FOREGROUND] * 70 + [CandidateKind.BACKGROUND] * 100
                                            + [CandidateKind.UNCERTAIN] * 30)
    assert [c.frame_index for c in candidates[:70]] == sorted(c.frame_index for c in candidates[:70])


def test_candidate_thresholds_are_validated():
    with pytest.raises(ValueError):
        CandidateConfig(high_threshold=0.3, low_threshold=0.6)
