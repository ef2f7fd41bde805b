import json

import numpy as np
import pytest

from vng.io.common import FormatError, ReadReport
from vng.io.vidln import narrative_to_json, read_narratives, write_narratives


def test_read_converts_normalised_traces_to_pixels(vidln_files):
    path, frames = vidln_files
    (narrative,) = read_narratives(path, frames_dir=frames)
    assert narrative.frame_size == (64, 48)
    first = narrative.actor_narratives[0].traces[0]
    np.testing.assert_array_equal(first.xy, [[16, 24], [20, 24], [24, 27]])
    assert first.times_ms.tolist() == [1210, 1250, 1290] and first.keyframe_indices.tolist() == [0, 0, 0]


def test_round_trip_file_and_objects(vidln_files, tmp_path, vidln_record):
    path, frames = vidln_files
    narratives = read_narratives(path, frames_dir=frames)
    assert narrative_to_json(narratives[0]) == vidln_record
    out = tmp_path / "out.jsonl"
    write_narratives(out, narratives)
    assert read_narratives(out, frame_size=(64, 48)) == narratives
    assert json.loads(out.read_text()) == vidln_record


def test_frame_size_mapping_and_missing_size(vidln_files):
    path, _ = vidln_files
    assert read_narratives(path, frame_size={"vid0": (64, 48)})[0].frame_size == (64, 48)
    with pytest.raises(FormatError, match="no frame size given for video 'vid0'"):
        read_narratives(path, frame_size={"other": (1, 1)})


def _write(tmp_path, lines):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("mutate, field, message", [
    (lambda r: r.pop("video_id"), "'video_id'", "missing"),
    (lambda r: r.update(vidln_id="7"), "'vidln_id'", "expected integer"),
    (lambda r: r["actor_narratives"][0]["traces"][1][0].update(x=1.5), "traces[1][0].x", "outside the frame"),
    (lambda r: r["actor_narratives"][0]["traces"][0][2].update(kf_idx=3), "traces[0][2].kf_idx", "outside the 3"),
    (lambda r: r["actor_narratives"][0]["time_alignment"][2].update(referenced_word="cat"),
     "time_alignment[2].referenced_word", "is not caption"),
    (lambda r: r["actor_narratives"][1]["noun_segments"].append([30, 99]), "noun_segments[2]", "outside the caption"),
    (lambda r: r["actor_narratives"][0].update(keyframe_selection_indices=[5]), "keyframe_selection_indices[0]",
     "not a keyframe index"),
    (lambda r: r["actor_narratives"][0]["traces"][0][0].pop("time_ms_since_epoch"),
     "traces[0][0].time_ms_since_epoch", "missing"),
])
def test_bad_input_names_file_line_record_and_field(tmp_path, vidln_record, mutate, field, message):
    good = json.dumps({**vidln_record, "vidln_id": 1})
    mutate(vidln_record)
    path = _write(tmp_path, [good, json.dumps(vidln_record)])
    with pytest.raises(FormatError) as info:
        read_narratives(path, frame_size=(64, 48))
    text = str(info.value)
    assert str(path) in text and field in text and message in text
    assert ":2" in text or field == "'vidln_id'"  # the second line is the bad one


def test_malformed_json_line_and_skip_mode(tmp_path, vidln_record):
    path = _write(tmp_path, [json.dumps(vidln_record), "{not json", json.dumps({"vidln_id": 9})])
    with pytest.raises(FormatError, match=r"bad.jsonl:2: malformed JSON"):
        read_narratives(path, frame_size=(64, 48))
    report = ReadReport()
    narratives = read_narratives(path, frame_size=(64, 48), report=report)
    assert [n.vidln_id for n in narratives] == [7]
    assert len(report) == 2 and "bad.jsonl:3: record 9" in str(report.skipped[1])


def test_a_narrative_given_twice_is_an_error_not_two_narratives(tmp_path, vidln_record):
    path = _write(tmp_path, [json.dumps(vidln_record)] * 2)
    with pytest.raises(FormatError, match=r"bad.jsonl:2: record 7: field 'vidln_id': vidln_id 7 was already given on "
                                          "line 1"):
        read_narratives(path, frame_size=(64, 48))
    report = ReadReport()
    assert len(read_narratives(path, frame_size=(64, 48), report=report)) == 1 and len(report) == 1


def test_missing_keyframe_images(tmp_path, vidln_files):
    path, _ = vidln_files
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="no keyframe image of video 'vid0'"):
        read_narratives(path, frames_dir=empty)


def test_writer_leaves_existing_file_intact_on_failure(tmp_path, vidln_files):
    path, frames = vidln_files
    narratives = read_narratives(path, frames_dir=frames)
    out = tmp_path / "out.jsonl"
    write_narratives(out, narratives)
    before = out.read_bytes()

    def exploding():
        yield narratives[0]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_narratives(out, exploding())
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []
