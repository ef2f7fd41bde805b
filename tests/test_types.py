import numpy as np
import pytest

from vng.types import (ActorNarrative, FramePoints, Narrative, NounObject, ObjectAnnotation, PointLabel, Points,
                       TraceSegment, VideoRef, WordTiming, frame_id, parse_frame_id)


def test_points_coerce_dtypes_and_select_by_label():
    pts = Points(xy=[[1, 2], [3, 4], [5, 6]], labels=[1, 0, -1], is_fg_candidate=[True, False, True])
    assert pts.xy.dtype == np.float32 and pts.labels.dtype == np.int8 and len(pts) == 3
    assert pts.foreground.xy.tolist() == [[1, 2]]
    assert pts.background.labels.tolist() == [0]
    assert pts.with_label(PointLabel.AMBIGUOUS).is_fg_candidate.tolist() == [True]
    assert not pts.xy.flags.writeable  # frozen really means frozen


@pytest.mark.parametrize("kwargs, message", [
    (dict(xy=[[1, 2, 3]], labels=[1]), "shape"),
    (dict(xy=[[1, 2]], labels=[1, 0]), "labels has 2"),
    (dict(xy=[[1, 2]], labels=[2]), "labels must be"),
    (dict(xy=[[np.nan, 2]], labels=[1]), "non-finite"),
    (dict(xy=[[1e300, 2]], labels=[1]), "non-finite"),  # finite in float64, infinite in float32
    (dict(xy=[[1, 2]], labels=[1.7]), "whole numbers"),  # not silently 1
    (dict(xy=[[1, 2]], labels=[np.nan]), "whole numbers"),
    (dict(xy=[[1, 2]], labels=np.array([257])), r"lie in \[-128, 127\]"),  # not silently 1 in int8
    (dict(xy=[["1", "2"]], labels=[1]), "must hold numbers"),
    (dict(xy=[[1, 2]], labels=[1], is_fg_candidate=[True, False]), "is_fg_candidate has 2"),
])
def test_points_validate(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Points(**kwargs)


def test_points_equality_and_outside():
    a = Points([[0, 0], [9.6, 4]], [1, 0])
    assert a == Points(np.array([[0, 0], [9.6, 4]]), np.array([1, 0]))
    assert a != Points([[0, 0], [9.6, 4]], [1, 1])
    # a point lies in pixel floor(x), floor(y): 9.6 is in pixel 9 of a 10-wide frame, 10.0 is not
    assert a.outside(10, 5).tolist() == [False, False]
    assert Points([[9.999, 4.999], [10, 0], [0, 5], [-0.001, 0]], [1, 1, 1, 1]).outside(10, 5).tolist() == [
        False, True, True, True]
    assert len(Points.empty()) == 0


def test_frame_ids():
    assert frame_id(7) == "000007" and parse_frame_id("000123") == 123
    for bad in ("12", "00001a", 5, "1234567"):
        with pytest.raises(ValueError):
            parse_frame_id(bad)
    with pytest.raises(ValueError):
        frame_id(-1)


def test_object_annotation_validates_frames_and_span():
    frame = FramePoints(3, Points([[1, 1]], [1]))
    obj = ObjectAnnotation("a" * 32, "vid", "dog", "Where is the dog?", "h", (frame,), noun_span=(13, 16))
    assert obj.points_on(3) == frame.points and obj.frame_indices == [3]
    with pytest.raises(KeyError):
        obj.points_on(4)
    with pytest.raises(ValueError, match="strictly increasing"):
        ObjectAnnotation("x", "vid", "dog", "q", "h", (frame, frame))
    with pytest.raises(ValueError, match="outside the question"):
        ObjectAnnotation("x", "vid", "dog", "q", "h", (frame,), noun_span=(0, 5))
    with pytest.raises(ValueError):
        FramePoints(-1, Points.empty())


def test_narrative_validation():
    words = (WordTiming("A", 0, 1, 0, 10), WordTiming("dog", 2, 5, 10, 20))
    segment = TraceSegment([[1.0, 2.0]], [5], [1])
    actor = ActorNarrative("Dog", "A dog", (0,), 0, 0, "", ((2, 5),), words, (segment,))
    Narrative(0, "d", "v", 0, ("k0", "k1"), (10, 10), (actor,))
    with pytest.raises(ValueError, match="outside the 1 keyframes"):
        Narrative(0, "d", "v", 0, ("k0",), (10, 10), (actor,))
    with pytest.raises(ValueError, match="does not match"):
        ActorNarrative("Dog", "A cat", (0,), 0, 0, "", (), words, ())
    with pytest.raises(ValueError, match="noun segment"):
        ActorNarrative("Dog", "A dog", (0,), 0, 0, "", ((2, 9),), words, ())
    with pytest.raises(ValueError, match="end_ms"):
        WordTiming("A", 0, 1, 10, 5)


def test_noun_object_text_and_source():
    noun = NounObject(0, "d", "v", 0, "Dog", "A dog", (2, 5), "spacy", (10, 10))
    assert noun.text == "dog"
    with pytest.raises(ValueError):
        NounObject(0, "d", "v", 0, "Dog", "A dog", (2, 5), "guess", (10, 10))


def test_video_ref_validation():
    VideoRef("v", num_frames=3, width=4, height=5)
    with pytest.raises(ValueError):
        VideoRef("v", num_frames=0)
