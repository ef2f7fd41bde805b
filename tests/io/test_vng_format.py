import copy
import json

import numpy as np
import pytest

from vng.io.common import FormatError, ReadReport
from vng.io.masks import rle_encode
from vng.io.vng_format import (expression_masks, frame_number, merge_tracks, read_extra_masks, read_meta_expressions,
                               read_vis_annotations, write_extra_masks, write_meta_expressions,
                               write_vis_annotations)
from vng.types import MaskTrack, VISVideo, VNGActor, VNGExpression, VNGVideo

H, W = 6, 8


def box_mask(top, left, bottom, right):
    mask = np.zeros((H, W), bool)
    mask[top:bottom, left:right] = True
    return mask


def make_meta():
    actors = (VNGActor(0, "Man", "A man in a red coat opens the door."), VNGActor(1, "background", "A grey wall."))
    expressions = (VNGExpression("0", 0, 0, 5, 101), VNGExpression("1", 0, 26, 34, 202),
                   VNGExpression("2", 1, 0, 11, 303))
    return {"5d24e4ea": VNGVideo("5d24e4ea", ("img_0000001", "img_0000002", "img_0000003"), actors, expressions)}


RAW_META = {"videos": {"v": {
    "frames": ["0", "1"],
    "actor_narratives": [{"actor_idx": 0, "actor_name": "Girl", "description": "A girl holds a cat."}],
    "expressions": {"0": {"narrative_actor_idx": 0, "noun_phrase_start_idx": 0, "noun_phrase_end_idx": 6,
                          "obj_id": 7}},
}}}


def test_meta_round_trip_and_noun_text(tmp_path):
    videos = make_meta()
    path = tmp_path / "meta_expressions.json"
    write_meta_expressions(path, videos)
    back = read_meta_expressions(path)
    assert back == videos
    video = back["5d24e4ea"]
    assert [video.noun_text(e) for e in video.expressions] == ["A man", "the door", "A grey wall"]
    assert video.actor(video.expressions[2]).actor_name == "background"
    raw = json.loads(path.read_text())["videos"]["5d24e4ea"]
    assert raw["expressions"]["1"] == {"narrative_actor_idx": 0, "noun_phrase_start_idx": 26,
                                       "noun_phrase_end_idx": 34, "obj_id": 202}
    assert raw["actor_narratives"][1] == {"actor_idx": 1, "actor_name": "background", "description": "A grey wall."}


def edited(path, change):
    data = copy.deepcopy(RAW_META)
    data["videos"]["good"] = copy.deepcopy(data["videos"]["v"])
    change(data["videos"]["v"])
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("change, field, message", [
    (lambda v: v.pop("frames"), "frames", "missing"),
    (lambda v: v["frames"].append(3), "frames[2]", "expected a frame stem"),
    (lambda v: v["expressions"]["0"].update(obj_id="7"), "expressions.0.obj_id", "expected integer"),
    (lambda v: v["expressions"]["0"].update(noun_phrase_end_idx=99), "expressions.0.noun_phrase_end_idx",
     "outside the description"),
    (lambda v: v["expressions"]["0"].update(narrative_actor_idx=1), "expressions.0.narrative_actor_idx",
     "actor 1 does not exist"),
    (lambda v: v["actor_narratives"][0].update(actor_idx=2), "actor_narratives[0].actor_idx", "differs"),
    (lambda v: v["expressions"]["0"].update(obj_id=8), "expressions.0.obj_id", "unknown obj_id 8"),
])
def test_bad_meta_is_located(tmp_path, change, field, message):
    path = tmp_path / "meta_expressions.json"
    edited(path, change)
    tracks = {7: MaskTrack(7, 1, "v", H, W, (None, None))}
    with pytest.raises(FormatError) as info:
        read_meta_expressions(path, tracks=tracks)
    text = str(info.value)
    assert str(path) in text and "record 'v'" in text and f"field '{field}'" in text and message in text
    report = ReadReport()
    assert list(read_meta_expressions(path, tracks=tracks, report=report)) == ["good"]
    assert len(report) == 1


def test_meta_malformed_and_writer_refusal(tmp_path):
    path = tmp_path / "meta_expressions.json"
    path.write_text('{"videos": [')
    with pytest.raises(FormatError, match="meta_expressions.json:1: malformed JSON"):
        read_meta_expressions(path)
    write_meta_expressions(path, make_meta())
    before = path.read_bytes()
    with pytest.raises(ValueError, match="differs from the video's name"):
        write_meta_expressions(path, {"other": make_meta()["5d24e4ea"]})
    assert path.read_bytes() == before


def test_vng_video_validation():
    actor = VNGActor(0, "Man", "A man.")
    with pytest.raises(ValueError, match="actor_index 3 does not exist"):
        VNGVideo("v", (), (actor,), (VNGExpression("0", 3, 0, 1, 1),))
    with pytest.raises(ValueError, match="outside the description"):
        VNGVideo("v", (), (actor,), (VNGExpression("0", 0, 2, 9, 1),))
    with pytest.raises(ValueError, match="empty noun span"):
        VNGExpression("0", 0, 2, 2, 1)
    with pytest.raises(ValueError, match="actor at position 0 has actor_index 1"):
        VNGVideo("v", (), (VNGActor(1, "Man", "A man."),), ())


