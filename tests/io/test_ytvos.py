import json

import numpy as np
import pytest
from PIL import Image

from vng.io.common import FormatError, ReadReport
from vng.io.ytvos import (YTVOSObject, read_ytvos_masks, read_ytvos_meta, write_ytvos_meta, write_ytvos_video,
                          ytvos_frame_paths)

META = {
    "0a1b2c3d4e": {"1": YTVOSObject("person", ("00000", "00005")), "2": YTVOSObject("dog", ("00005",))},
    "ffeeddccbb": {},
}


def raw_meta(**objects):
    return {"videos": {"v1": {"objects": {"1": {"category": "cat", "frames": ["00000"]}}},
                       "v2": {"objects": objects}}}


def test_meta_round_trip(tmp_path):
    path = tmp_path / "meta.json"
    write_ytvos_meta(path, META)
    assert read_ytvos_meta(path) == META
    assert json.loads(path.read_text())["videos"]["0a1b2c3d4e"]["objects"]["2"] == {"category": "dog",
                                                                                  "frames": ["00005"]}


@pytest.mark.parametrize("objects, field, message", [
    ({"1": {"frames": ["00000"]}}, "objects.1.category", "missing"),
    ({"1": {"category": "cat", "frames": "00000"}}, "objects.1.frames", "expected list"),
    ({"1": {"category": "cat", "frames": [5]}}, "objects.1.frames[0]", "expected a frame stem"),
    ({"300": {"category": "cat", "frames": []}}, "objects.300", "[1, 255]"),
    ({"x": {"category": "cat", "frames": []}}, "objects.x", "integer string"),
])
def test_bad_meta_is_located(tmp_path, objects, field, message):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(raw_meta(**objects)))
    with pytest.raises(FormatError) as info:
        read_ytvos_meta(path)
    text = str(info.value)
    assert str(path) in text and "record 'v2'" in text and f"field '{field}'" in text and message in text
    report = ReadReport()
    assert list(read_ytvos_meta(path, report=report)) == ["v1"]
    assert len(report) == 1 and report.skipped[0].location.record == "v2"


def test_malformed_and_missing_top_level(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text('{"videos": {')
    with pytest.raises(FormatError, match=r"meta.json:1: malformed JSON"):
        read_ytvos_meta(path)
    path.write_text('{"video": {}}')
    with pytest.raises(FormatError, match=r"meta.json: field 'videos': missing"):
        read_ytvos_meta(path)


def test_meta_writer_refuses_bad_ids_and_keeps_old_file(tmp_path):
    path = tmp_path / "meta.json"
    write_ytvos_meta(path, META)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"record 'bad': field 'objects.0'"):
        write_ytvos_meta(path, {**META, "bad": {"0": YTVOSObject("cat", ())}})
    assert path.read_bytes() == before
    with pytest.raises(TypeError):
        YTVOSObject("cat", (5,))


def test_video_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    names = ["00000", "00005", "00010"]
    frames = [rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in names]
    masks = {"00000": np.zeros((24, 32), np.uint8), "00010": np.zeros((24, 32), np.uint8)}
    masks["00000"][1:5, 1:5] = 1
    masks["00010"][10:20, 3:9] = 2
    write_ytvos_video(tmp_path, "train", "vid", iter(frames), masks, names)
    assert [p.name for p in ytvos_frame_paths(tmp_path, "train", "vid")] == [f"{n}.jpg" for n in names]
    back = read_ytvos_masks(tmp_path, "train", "vid")
    assert list(back) == ["00000", "00010"]
    for name in masks:
        np.testing.assert_array_equal(back[name], masks[name])


def test_video_writer_and_reader_errors(tmp_path):
    frames = [np.zeros((24, 32, 3), np.uint8)] * 2
    with pytest.raises(ValueError, match=r"masks for frames \['00009'\]"):
        write_ytvos_video(tmp_path, "train", "v", frames, {"00009": np.zeros((24, 32), np.uint8)}, ["00000", "00005"])
    with pytest.raises(ValueError, match=r"frame '00005': mask shape \(3, 3\)"):
        write_ytvos_video(tmp_path, "train", "v", frames, {"00005": np.zeros((3, 3), np.uint8)}, ["00000", "00005"])
    write_ytvos_video(tmp_path, "train", "w", frames, {}, ["00000", "00005"])
    folder = tmp_path / "train" / "Annotations" / "w"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((24, 32), np.uint8), mode="P").save(folder / "00000.png")
    Image.fromarray(np.zeros((12, 32), np.uint8), mode="P").save(folder / "00005.png")
    with pytest.raises(FormatError, match=r"video 'w' frame '00005': mask is 32x12, frame is 32x24") as info:
        read_ytvos_masks(tmp_path, "train", "w")
    assert "00005.png" in str(info.value)
    # masks that agree with each other but not with their frames would put the points in the wrong pixel grid
    for name in ("00000", "00005"):
        Image.fromarray(np.zeros((12, 16), np.uint8), mode="P").save(folder / f"{name}.png")
    with pytest.raises(FormatError, match=r"frame '00000': mask is 16x12, frame is 32x24"):
        read_ytvos_masks(tmp_path, "train", "w")
    for name in ("00000", "00005", "00009"):
        Image.fromarray(np.zeros((24, 32), np.uint8), mode="P").save(folder / f"{name}.png")
    with pytest.raises(FormatError, match="a mask without a frame"):
        read_ytvos_masks(tmp_path, "train", "w")
    with pytest.raises(FormatError, match="no such frame folder"):
        ytvos_frame_paths(tmp_path, "valid", "w")
