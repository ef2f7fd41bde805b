"""The release's own layouts (FORMATS.md §2), on fixtures in its exact shape: ``video_name`` with the split prefix,
and the extracted frames and point PNGs keyed by object id; every Point-VOS consumer that needs frames takes the
videos or the extracted frames."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vng.cli import app
from vng.io.common import FormatError, ReadReport
from vng.io.pointvos import find_pv_frames, pv_video_path, write_pv_annotations
from vng.io.pv_extracted import read_point_pngs, read_pv_source, read_pv_split, write_point_pngs
from vng.io.video import Video, find_video, write_frames, write_video
from vng.types import FramePoints, ObjectAnnotation, Points

WIDTH, HEIGHT, FRAMES = 48, 32, 6
IDS = ("0f3c" * 8, "a1b2" * 8)
VIDEO = "False Start! - Two Wheels _ FailArmy31"  # a release-style name, spaces and punctuation included


def _frames(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 80, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    frames = []
    for t in range(FRAMES):
        frame = base.copy()
        frame[8:20, 4 + 4 * t:16 + 4 * t] = (230, 200, 40)  # a box moving right
        frames.append(frame)
    return frames


def _object(object_id: str, video_name: str | None) -> ObjectAnnotation:
    frames = tuple(FramePoints(t, Points([[6 + 4 * t, 12], [40, 28], [1, 1]], [1, 0, -1], [True, False, False]))
                   for t in (1, 4))
    return ObjectAnnotation(object_id, video_name, "box", "Who moves right?", "9f" * 8, frames)


@pytest.fixture
def release(tmp_path):
    """``<root>/Oops/train.json`` whose video_names carry the split prefix (as the release README's example), the
    videos, and the extracted layout: every frame per object id as %06d.jpg, one point PNG per annotated frame."""
    root = tmp_path / "release"
    objects = [_object(IDS[0], f"train/{VIDEO}"), _object(IDS[1], "train/other clip")]
    write_pv_annotations(root / "Oops" / "train.json", objects)
    for seed, obj in enumerate(objects):
        write_video(pv_video_path(root, "Oops", "train", obj.video_name), _frames(seed))
        write_frames(root / "Oops" / "train" / "JPEGImages" / obj.object_id, _frames(seed))
    write_point_pngs(root / "Oops" / "train" / "Annotations", objects,
                     {obj.object_id: (WIDTH, HEIGHT) for obj in objects})
    return root, objects


def _extracted_only(root):
    """The release root without its JSON and videos: what a user who downloaded the extracted layout has."""
    (root / "Oops" / "train.json").unlink()
    for video in (root / "Oops" / "videos" / "train").iterdir():
        video.unlink()
    return root


def test_the_point_pngs_are_palette_pngs_with_one_pixel_per_point(release):
    root, objects = release
    path = root / "Oops" / "train" / "Annotations" / IDS[0] / "000004.png"
    with Image.open(path) as image:
        assert image.mode == "P" and image.size == (WIDTH, HEIGHT)
        values = np.asarray(image)
    assert {(x, y): int(values[y, x]) for y, x in zip(*np.nonzero(values))} == {(22, 12): 2, (40, 28): 1, (1, 1): 255}
    assert sorted(p.name for p in (root / "Oops" / "train" / "JPEGImages" / IDS[0]).iterdir()) == [
        f"{i:06d}.jpg" for i in range(FRAMES)]


def test_point_pngs_alone_read_with_what_they_lack_filled_in(release):
    root, objects = release
    read = read_point_pngs(root / "Oops" / "train" / "Annotations")
    assert [obj.object_id for obj in read] == sorted(IDS)
    for obj in read:
        original = next(o for o in objects if o.object_id == obj.object_id)
        assert (obj.video_name, obj.object_name, obj.question, obj.question_hash) == (obj.object_id, "", "", "")
        assert obj.frame_indices == original.frame_indices
        for got, expected in zip(obj.frames, original.frames):
            assert got.points.is_fg_candidate is None
            assert sorted(map(tuple, np.c_[got.points.xy, got.points.labels].tolist())) == sorted(
                map(tuple, np.c_[expected.points.xy, expected.points.labels].tolist()))


def test_json_and_point_pngs_combine(release):
    root, objects = release
    combined = read_pv_split(root, "Oops", "train")
    assert [obj.object_id for obj in combined] == list(IDS)  # the JSON's order
    for obj, original in zip(combined, objects):
        assert (obj.video_name, obj.object_name, obj.question) == (original.video_name, "box", "Who moves right?")
        for got in obj.frames:  # the JSON's is_fg_candidate, matched to the PNG's points
            assert got.points.is_fg_candidate.tolist() == (got.points.labels == 1).tolist()
    # a record with a null video_name cannot find its video, but its extracted frames: it is kept
    write_pv_annotations(root / "Oops" / "train.json", [_object(IDS[0], None), objects[1]])
    assert [obj.video_name for obj in read_pv_split(root, "Oops", "train")] == [IDS[0], "train/other clip"]
    assert read_pv_source(root / "Oops" / "train" / "Annotations") == read_pv_split(root, "Oops", "train")
    # the two disagree: located at the PNG
    moved = _object(IDS[0], "v")
    moved = ObjectAnnotation(IDS[0], "v", "box", "q", "", (FramePoints(1, Points([[7, 12]], [1])),
                                                          moved.frames[1]))
    write_pv_annotations(root / "Oops" / "train.json", [moved, objects[1]])
    with pytest.raises(FormatError, match=r"Annotations/0f3c.*/000001.png: the points differ from the JSON's"):
        read_pv_split(root, "Oops", "train")
    report = ReadReport()  # skipped: the object is left out, not read from the JSON alone
    assert [obj.object_id for obj in read_pv_split(root, "Oops", "train", report=report)] == [IDS[1]]
    assert len(report) == 1


def test_bad_point_pngs_are_located_and_skippable(release):
    root, _ = release
    folder = root / "Oops" / "train" / "Annotations"
    Image.fromarray(np.full((HEIGHT, WIDTH), 7, np.uint8), mode="L").save(folder / IDS[0] / "000001.png")
    with pytest.raises(FormatError, match=r"000001.png: pixel values \[7\] are none of 0"):
        read_point_pngs(folder)
    report = ReadReport()
    assert [obj.object_id for obj in read_point_pngs(folder, report=report)] == [IDS[1]] and len(report) == 1
    (folder / IDS[0] / "000001.png").unlink()
    (folder / IDS[1] / "frame1.png").write_bytes((folder / IDS[1] / "000001.png").read_bytes())
    with pytest.raises(FormatError, match="frame1.png: frame_id must be a 6-digit"):
        read_point_pngs(folder)


def test_video_names_with_the_split_prefix_and_where_frames_are_found(release):
    root, objects = release
    assert pv_video_path(root, "Oops", "train", f"train/{VIDEO}") == root / "Oops/videos/train" / f"{VIDEO}.mp4"
    assert find_pv_frames(root, "Oops", "train", f"train/{VIDEO}", IDS[0]).name == f"{VIDEO}.mp4"
    assert find_pv_frames(root, "Oops", "train", VIDEO, IDS[0]).name == f"{VIDEO}.mp4"  # without the prefix too
    videos = root / "Oops" / "videos" / "train"
    assert find_video(videos, f"train/{VIDEO}") == videos / f"{VIDEO}.mp4"
    _extracted_only(root)
    assert find_pv_frames(root, "Oops", "train", f"train/{VIDEO}", IDS[0]) == \
        root / "Oops" / "train" / "JPEGImages" / IDS[0]
    assert find_video(root / "Oops" / "train" / "JPEGImages", VIDEO, object_id=IDS[0]).name == IDS[0]
    with pytest.raises(FormatError, match=rf"record '{IDS[0]}': field 'video_name': video 'train/x' not found; tried "
                                          r".*/train/x.mp4, .*/train/x, .*/x.mp4, .*/x, .*/0f3c"):
        find_video(videos, "train/x", object_id=IDS[0])


def test_pseudo_masks_from_the_extracted_layout(release, tmp_path):
    root = _extracted_only(release[0])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["pseudo-masks", "--annotations", str(root / "Oops" / "train" / "Annotations"),
                                      "--frames", str(root), "--out", str(out), "--backend", "grabcut"])
    assert result.exit_code == 0, result.output
    index = json.loads((out / "Oops" / "pseudo_masks" / "train" / "index.json").read_text())
    assert {(r["object_id"], r["frame_index"]) for r in index["masks"]} == {(i, t) for i in IDS for t in (1, 4)}


def test_hf_conversion_and_datasets_from_the_extracted_layout(release, tmp_path):
    from vng.datasets.hf import convert_point_vos, to_object_annotation
    from vng.datasets.point_clips import PointClipConfig, PointVOSClipDataset
    import datasets

    root = _extracted_only(release[0])
    out = convert_point_vos(root, tmp_path / "converted", embed_images=True)
    rows = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert sorted(row["object_id"] for row in rows) == sorted(IDS)
    for row in rows:
        assert row["video_path"] == f"Oops/train/JPEGImages/{row['object_id']}"
        assert to_object_annotation(row).frame_indices == [1, 4]
        image = np.asarray(row["frames"][1]["image"])
        expected = Video.open(root / row["video_path"])[4]
        assert image.shape == expected.shape and np.abs(image.astype(int) - expected).mean() < 4  # JPEG again
    objects = read_pv_source(root / "Oops" / "train" / "Annotations")
    clips = PointVOSClipDataset(objects, root / "Oops" / "train" / "JPEGImages",
                                config=PointClipConfig(num_frames=2, size=32, max_gap=1))
    assert len(clips) == 2 and clips[0].images.shape == (2, 3, 32, 32)
