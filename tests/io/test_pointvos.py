import json

import numpy as np
import pytest

from vng.io.common import FormatError, ReadReport
from vng.io.pointvos import pv_video_path, read_pv_annotations, write_pv_annotations
from vng.types import FramePoints, ObjectAnnotation, Points, VideoRef

OBJECT_ID = "0123456789abcdef0123456789abcdef"


def make_objects():
    frames = (
        FramePoints(0, Points([[1, 2], [30, 4], [5, 6]], [1, 0, -1], [True, False, True])),
        FramePoints(12, Points([[7, 8]], [0], [True])),
    )
    first = ObjectAnnotation(OBJECT_ID, "video_a", "baby girl", "Who throws the egg at the man?", "qh1", frames)
    second = ObjectAnnotation("f" * 32, "video_b", "egg", "The baby throws an egg.", "", (frames[1],),
                              noun_span=(19, 22))
    return [first, second]


def record(**points):
    point = {"x": 3, "y": 4, "frame_id": "000001", "status": "ACCEPTED", "is_fg_candidate": True, **points}
    return {"question_hash": "h", "question": "q?", "object_name": "dog", "video_name": "v",
            "annotated_points": [point]}


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_round_trip(tmp_path, suffix):
    objects = make_objects()
    path = tmp_path / f"split{suffix}"
    write_pv_annotations(path, objects)
    assert read_pv_annotations(path) == objects
    text = path.read_text()
    write_pv_annotations(path, read_pv_annotations(path))
    assert path.read_text() == text


def test_release_layout_and_statuses(tmp_path):
    path = tmp_path / "train.json"
    write_pv_annotations(path, make_objects()[:1])
    data = json.loads(path.read_text())
    points = data[OBJECT_ID]["annotated_points"]
    assert [p["status"] for p in points] == ["ACCEPTED", "REJECTED", "AMBIGUOUS", "REJECTED"]
    assert [p["frame_id"] for p in points] == ["000000"] * 3 + ["000012"]
    assert points[0] == {"x": 1, "y": 2, "frame_id": "000000", "status": "ACCEPTED", "is_fg_candidate": True}
    assert "noun_span" not in data[OBJECT_ID]
    assert pv_video_path("/r", "Oops", "val", "v1").as_posix() == "/r/Oops/videos/val/v1.mp4"


def test_points_grouped_by_frame_in_any_order(tmp_path):
    raw = record()
    raw["annotated_points"] += [dict(raw["annotated_points"][0], frame_id="000000", x=9),
                                dict(raw["annotated_points"][0], x=5, status="REJECTED")]
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"id1": raw}))
    (obj,) = read_pv_annotations(path)
    assert obj.frame_indices == [0, 1]
    assert obj.points_on(1).xy.tolist() == [[3, 4], [5, 4]] and obj.points_on(1).labels.tolist() == [1, 0]


def test_null_video_records_are_skipped(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"id1": {**record(), "video_name": None}, "id2": record()}))
    assert [o.object_id for o in read_pv_annotations(path)] == ["id2"]
    assert len(read_pv_annotations(path, skip_missing_video=False)) == 2


@pytest.mark.parametrize("point, field, message", [
    (dict(status="MAYBE"), "annotated_points[0].status", "unknown status 'MAYBE'"),
    (dict(frame_id="12"), "annotated_points[0].frame_id", "6-digit"),
    (dict(x=-1), "annotated_points[0].x", "outside"),
    (dict(x=2.5), "annotated_points[0].x", "expected integer"),
    (dict(is_fg_candidate="yes"), "annotated_points[0].is_fg_candidate", "expected boolean"),
])
def test_bad_points_are_located(tmp_path, point, field, message):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"id1": record(), "id2": record(**point)}))
    with pytest.raises(FormatError) as info:
        read_pv_annotations(path)
    assert str(path) in str(info.value) and "record 'id2'" in str(info.value)
    assert field in str(info.value) and message in str(info.value)


def test_points_checked_against_known_videos(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"id1": record(x=40)}) + "\n")
    with pytest.raises(FormatError, match=r"a.jsonl:1: record 'id1': field 'annotated_points\[0\].x': point \(40, 4\) "
                                          r"is outside the 32x24 frame"):
        read_pv_annotations(path, videos={"v": VideoRef("v", num_frames=5, width=32, height=24)})
    path.write_text(json.dumps({"id1": record(frame_id="000005")}) + "\n")
    with pytest.raises(FormatError, match="frame 000005 does not exist: video 'v' has 5 frames"):
        read_pv_annotations(path, videos={"v": VideoRef("v", num_frames=5, width=32, height=24)})
    with pytest.raises(FormatError, match="not among the known videos"):
        read_pv_annotations(path, videos={})


def test_skip_mode_reports_bad_records_and_lines(tmp_path):
    path = tmp_path / "k.jsonl"
    path.write_text("\n".join([json.dumps({"id1": record()}), "[1, 2", json.dumps({"a": record(), "b": record()}),
                               json.dumps({"id4": record(status="?")})]) + "\n")
    report = ReadReport()
    assert [o.object_id for o in read_pv_annotations(path, report=report)] == ["id1"]
    assert [e.location.line for e in report.skipped] == [2, 3, 4]
    assert "exactly one" in str(report.skipped[1])


def test_malformed_json_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"id1": {"question": }')
    with pytest.raises(FormatError, match=r"a.json:1: malformed JSON"):
        read_pv_annotations(path)


def test_writer_refuses_duplicates_and_keeps_old_file(tmp_path):
    path = tmp_path / "a.json"
    objects = make_objects()
    write_pv_annotations(path, objects)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="duplicate object ids"):
        write_pv_annotations(path, objects + objects[:1])
    assert path.read_bytes() == before


def test_float_coordinates_are_written_as_the_pixel_they_lie_in(tmp_path):
    # pixel floor(x), floor(y): 2.6 lies in pixel 2; rounding would move it to pixel 3, outside a 3-pixel-high frame
    obj = ObjectAnnotation("id", "v", "dog", "q", "", (FramePoints(0, Points([[1.4, 2.6]], [1])),))
    path = tmp_path / "a.json"
    write_pv_annotations(path, [obj])
    (back,) = read_pv_annotations(path)
    np.testing.assert_array_equal(back.frames[0].points.xy, [[1, 2]])
    assert back.frames[0].points.is_fg_candidate.tolist() == [True]
