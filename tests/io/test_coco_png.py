import json

import numpy as np
import pytest
from PIL import Image

from vng.io.coco_png import (PanopticImage, PanopticSegment, check_png_narratives, decode_panoptic, encode_panoptic,
                             noun_mask, read_panoptic_annotations, read_panoptic_png, read_png_narratives,
                             write_panoptic_annotations, write_panoptic_png, write_png_narratives)
from vng.io.common import FormatError, ReadReport
from vng.types import PNGNarrative, PNGSegment

CATEGORIES = [{"id": 1, "name": "person", "isthing": 1}, {"id": 184, "name": "tree-merged", "isthing": 0}]


def make_narratives():
    first = PNGNarrative(226461, "In this picture we can see two bears on a tree.", (
        PNGSegment("in this", False, ()),
        PNGSegment("two bears", True, (1648163, 1648164), plural=True),
        PNGSegment("on a", False, ()),
        PNGSegment("tree", True, (3165766,), plural=False),
    ), annotator_id=36)
    second = PNGNarrative(9, "A man.", (PNGSegment("A man", True, (5,)), PNGSegment(".", False, ())))
    return [first, second]


def make_panoptic():
    segments = (PanopticSegment(1648163, 1, 0, 120, (1, 2, 10, 12), True),
                PanopticSegment(1648164, 1, 0, 80, (20, 2, 8, 10), True),
                PanopticSegment(3165766, 184, 0, 900.0, (0, 0, 64, 30), False))
    return {226461: PanopticImage(226461, "000000226461.png", "000000226461.jpg", 64, 48, segments),
            9: PanopticImage(9, "000000000009.png", "000000000009.jpg", 32, 32,
                             (PanopticSegment(5, 1, 1, 4, (0, 0, 2, 2), True),))}


def test_decode_panoptic_exact_ids():
    rgb = np.array([[[1, 2, 3], [0, 0, 0]], [[255, 255, 255], [7, 0, 1]]], np.uint8)
    ids = decode_panoptic(rgb)
    assert ids.dtype == np.int64
    assert ids.tolist() == [[1 + 512 + 196608, 0], [16777215, 7 + 65536]]
    np.testing.assert_array_equal(encode_panoptic(ids), rgb)
    with pytest.raises(ValueError, match=r"\[0, 256\*\*3\)"):
        encode_panoptic(np.array([[256 ** 3]]))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        decode_panoptic(np.zeros((2, 2), np.uint8))


