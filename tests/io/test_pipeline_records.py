"""The pipeline's stage files (vng.io.pipeline) and Oops-QA questions (vng.io.oops_qa): round trips and located
errors on bad input."""

import json

import numpy as np
import pytest

from vng.io.common import FormatError, ReadReport
from vng.io.masks import rle_encode
from vng.io.oops_qa import read_location_questions
from vng.io.pipeline import (read_probabilities, read_trace_masks, read_traced_objects, traced_object_record,
                             write_probabilities, write_trace_masks, write_traced_objects)
from vng.types import ObjectProbabilities, TracedObject, TraceMask


def traced(object_id="0" * 31 + "a", **changes) -> TracedObject:
    trace = np.zeros((48, 64), bool)
    trace[10, 5:20] = True
    fields = dict(object_id=object_id, source="narratives", video_name="clip one", video_path="videos/clip one.mp4",
                  dataset="Oops", split="train", num_frames=12, frame_size=(64, 48), object_name="cake",
                  question="A woman holds a cake; the cake falls.", question_hash="", noun_span=(16, 20),
                  mentions=((16, 20), (26, 30)), actor_name="Woman", vidln_id=4, keyframe_name="img_0000006",
                  keyframe=5, trace=rle_encode(trace), trace_area=15)
    return TracedObject(**{**fields, **changes})


def test_traced_objects_round_trip(tmp_path):
    objects = [traced(), traced("b" * 32, source="oops-qa", noun_span=None, mentions=(), actor_name="",
                                vidln_id=None, question_hash="h1")]
    write_traced_objects(tmp_path / "objects.jsonl", objects)
    assert read_traced_objects(tmp_path / "objects.jsonl") == objects
    assert traced_object_record(objects[0])["keyframe_id"] == "000005"


@pytest.mark.parametrize("change, field, message", [
    (lambda r: r.update(keyframe_id="5"), "keyframe_id", "6-digit"),
    (lambda r: r.update(keyframe_id="000012"), None, "outside the 12 frames"),
    (lambda r: r.update(mentions=[[16]]), "mentions[0]", "pair of integers"),
    (lambda r: r.update(trace={"size": [48, 64]}), "trace", "'size' and 'counts'"),
    (lambda r: r.update(trace=rle_encode(np.ones((4, 4), bool))), None, "the frame is 64x48"),
    (lambda r: r.update(object_id="XYZ"), None, "32 lower-case hex"),
    (lambda r: r.pop("video_path"), "video_path", "missing"),
])
def test_bad_traced_objects_are_located(tmp_path, change, field, message):
    record = traced_object_record(traced())
    change(record)
    path = tmp_path / "objects.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(FormatError, match=message) as error:
        read_traced_objects(path)
    assert error.value.field == field and error.value.location.line == 1
    report = ReadReport()
    assert read_traced_objects(path, report=report) == [] and len(report) == 1


def test_trace_masks_round_trip_and_refuse_paths_outside(tmp_path):
    masks = [TraceMask("a" * 32, "trace_masks/a.png", 0.91234, 120), TraceMask("b" * 32, "trace_masks/b.png", None, 0)]
    write_trace_masks(tmp_path / "masks.jsonl", masks)
    assert read_trace_masks(tmp_path / "masks.jsonl") == masks
    (tmp_path / "bad.jsonl").write_text(json.dumps({"object_id": "a", "mask": "../x.png", "score": 1, "area": 3}))
    with pytest.raises(FormatError, match="inside the video.s work folder"):
        read_trace_masks(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match="finite"):
        TraceMask("a", "trace_masks/a.png", float("nan"), 3)


def test_probabilities_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    objects = [ObjectProbabilities(name * 32, (0, 4, 9), rng.integers(0, 256, (3, 48, 64), dtype=np.uint8))
               for name in "ab"]
    write_probabilities(tmp_path / "p.npz", objects)
    back = read_probabilities(tmp_path / "p.npz")
    assert back == objects
    np.testing.assert_allclose(back[0].probability(4), objects[0].maps[1] / 255, rtol=1e-6)
    write_probabilities(tmp_path / "none.npz", [])
    assert read_probabilities(tmp_path / "none.npz") == []
    with pytest.raises(ValueError, match="share their frames"):
        write_probabilities(tmp_path / "x.npz", [objects[0], ObjectProbabilities("c", (1,), objects[0].maps[:1])])
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(FormatError, match="cannot read"):
        read_probabilities(tmp_path / "broken.npz")
    with pytest.raises(ValueError, match="strictly increasing"):
        ObjectProbabilities("a", (3, 3), objects[0].maps[:2])


def test_location_questions_round_trip_and_located_errors(tmp_path):
    trace = np.zeros((48, 64), bool)
    trace[5:9, 5:9] = True
    good = {"question_hash": "h1", "question": "Who throws the egg?", "trace_frame": 3, "trace": rle_encode(trace)}
    path = tmp_path / "questions.json"
    path.write_text(json.dumps({"train/clip": [good, {**good, "question_hash": "h2", "trace_frame": "000007",
                                                      "object_name": "man"}]}))
    questions = read_location_questions(path)
    assert [(q.video_name, q.question_hash, q.trace_frame, q.object_name) for q in questions] == [
        ("train/clip", "h1", 3, ""), ("train/clip", "h2", "000007", "man")]
    path.write_text(json.dumps({"clip": [{**good, "trace_frame": True}], "other": [{**good, "trace": {"size": [4]}}]}))
    with pytest.raises(FormatError) as error:
        read_location_questions(path)
    assert error.value.field == "clip[0].trace_frame" and error.value.location.record == "h1"
    report = ReadReport()
    assert read_location_questions(path, report=report) == [] and len(report) == 2
    path.write_text("[]")
    with pytest.raises(FormatError, match="expected a JSON object"):
        read_location_questions(path)
