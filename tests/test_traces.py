import numpy as np
import pytest

from vng.traces import localise_noun, make_noun_object, noun_trace_runs, rasterise_trace, word_window
from vng.types import ActorNarrative, Narrative, TraceSegment, WordTiming

CAPTION = "A red circle jumps over the blue square"
#          0123456789012345678901234567890123456789
WORDS = [("A", 0, 1, 0, 100), ("red", 2, 5, 100, 200), ("circle", 6, 12, 200, 300), ("jumps", 13, 18, 300, 400),
         ("over", 19, 23, 400, 500), ("the", 24, 27, 500, 600), ("blue", 28, 32, 600, 700),
         ("square", 33, 39, 700, 800)]
RECORDING_START = 10_000


def timings(order=None):
    words = [WordTiming(w, s, e, a, b) for w, s, e, a, b in WORDS]
    return tuple(words if order is None else [words[i] for i in order])


def narrative(segments, time_alignment=None):
    actor = ActorNarrative(actor_name="Circle", caption=CAPTION, keyframe_selection_indices=(0,),
                           recording_start_time_ms=RECORDING_START, traces_start_time_ms=RECORDING_START,
                           recording_filename="", noun_segments=((6, 12),),
                           time_alignment=time_alignment or timings(), traces=tuple(segments))
    return Narrative(vidln_id=1, dataset_id="d", video_id="v", annotator_id=0, keyframe_names=("k0", "k1", "k2"),
                     frame_size=(100, 80), actor_narratives=(actor,))


def segment(times, keyframes, start_x=0.0):
    times = np.asarray(times) + RECORDING_START
    xy = np.stack([start_x + np.arange(len(times)) * 2.0, np.full(len(times), 10.0)], 1)
    return TraceSegment(xy, times, keyframes)


def test_word_window_runs_to_next_word_start():
    assert word_window(timings(), (6, 12)) == (200, 300)  # "circle" → up to "jumps" start
    assert word_window(timings(), (2, 12)) == (100, 300)  # "red circle": two words
    assert word_window(timings(), (4, 7)) == (100, 300)   # partial overlaps count
    assert word_window(timings(), (12, 13)) is None       # the space between words overlaps none


def test_word_window_last_word_is_open_ended():
    assert word_window(timings(), (33, 39)) == (700, float("inf"))


def test_word_window_sorts_by_start_time():
    shuffled = timings(order=[7, 3, 0, 5, 1, 6, 2, 4])
    assert word_window(shuffled, (6, 12)) == (200, 300)


def test_runs_include_window_bounds_and_split_where_predicate_changes():
    # times relative to recording start; window for "circle" is [200, 300] inclusive
    seg = segment([150, 199, 200, 250, 300, 301, 250, 260], [0] * 8)
    runs = noun_trace_runs(narrative([seg]), narrative([seg]).actor_narratives[0], (6, 12))
    assert [r.times_ms.tolist() for r in runs] == [[10200, 10250, 10300], [10250, 10260]]
    assert runs[0].xy[:, 0].tolist() == [4.0, 6.0, 8.0]


def test_runs_split_at_segments_and_keyframes():
    seg_a = segment([210, 220, 230, 240], [0, 0, 2, 2])
    seg_b = segment([250, 260], [1, 1], start_x=50)
    n = narrative([seg_a, seg_b])
    runs = noun_trace_runs(n, n.actor_narratives[0], (6, 12))
    assert [(r.keyframe_index, r.keyframe_name, len(r)) for r in runs] == [(0, "k0", 2), (2, "k2", 2), (1, "k1", 2)]


def test_last_word_takes_every_later_point():
    seg = segment([699, 700, 5000, 90000], [1] * 4)
    n = narrative([seg])
    runs = noun_trace_runs(n, n.actor_narratives[0], (33, 39))
    assert [len(r) for r in runs] == [3]


def test_rasterise_width_3_is_symmetric_and_not_antialiased():
    mask = rasterise_trace(np.array([[5.5, 5.2], [9.9, 5.0]]), (16, 12), line_width=3)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (4, 6, 4, 10)
    assert mask.sum() == 3 * 7 and mask.dtype == bool


def test_rasterise_even_width_extends_left_and_up():
    mask = rasterise_trace(np.array([[5.0, 5.0]]), (12, 12), line_width=4)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3, 6, 3, 6)
    single = rasterise_trace(np.array([[5.0, 5.0]]), (12, 12), line_width=1)
    assert single.sum() == 1 and single[5, 5]


def test_rasterise_diagonal_is_8_connected_and_clipped():
    mask = rasterise_trace(np.array([[0, 0], [3, 3], [200, 3]]), (8, 6), line_width=1)
    expected = np.zeros((6, 8), bool)
    expected[[0, 1, 2, 3], [0, 1, 2, 3]] = True
    expected[3, 3:8] = True
    np.testing.assert_array_equal(mask, expected)


def test_localise_picks_largest_area_and_earliest_keyframe_on_ties():
    long_late = segment([210, 220, 230], [2, 2, 2], start_x=10)  # 3 points, 2 px apart → longest line
    short_early = segment([240, 250], [1, 1], start_x=40)
    same_area_earlier = segment([260, 270, 280], [0, 0, 0], start_x=60)
    n = narrative([long_late, short_early])
    loc = localise_noun(make_noun_object(n, 0, (6, 12), "spacy"))
    assert loc.keyframe_index == 2 and loc.area == 3 * (5 + 2)  # brush overhangs both ends
    n = narrative([long_late, short_early, same_area_earlier])
    loc = localise_noun(make_noun_object(n, 0, (6, 12), "spacy"))
    assert loc.keyframe_index == 0 and loc.area == 21


def test_noun_without_trace_has_no_localisation():
    n = narrative([segment([900, 950], [0, 0])])
    loc = localise_noun(make_noun_object(n, 0, (6, 12), "noun_segments"))
    assert loc.run is None and loc.area == 0


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_area_of_horizontal_line(width):
    mask = rasterise_trace(np.array([[10, 10], [19, 10]]), (40, 40), line_width=width)
    assert mask.sum() == (10 + width - 1) * width  # the square brush overhangs both ends