# --- mask files -----------------------------------------------------------------------------------------------------

def dense_fixture():
    """An OVIS-like video (dense masks, one per file name) with two tracks."""
    video = VISVideo(1, W, H, 3, ("5d24e4ea/img_0000001.jpg", "5d24e4ea/img_0000002.jpg", "5d24e4ea/img_0000003.jpg"))
    masks = [box_mask(0, 0, 2, 2), None, box_mask(1, 2, 5, 7)]
    first = MaskTrack(101, 1, "5d24e4ea", H, W, tuple(None if m is None else rle_encode(m) for m in masks))
    second = MaskTrack(202, 1, "5d24e4ea", H, W, (None, rle_encode(box_mask(3, 3, 4, 4)), None))
    return [video], {101: first, 202: second}, masks


def sparse_fixture():
    """A UVO-like video: 5 frames, annotated on frames 0 and 3 only (file names carry the frame numbers)."""
    video = VISVideo(9, W, H, 5, ("yt_abc/0.png", "yt_abc/3.png"), ytid="yt_abc")
    track = MaskTrack(303, 9, "yt_abc", H, W, (rle_encode(box_mask(0, 0, 3, 3)), None, None,
                                                rle_encode(box_mask(2, 2, 6, 8)), None))
    return [video], {303: track}


def test_extra_masks_round_trip_dense(tmp_path):
    videos, tracks, masks = dense_fixture()
    path = tmp_path / "extra_masks.json"
    write_extra_masks(path, videos, tracks, info={"description": "toy"})
    assert read_extra_masks(path) == (videos, tracks)
    raw = json.loads(path.read_text())
    assert set(raw) == {"info", "videos", "annotations"}
    assert set(raw["annotations"][0]) == {"id", "video_id", "height", "width", "video_name", "segmentations"}
    decoded = expression_masks(tracks[101])
    assert decoded[1] is None
    for got, expected in zip(decoded, masks):
        if expected is not None:
            assert got.dtype == bool and np.array_equal(got, expected)


def test_uvo_sparse_masks_are_placed_by_frame_number(tmp_path):
    videos, tracks = sparse_fixture()
    path = tmp_path / "extra_masks.json"
    write_extra_masks(path, videos, tracks)
    raw = json.loads(path.read_text())
    assert len(raw["annotations"][0]["segmentations"]) == 2 and raw["videos"][0]["ytid"] == "yt_abc"
    assert read_extra_masks(path) == (videos, tracks)
    _, padded = read_extra_masks(path, frame_counts={"yt_abc": 7})
    assert len(padded[303].segmentations) == 7 and padded[303].annotated_frames == [0, 3]
    with pytest.raises(FormatError, match="beyond the 3 frames given"):
        read_extra_masks(path, frame_counts={"yt_abc": 3})
    assert frame_number("abc/img_0000012.jpg") == 12 and frame_number("yt/30.png") == 30


def test_uvo_writer_refuses_to_lose_masks(tmp_path):
    videos, tracks = sparse_fixture()
    track = tracks[303]
    moved = MaskTrack(303, 9, "yt_abc", H, W, (None, track.segmentations[0]) + track.segmentations[2:])
    with pytest.raises(ValueError, match=r"masks on frames \[1\] are not in video 9's file_names"):
        write_extra_masks(tmp_path / "x.json", videos, {303: moved})
    assert not (tmp_path / "x.json").exists()


def test_original_ovis_file_with_uncompressed_rle(tmp_path):
    mask = box_mask(1, 2, 4, 5)
    counts, value, run = [], False, 0
    for pixel in mask.flatten(order="F"):  # COCO RLE runs go down the columns, starting with a 0-run
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    data = {
        "info": {}, "categories": [{"id": 1, "name": "Person"}],
        "videos": [{"id": 4, "width": W, "height": H, "length": 2,
                    "file_names": ["2fb5a55b/img_0000001.jpg", "2fb5a55b/img_0000002.jpg"]}],
        "annotations": [{"id": 11, "video_id": 4, "category_id": 1, "iscrowd": 0, "areas": [9, None],
                         "bboxes": [[2, 1, 3, 3], None],
                         "segmentations": [{"size": [H, W], "counts": counts}, None]}],
    }
    path = tmp_path / "annotations_train.json"
    path.write_text(json.dumps(data))
    videos, tracks = read_vis_annotations(path)
    assert videos[0].file_names[1] == "2fb5a55b/img_0000002.jpg"
    track = tracks[11]
    assert (track.video_name, track.height, track.width) == ("2fb5a55b", H, W)
    decoded = expression_masks(track)
    assert np.array_equal(decoded[0], mask) and decoded[1] is None