def test_panoptic_png_round_trip_and_errors(tmp_path):
    ids = np.array([[0, 1648163, 1648164], [3165766, 3165766, 0]])
    path = tmp_path / "p.png"
    write_panoptic_png(path, ids)
    with Image.open(path) as image:
        assert image.mode == "RGB"
    np.testing.assert_array_equal(read_panoptic_png(path), ids)
    Image.fromarray(np.zeros((2, 2), np.uint8), mode="L").save(tmp_path / "grey.png")
    with pytest.raises(FormatError, match="grey.png: expected an RGB panoptic PNG, got mode L"):
        read_panoptic_png(tmp_path / "grey.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(FormatError, match="junk.png: cannot read panoptic image"):
        read_panoptic_png(tmp_path / "junk.png")


def test_noun_mask_union_and_absent_ids():
    ids = np.array([[0, 10, 11], [12, 10, 0]])
    assert noun_mask(ids, [10]).tolist() == [[False, True, False], [False, True, False]]
    assert noun_mask(ids, (10, 12)).tolist() == [[False, True, False], [True, True, False]]
    with pytest.raises(ValueError, match=r"segment ids \[99\] do not occur"):
        noun_mask(ids, [10, 99])
    with pytest.raises(ValueError, match="without segment ids"):
        noun_mask(ids, [])


def test_narratives_round_trip_in_release_types(tmp_path):
    narratives = make_narratives()
    path = tmp_path / "png_coco_val2017.json"
    write_png_narratives(path, narratives)
    assert read_png_narratives(path) == narratives
    raw = json.loads(path.read_text())
    assert raw[0]["image_id"] == "226461" and raw[0]["annotator_id"] == 36
    assert raw[0]["segments"][1] == {"utterance": "two bears", "segment_ids": ["1648163", "1648164"],
                                     "noun": True, "plural": True}
    assert "plural" not in raw[1]["segments"][0] and "annotator_id" not in raw[1]
    raw[1]["image_id"], raw[1]["segments"][0]["segment_ids"] = 9, [5]  # ints are read too
    path.write_text(json.dumps(raw))
    assert read_png_narratives(path) == narratives
    assert [n.utterance for n in narratives[0].nouns] == ["two bears", "tree"]


def narrative_file(path, change):
    raw = [{"image_id": "9", "caption": "A man.", "segments": [{"utterance": "A man", "segment_ids": ["5"],
                                                                 "noun": True}]} for _ in range(2)]
    change(raw[1])
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize("change, field, message", [
    (lambda r: r.pop("caption"), "caption", "missing"),
    (lambda r: r["segments"][0].update(noun="yes"), "segments[0].noun", "expected boolean"),
    (lambda r: r["segments"][0].update(segment_ids=["5a"]), "segments[0].segment_ids[0]", "non-negative id"),
    (lambda r: r.update(image_id=-3), "image_id", "non-negative id"),
    (lambda r: r["segments"][0].update(segment_ids=["6"]), "segments[0].segment_ids[0]",
     "segment id 6 is not among image 9's segments_info"),
    (lambda r: r.update(image_id="10"), "image_id", "unknown image_id 10"),
])
def test_bad_narratives_are_located(tmp_path, change, field, message):
    path = tmp_path / "png_coco_val2017.json"
    narrative_file(path, change)
    with pytest.raises(FormatError) as info:
        read_png_narratives(path, panoptic=make_panoptic())
    text = str(info.value)
    assert str(path) in text and "record 1" in text and f"field '{field}'" in text and message in text
    report = ReadReport()
    assert len(read_png_narratives(path, panoptic=make_panoptic(), report=report)) == 1 and len(report) == 1


def test_malformed_narratives_file(tmp_path):
    path = tmp_path / "png.json"
    path.write_text('[{"image_id": ')
    with pytest.raises(FormatError, match="png.json:1: malformed JSON"):
        read_png_narratives(path)
    path.write_text('{"image_id": 1}')
    with pytest.raises(FormatError, match="png.json: expected a JSON list"):
        read_png_narratives(path)


def test_check_png_narratives(tmp_path):
    narratives = make_narratives()
    panoptic = make_panoptic()
    assert check_png_narratives(narratives, panoptic) == narratives
    bad = PNGNarrative(9, "A dog.", (PNGSegment("A dog", True, (77,)),))
    with pytest.raises(FormatError, match=r"png.json: record 2: field 'segments\[0\].segment_ids\[0\]': segment id 77"):
        check_png_narratives(narratives + [bad], panoptic, source="png.json")
    report = ReadReport()
    assert check_png_narratives([bad] + narratives, panoptic, report=report) == narratives
    assert report.skipped[0].location.record == 0


def test_panoptic_annotations_round_trip(tmp_path):
    panoptic = make_panoptic()
    path = tmp_path / "panoptic_val2017.json"
    write_panoptic_annotations(path, panoptic.values(), categories=CATEGORIES)
    assert read_panoptic_annotations(path) == panoptic
    raw = json.loads(path.read_text())
    assert raw["images"][0] == {"id": 226461, "file_name": "000000226461.jpg", "width": 64, "height": 48}
    assert raw["annotations"][1]["segments_info"][0] == {"id": 5, "category_id": 1, "iscrowd": 1, "area": 4,
                                                         "bbox": [0, 0, 2, 2]}
    assert panoptic[226461].segment_ids == (1648163, 1648164, 3165766)


def panoptic_file(path, change):
    write_panoptic_annotations(path, make_panoptic().values(), categories=CATEGORIES)
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize("change, field, message", [
    (lambda r: r["annotations"][1]["segments_info"][0].update(category_id=2), "segments_info[0].category_id",
     "unknown category id 2"),
    (lambda r: r["annotations"][1].update(image_id=8), "image_id", "unknown image id 8"),
    (lambda r: r["annotations"][1]["segments_info"][0].update(bbox=[0, 0, 2]), "segments_info[0].bbox",
     "expected [x, y, width, height]"),
    (lambda r: r["annotations"][1]["segments_info"][0].update(id=256 ** 3), "segments_info[0].id",
     "does not fit an RGB PNG"),
    (lambda r: r["annotations"][1].pop("file_name"), "file_name", "missing"),
    (lambda r: r["annotations"][1].update(image_id=226461), "image_id", "a second annotation of image 226461"),
])
def test_bad_panoptic_annotations_are_located(tmp_path, change, field, message):
    path = tmp_path / "panoptic_val2017.json"
    panoptic_file(path, change)
    with pytest.raises(FormatError) as info:
        read_panoptic_annotations(path)
    text = str(info.value)
    assert str(path) in text and "record 'annotations[1]'" in text and f"field '{field}'" in text
    assert message in text
    report = ReadReport()
    assert list(read_panoptic_annotations(path, report=report)) == [226461] and len(report) == 1


def test_writer_failures_keep_old_files(tmp_path):
    path = tmp_path / "png.json"
    write_png_narratives(path, make_narratives())
    before = path.read_bytes()

    def failing():
        yield make_narratives()[0]
        raise RuntimeError("generator broke mid-way")

    with pytest.raises(RuntimeError):
        write_png_narratives(path, failing())
    assert path.read_bytes() == before
    panoptic_path = tmp_path / "panoptic.json"
    write_panoptic_annotations(panoptic_path, make_panoptic().values(), categories=CATEGORIES)
    before = panoptic_path.read_bytes()
    with pytest.raises(ValueError, match="category 184 is unknown or disagrees"):
        write_panoptic_annotations(panoptic_path, make_panoptic().values(), categories=CATEGORIES[:1])
    with pytest.raises(TypeError):  # a category that JSON cannot hold fails inside the atomic write
        write_panoptic_annotations(panoptic_path, make_panoptic().values(),
                                   categories=[*CATEGORIES, {"id": 3, "isthing": 0, "name": object()}])
    assert panoptic_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panoptic.json", "png.json"]
