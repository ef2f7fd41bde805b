"""Annotations → prompts: verified points (fg/bg/ambiguous, optional box) and mouse traces (points, box, both)."""

import numpy as np
import pytest

from vng.segmenters import PointPromptConfig, TracePromptConfig, box_around, points_prompt, trace_mask_prompt
from vng.traces import rasterise_trace
from vng.types import Points

POINTS = Points([[10, 10], [30, 12], [5, 40], [50, 45], [20, 30]], [1, 1, 0, 0, -1])


def test_points_prompt_uses_fg_and_bg_and_drops_ambiguous():
    prompt = points_prompt(POINTS, (64, 48))
    np.testing.assert_array_equal(prompt.points, POINTS.xy[:4])
    np.testing.assert_array_equal(prompt.labels, [1, 1, 0, 0])
    assert prompt.box is None


def test_points_prompt_foreground_only_and_box():
    prompt = points_prompt(POINTS, (64, 48), config=PointPromptConfig(use_background=False, box_from_foreground=True,
                                                                       box_margin=15))
    np.testing.assert_array_equal(prompt.labels, [1, 1])
    np.testing.assert_array_equal(prompt.box, [0, 0, 45, 27])  # grown by 15 px, clipped at the frame's top-left


def test_points_prompt_is_none_without_foreground():
    assert points_prompt(POINTS.background, (64, 48)) is None
    assert points_prompt(Points.empty(), (64, 48)) is None


def test_box_around_clips_to_the_frame():
    np.testing.assert_array_equal(box_around([[3, 4], [60, 40]], (64, 48), margin=10), [0, 0, 63, 47])
    with pytest.raises(ValueError, match="no points"):
        box_around(np.zeros((0, 2)), (64, 48))


TRACE = np.array([[20.0, 100.0], [150.0, 100.0], [150.0, 160.0], [60.0, 170.0]])
DRAWN = rasterise_trace(TRACE, (200, 200), line_width=3)


def test_trace_points_lie_on_the_rasterised_trace_and_keep_their_distance():
    config = TracePromptConfig(num_points=6, min_distance=20)
    prompt = trace_mask_prompt(DRAWN, config=config, rng=np.random.default_rng(0))
    assert len(prompt.points) == 6 and prompt.box is None and (prompt.labels == 1).all()
    assert DRAWN[prompt.points[:, 1].astype(int), prompt.points[:, 0].astype(int)].all()
    distances = np.linalg.norm(prompt.points[:, None] - prompt.points[None], axis=-1)
    assert distances[np.triu_indices(6, 1)].min() >= 20
    again = trace_mask_prompt(DRAWN, config=config, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again.points, prompt.points)


def test_trace_box_and_both():
    # the 3 px brush reaches one pixel beyond the polyline's vertices on every side
    box = trace_mask_prompt(DRAWN, config=TracePromptConfig(mode="box"), rng=np.random.default_rng(0))
    assert len(box.points) == 0
    np.testing.assert_array_equal(box.box, [19, 99, 151, 171])
    both = trace_mask_prompt(DRAWN, config=TracePromptConfig(mode="points+box", box_margin=5),
                             rng=np.random.default_rng(0))
    assert len(both.points) == 10
    np.testing.assert_array_equal(both.box, [14, 94, 156, 176])


def test_trace_prompt_rejects_bad_input():
    with pytest.raises(ValueError, match="mode"):
        TracePromptConfig(mode="scribble")
    with pytest.raises(ValueError, match="empty trace"):
        trace_mask_prompt(np.zeros((10, 10), bool), rng=np.random.default_rng(0))
