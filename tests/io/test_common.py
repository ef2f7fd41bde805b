"""Bytes and JSON the readers must not choke on: every fault is a located FormatError, and with a ReadReport a
fault of one JSONL line (a bad byte included) skips that line only."""

import json

import pytest

from vng.io.common import FormatError, Location, ReadReport, iter_jsonl, read_json, read_text, require
from vng.io.pointvos import read_pv_annotations

GOOD = {"a": 1}


def _lines(tmp_path, *lines: bytes):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("line, message", [
    (b'{"a": "caf\xe9"}', r"x.jsonl:2: not UTF-8: byte 0xe9 at column 11"),
    (b"[" * 5000 + b"]" * 5000, r"x.jsonl:2: JSON nested too deeply"),
    (b'{"a": 1, "a": 2}', r"x.jsonl:2: key 'a' appears twice"),
    (b'{"a": 1' + b"1" * 5000 + b"}", r"x.jsonl:2: unreadable JSON: .*digits"),
    (b'{"a": ', r"x.jsonl:2: malformed JSON"),
], ids=["not-utf8", "deep", "repeated-key", "huge-int", "malformed"])
def test_a_bad_line_is_located_and_skippable(tmp_path, line, message):
    path = _lines(tmp_path, json.dumps(GOOD).encode(), line, json.dumps(GOOD).encode())
    with pytest.raises(FormatError, match=message):
        list(iter_jsonl(path))
    report = ReadReport()
    assert [raw for _, raw in iter_jsonl(path, report)] == [GOOD, GOOD]  # the lines around it still read
    assert len(report) == 1 and str(report.skipped[0]).startswith(f"{path}:2")


def test_whole_file_json_faults_name_the_line(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'{\n"a": "ok",\n"b": "\xff"\n}')
    with pytest.raises(FormatError, match=r"x.json:3: not UTF-8: byte 0xff"):
        read_json(path)
    path.write_bytes(b'{"id": {"x": 1},\n "id": {"x": 2}}')  # plain json would keep only the second
    with pytest.raises(FormatError, match="key 'id' appears twice"):
        read_json(path)
    path.write_bytes("\ufeff{}".encode())  # a byte-order mark is not an error
    assert read_json(path) == {}
    with pytest.raises(FormatError, match="cannot read the file"):
        read_json(tmp_path)
    with pytest.raises(FormatError, match=r"list.txt:2: not UTF-8"):
        (tmp_path / "list.txt").write_bytes(b"bear\n\xc3(\n")
        read_text(tmp_path / "list.txt")


@pytest.mark.parametrize("value, message", [
    (float("nan"), "expected a finite number, got nan"),
    (float("inf"), "expected a finite number, got inf"),
    (10 ** 400, "expected a finite number, got an integer of 401 digits"),
    ("1.5", "expected number, got string"),
    (True, "expected number, got boolean"),
], ids=["nan", "inf", "huge", "string", "bool"])
def test_require_refuses_non_finite_and_mistyped_numbers(value, message):
    with pytest.raises(FormatError, match=f"f: record 'r': field 'p.x': {message}"):
        require({"x": value}, "x", float, Location("f", record="r"), prefix="p.")
    assert require({"x": 3}, "x", float, Location("f")) == 3.0


def test_nan_and_huge_numbers_in_the_json_text(tmp_path):
    # Python's json turns NaN, Infinity and 1e999 into floats; the readers refuse them in the field they sit in
    path = tmp_path / "a.json"
    record = {"question_hash": "", "question": "q", "object_name": "o", "video_name": "v",
              "annotated_points": [{"x": 1, "y": 2, "frame_id": "000000", "status": "ACCEPTED",
                                    "is_fg_candidate": True}]}
    path.write_text(json.dumps({"id": record}).replace('"x": 1', '"x": NaN'))
    with pytest.raises(FormatError, match=r"record 'id': field 'annotated_points\[0\].x': expected integer, got "
                                          "number"):
        read_pv_annotations(path)
    path.write_text(json.dumps({"id": record}).replace('"x": 1', '"x": 1e999'))
    with pytest.raises(FormatError, match=r"field 'annotated_points\[0\].x'"):
        read_pv_annotations(path)