def test_vis_annotations_round_trip(tmp_path):
    videos, tracks, _ = dense_fixture()
    path = tmp_path / "annotations_train.json"
    write_vis_annotations(path, videos, tracks, categories=[{"id": 3, "name": "Dog"}])
    assert read_vis_annotations(path) == (videos, tracks)
    annotation = json.loads(path.read_text())["annotations"][0]
    assert annotation["category_id"] == 3 and annotation["areas"] == [4, None, 20]
    assert annotation["bboxes"] == [[0, 0, 2, 2], None, [2, 1, 5, 4]]
    sparse_videos, sparse_tracks = sparse_fixture()
    write_vis_annotations(path, sparse_videos, sparse_tracks)
    assert read_vis_annotations(path) == (sparse_videos, sparse_tracks)  # UVO: named by ytid, padded back


def vis_file(path, **annotation):
    videos, tracks, _ = dense_fixture()
    write_extra_masks(path, videos, tracks)
    data = json.loads(path.read_text())
    data["annotations"][1].update(annotation)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("annotation, field, message", [
    (dict(video_id=5), "video_id", "unknown video id 5"),
    (dict(id="202"), "id", "expected integer"),
    (dict(id=101), "id", "duplicate annotation id 101"),
    (dict(segmentations=[None]), "segmentations", "1 segmentations for the 3 file_names"),
    (dict(segmentations=[None, {"size": [H, W + 1], "counts": "x"}, None]), "segmentations[1].size",
     "differs from [6, 8]"),
    (dict(segmentations=[None, {"size": [H, W]}, None]), "segmentations[1]", "'size' and 'counts'"),
    (dict(video_name=None), "video_name", "expected string"),
    (dict(width=W * 2), "height", "differs from video 1's 8x6"),
])
def test_bad_mask_annotations_are_located(tmp_path, annotation, field, message):
    path = tmp_path / "extra_masks.json"
    vis_file(path, **annotation)
    with pytest.raises(FormatError) as info:
        read_extra_masks(path)
    text = str(info.value)
    assert str(path) in text and "record 'annotations[1]'" in text and f"field '{field}'" in text and message in text
    report = ReadReport()
    _, tracks = read_extra_masks(path, report=report)
    assert list(tracks) == [101] and len(report) == 1


def test_bad_videos_and_malformed_file(tmp_path):
    path = tmp_path / "extra_masks.json"
    path.write_text('{"videos": [}')
    with pytest.raises(FormatError, match="extra_masks.json:1: malformed JSON"):
        read_extra_masks(path)
    videos, tracks, _ = dense_fixture()
    write_extra_masks(path, videos, tracks)
    data = json.loads(path.read_text())
    data["videos"][0]["length"] = 4
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"record 'videos\[0\]': field 'length': length 4 differs"):
        read_extra_masks(path)
    data["videos"][0].update(length=2, ytid="yt", file_names=["yt/a.png", "yt/b.png"])
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"field 'file_names\[0\]': .* does not end in a frame number"):
        read_extra_masks(path)


def test_two_videos_of_one_name_are_an_error(tmp_path):
    # their tracks are looked up by video name: the second would be lost or mixed with the first
    path = tmp_path / "vis.json"
    videos, tracks, _ = dense_fixture()
    write_vis_annotations(path, videos, tracks)
    data = json.loads(path.read_text())
    data["videos"].append({**data["videos"][0], "id": 2})
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"record 'videos\[1\]': field 'file_names': video name '5d24e4ea' is also "
                                          "video 1's"):
        read_vis_annotations(path)


def test_writer_failure_keeps_old_file(tmp_path):
    videos, tracks, _ = dense_fixture()
    path = tmp_path / "extra_masks.json"
    write_extra_masks(path, videos, tracks)
    before = path.read_bytes()
    raw_bytes = {"size": [H, W], "counts": b"raw pycocotools bytes"}  # not JSON-serialisable
    broken = {**tracks, 303: MaskTrack(303, 1, "5d24e4ea", H, W, (None, None, raw_bytes))}
    with pytest.raises(TypeError):
        write_extra_masks(path, videos, broken)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extra_masks.json"]
    with pytest.raises(ValueError, match="unknown video id 2"):
        write_vis_annotations(path, videos, {7: MaskTrack(7, 2, "x", H, W, ())})


def test_merge_tracks_requires_disjoint_ids():
    _, dense, _ = dense_fixture()
    _, sparse = sparse_fixture()
    assert list(merge_tracks(dense, sparse)) == [101, 202, 303]
    with pytest.raises(ValueError, match=r"ids \[202\] occur in more than one file"):
        merge_tracks(dense, {202: dense[202]})


def test_mask_track_validation():
    with pytest.raises(ValueError, match=r"segmentations\[0\] has size \[2, 2\]"):
        MaskTrack(1, 1, "v", H, W, ({"size": [2, 2], "counts": ""},))
    with pytest.raises(ValueError, match="length must be >= 1"):
        VISVideo(1, W, H, 0, ())
