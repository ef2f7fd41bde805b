"""The synthetic sample dataset: determinism, every format read back by the library's readers, and the ground truth
agreeing across formats (masks ↔ points ↔ captions ↔ traces)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vng.cli import app
from vng.datasets.synthetic import (COLOURS, SHAPES, SampleDataConfig, generate_sample_data, make_scene,
                                    object_id_for, sample_object_points)
from vng.io.coco_png import noun_mask, read_panoptic_annotations, read_panoptic_png, read_png_narratives
from vng.io.davis import read_davis_masks, read_davis_split
from vng.io.masks import read_mask_png, rle_decode
from vng.io.pointvos import pv_video_path, read_pv_annotations
from vng.io.video import Video
from vng.io.vidln import read_narratives
from vng.io.vng_format import read_extra_masks, read_meta_expressions, read_vis_annotations, merge_tracks
from vng.io.ytvos import read_ytvos_masks, read_ytvos_meta
from vng.types import PointLabel, VideoRef, parse_frame_id

# Small but complete: 12 frames still allow 10 annotated frames and 10 keyframes.
CONFIG = SampleDataConfig(num_frames=12, num_train_videos=3, num_val_videos=2, num_kinetics_videos=2,
                          num_png_images=3)
WIDTH, HEIGHT = CONFIG.width, CONFIG.height
SPLITS = {"train": "synthetic_train", "val": "synthetic_val", "kinetics_train": "synthetic_kinetics"}
PV_FILES = {("Oops", "train"): "train", ("Oops", "val"): "val", ("Kinetics", "train"): "kinetics_train"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample") / "seed0"
    generate_sample_data(root, seed=0, config=CONFIG)
    return root


@pytest.fixture(scope="module")
def davis_masks(sample) -> dict[str, np.ndarray]:
    """{video_id: (T, H, W) uint8 instance masks} of the train and val videos (ids = track ids)."""
    names = read_davis_split(sample / "DAVIS", year="2017", split="train") + \
        read_davis_split(sample / "DAVIS", year="2017", split="val")
    return {name: read_davis_masks(sample / "DAVIS", name) for name in names}


@pytest.fixture(scope="module")
def narratives(sample) -> dict[str, list]:
    return {name: read_narratives(sample / "vidln" / f"{name}.jsonl", frames_dir=sample / "frames")
            for name in SPLITS}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _track_of(object_id: str, video_id: str, seed: int = 0) -> int:
    """The mask id of a Point-VOS object, by the documented id scheme md5(seed/video/track)."""
    return next(t for t in range(1, CONFIG.max_objects + 1) if object_id_for(seed, video_id, t) == object_id)


def _word_window(actor, span: tuple[int, int]) -> tuple[int, float]:
    """Absolute (start, end) of a noun's trace window, FORMATS.md §1 (written out here independently of vng)."""
    words = sorted(actor.time_alignment, key=lambda w: w.start_ms)
    kept = [i for i, w in enumerate(words) if w.start_index < span[1] and span[0] < w.end_index]
    end = words[kept[-1] + 1].start_ms if kept[-1] + 1 < len(words) else float("inf")
    return actor.recording_start_time_ms + words[kept[0]].start_ms, actor.recording_start_time_ms + end


def _nearest_colour(rgb: np.ndarray) -> str:
    return min(COLOURS, key=lambda name: float(np.sum((np.asarray(COLOURS[name], float) - rgb) ** 2)))


def _shape_of(mask: np.ndarray) -> str:
    """A crude shape classifier from the mask: fill of the enclosing circle and solidity (area / convex hull).

    Ideal values: circle fill 1; square fill 0.64, solidity 1; triangle fill 0.41, solidity 1; star solidity 0.55;
    cross solidity ~0.75. Contours run through pixel centres, so half a pixel is added around them.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(contour)
    area = float(mask.sum())
    (_, _), radius = cv2.minEnclosingCircle(contour)
    fill = area / (np.pi * (radius + 0.5) ** 2)
    solidity = area / max(cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True), 1.0)
    if fill > 0.8:
        return "circle"
    if solidity > 0.85:
        return "square" if fill > 0.52 else "triangle"
    return "star" if solidity < 0.68 else "cross"


# --- determinism ------------------------------------------------------------------------------------------------------

def test_same_seed_gives_identical_files_and_another_seed_differs(sample, tmp_path):
    again = tmp_path / "again"
    generate_sample_data(again, seed=0, config=CONFIG)
    first, second = _files(sample), _files(again)
    assert first.keys() == second.keys()
    # JSON, masks and JPEG frames are byte-identical; the mp4 container is OpenCV's business, its frames are checked.
    differing = [name for name in first if first[name] != second[name] and not name.endswith(".mp4")]
    assert differing == []

    other = tmp_path / "other"
    generate_sample_data(other, seed=1, config=CONFIG)
    third = _files(other)
    for name in ("vidln/train.jsonl", "Oops/train.json", "DAVIS/Annotations/480p/train_000/00000.png",
                 "COCO-PNG/png_coco_train2017.json"):
        assert first[name] != third[name], name
    assert not set(json.loads(first["Oops/train.json"])) & set(json.loads(third["Oops/train.json"]))


def test_index_counts_what_was_written(sample):
    index = json.loads((sample / "index.json").read_text())
    counts = index["counts"]
    assert index["frame_size"] == [WIDTH, HEIGHT] and index["seed"] == 0
    assert counts["videos"] == {"train": 3, "val": 2, "kinetics_train": 2}
    for name, dataset_id in SPLITS.items():
        assert len(list((sample / "frames" / dataset_id).glob("*/*.jpg"))) == counts["frames"][name]
        assert len(list((sample / "videos" / dataset_id).glob("*.mp4"))) == counts["videos"][name]
    for (dataset, split), name in PV_FILES.items():
        key = f"{dataset}/{split}"
        assert len(list((sample / dataset / "pseudo_masks" / split).glob("*/*.png"))) == counts["pseudo_masks"][key]
    assert len(list((sample / "COCO-PNG" / "panoptic_val2017").glob("*.png"))) == counts["coco_png_images"]["val2017"]


def test_cli_generates_the_default_config(tmp_path):
    runner = CliRunner()
    help_result = runner.invoke(app, ["sample-data", "--help"])
    assert help_result.exit_code == 0 and "--seed" in help_result.output
    started = time.perf_counter()
    result = runner.invoke(app, ["sample-data", "--out", str(tmp_path / "default")])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert "pv_objects" in result.output
    print(f"\ndefault sample data generated in {seconds:.1f} s")  # not asserted: machines differ
    index = json.loads((tmp_path / "default" / "index.json").read_text())
    assert index["counts"]["videos"] == {"train": 8, "val": 4, "kinetics_train": 4}


# --- VidLN ------------------------------------------------------------------------------------------------------------

def test_narratives_read_back_with_their_frames_and_videos(sample, narratives):
    for name, dataset_id in SPLITS.items():
        assert len(narratives[name]) == json.loads((sample / "index.json").read_text())["counts"]["videos"][name]
        for narrative in narratives[name]:
            assert narrative.dataset_id == dataset_id and narrative.frame_size == (WIDTH, HEIGHT)
            assert len(narrative.keyframe_names) == CONFIG.num_keyframes
            folder = sample / "frames" / dataset_id / narrative.video_id
            assert sorted(p.stem for p in folder.glob("*.jpg")) == [f"{i:06d}" for i in range(CONFIG.num_frames)]
            assert all((folder / f"{k}.jpg").is_file() for k in narrative.keyframe_names)
            video = Video.open(sample / "videos" / dataset_id / f"{narrative.video_id}.mp4")
            assert len(video) == CONFIG.num_frames and video.size == (WIDTH, HEIGHT)
            actors = narrative.actor_narratives
            assert actors[-1].is_background and not any(a.is_background for a in actors[:-1])
            assert 1 <= len(actors) - 1 <= CONFIG.max_objects
            for actor in actors:
                assert actor.traces and actor.time_alignment and actor.noun_segments
                assert actor.traces_start_time_ms <= min(int(s.times_ms.min()) for s in actor.traces)
                assert all(set(s.keyframe_indices.tolist()) <= set(actor.keyframe_selection_indices)
                           for s in actor.traces)


def test_captions_name_colour_and_shape_seen_in_the_pixels(sample, narratives, davis_masks):
    for name in ("train", "val"):
        for narrative in narratives[name]:
            masks = davis_masks[narrative.video_id]
            frames = list(Video.open(sample / "frames" / SPLITS[name] / narrative.video_id))
            for track, actor in enumerate(narrative.actor_narratives[:-1], start=1):
                match = re.match(r"An? (\w+) (\w+) (moves|slides|drifts|glides) ", actor.caption)
                assert match, actor.caption
                colour, shape = match.group(1), match.group(2)
                assert colour in COLOURS and shape in SHAPES and actor.actor_name == f"{colour} {shape}".capitalize()
                pixels = np.concatenate([frame[mask == track] for frame, mask in zip(frames, masks)])
                assert _nearest_colour(np.median(pixels, axis=0)) == colour
                largest = int(np.argmax((masks == track).sum(axis=(1, 2))))
                assert _shape_of(masks[largest] == track) == shape, (narrative.video_id, actor.caption)


def test_noun_trace_windows_cover_the_named_object(sample, narratives, davis_masks):
    """FORMATS.md §1: the window of every noun that names an object holds trace points mostly on that object."""
    checked = 0
    for name in ("train", "val"):
        videos = read_meta_expressions(sample / "VNG" / name / "meta_expressions.json")
        tracks = _vng_tracks(sample, name)
        for narrative in narratives[name]:
            for expression in videos[narrative.video_id].expressions:
                actor = narrative.actor_narratives[expression.actor_index]
                start, end = _word_window(actor, (expression.start, expression.end))
                masks = [rle_decode(r) for r in tracks[expression.obj_id].segmentations]
                inside = []
                for segment in actor.traces:
                    keep = (segment.times_ms >= start) & (segment.times_ms <= end)
                    for (x, y), keyframe in zip(segment.xy[keep], segment.keyframe_indices[keep]):
                        mask = masks[parse_frame_id(narrative.keyframe_names[keyframe])]
                        inside.append(mask[min(int(y), HEIGHT - 1), min(int(x), WIDTH - 1)])
                assert len(inside) >= 10, actor.caption
                assert np.mean(inside) >= 0.8, (actor.caption, np.mean(inside))
                checked += 1
    assert checked >= 5


def test_noun_segments_are_mostly_right_with_a_deliberate_error(narratives):
    for narrative in narratives["train"] + narratives["val"]:
        texts = [actor.caption[s:e] for actor in narrative.actor_narratives for s, e in actor.noun_segments]
        assert "background" in texts
        assert {"moves", "slides", "drifts", "glides"} & set(texts), texts  # the verb tagged as a noun
        for actor in narrative.actor_narratives[:-1]:
            start, end = actor.noun_segments[0]
            assert actor.caption[start:end] == actor.actor_name.lower()


# --- Point-VOS --------------------------------------------------------------------------------------------------------

def test_point_annotations_agree_with_the_masks(sample, davis_masks):
    # 10 evenly spaced frames including the first and the last (Sec. 3.1)
    annotated = sorted({int(round(v)) for v in np.linspace(0, CONFIG.num_frames - 1, CONFIG.candidates.num_frames)})
    assert len(annotated) == CONFIG.candidates.num_frames
    for (dataset, split), name in PV_FILES.items():
        suffix = ".jsonl" if dataset == "Kinetics" else ".json"
        path = sample / dataset / f"{split}{suffix}"
        video_names = {p.stem for p in (sample / dataset / "videos" / split).glob("*.mp4")}
        refs = {v: VideoRef(v, num_frames=CONFIG.num_frames, width=WIDTH, height=HEIGHT) for v in video_names}
        objects = read_pv_annotations(path, videos=refs)
        assert len(objects) == json.loads((sample / "index.json").read_text())["counts"]["pv_objects"][
            f"{dataset}/{split}"]
        assert len({o.object_id for o in objects}) == len(objects)
        for obj in objects:
            assert re.fullmatch(r"[0-9a-f]{32}", obj.object_id)
            assert obj.question[obj.noun_span[0]:obj.noun_span[1]] == obj.object_name
            assert pv_video_path(sample, dataset, split, obj.video_name).is_file()
            assert [f.frame_index for f in obj.frames] == annotated
            if dataset == "Kinetics":  # Kinetics videos have no dense-mask copy to compare with
                continue
            track = _track_of(obj.object_id, obj.video_name)
            for frame in obj.frames:
                mask = davis_masks[obj.video_name][frame.frame_index] == track
                points = frame.points
                xy = points.xy.astype(int)
                assert np.array_equal(points.xy, xy)  # integer pixels
                on_object = mask[xy[:, 1], xy[:, 0]]
                fg, bg = points.labels == PointLabel.FOREGROUND, points.labels == PointLabel.BACKGROUND
                assert fg.sum() >= 3 and bg.sum() == CONFIG.candidates.num_background
                assert on_object[fg].all() and not on_object[bg].any()
                assert (points.labels == PointLabel.AMBIGUOUS).any()
                distances = np.linalg.norm(points.xy[:, None] - points.xy[None], axis=-1)
                assert distances[np.triu_indices(len(points), 1)].min() >= CONFIG.candidates.min_distance
                assert np.array_equal(points.is_fg_candidate, fg)


def test_pseudo_masks_are_degraded_ground_truth(sample, davis_masks):
    objects = read_pv_annotations(sample / "Oops" / "val.json")
    for obj in objects:
        track = _track_of(obj.object_id, obj.video_name)
        for frame in obj.frames:
            pseudo = read_mask_png(sample / "Oops" / "pseudo_masks" / "val" / obj.object_id /
                                   f"{frame.frame_index:06d}.png")
            truth = davis_masks[obj.video_name][frame.frame_index] == track
            assert set(np.unique(pseudo)) <= {0, 1}
            iou = np.logical_and(pseudo, truth).sum() / np.logical_or(pseudo, truth).sum()
            assert 0.3 < iou < 1.0


def test_pv_oops_val_ground_truth_is_the_true_masks_of_the_last_three_annotated_frames(sample, davis_masks):
    from vng.benchmark.oops import read_sparse_masks

    objects = read_pv_annotations(sample / "Oops" / "val.json")
    truth = read_sparse_masks(sample / "Oops" / "val_masks")
    assert set(truth) == {obj.object_id for obj in objects}
    for obj in objects:
        track = _track_of(obj.object_id, obj.video_name)
        assert sorted(truth[obj.object_id]) == [f.frame_index for f in obj.frames[-3:]]
        for frame_index, mask in truth[obj.object_id].items():
            np.testing.assert_array_equal(mask > 0, davis_masks[obj.video_name][frame_index] == track)


# --- DAVIS, YouTube-VOS -----------------------------------------------------------------------------------------------

def test_davis_and_youtube_vos_layouts(sample, davis_masks):
    assert read_davis_split(sample / "DAVIS", year="2017", split="train") == ["train_000", "train_001", "train_002"]
    assert read_davis_split(sample / "DAVIS", year="2017", split="val") == ["val_000", "val_001"]
    for name, masks in davis_masks.items():
        assert masks.shape == (CONFIG.num_frames, HEIGHT, WIDTH)
        ids = sorted(set(np.unique(masks)) - {0})
        assert ids == list(range(1, len(ids) + 1))
        for track in ids:  # every object visible in every frame
            assert ((masks == track).sum(axis=(1, 2)) >= CONFIG.min_visible_area).all()
    for split, names in (("train", ["train_000", "train_001", "train_002"]), ("valid", ["val_000", "val_001"])):
        meta = read_ytvos_meta(sample / "YouTubeVOS" / split / "meta.json")
        assert sorted(meta) == names
        for name in names:
            masks = read_ytvos_masks(sample / "YouTubeVOS", split, name)
            expected = CONFIG.num_frames if split == "train" else 1  # valid: first frame only, like the real one
            assert list(masks)[:2] == ["00000", "00005"][:expected] and len(masks) == expected
            assert np.array_equal(masks["00000"], davis_masks[name][0])
            assert sorted(meta[name]) == [str(i) for i in sorted(set(np.unique(davis_masks[name])) - {0})]


# --- VNG --------------------------------------------------------------------------------------------------------------

def _vng_tracks(sample: Path, split: str):
    _, vis = read_vis_annotations(sample / "VNG" / split / "vis_annotations.json")
    _, extra = read_extra_masks(sample / "VNG" / split / "extra_masks.json")
    return merge_tracks(vis, extra)


def test_vng_expressions_ground_to_masks_from_both_sources(sample, davis_masks, narratives):
    sources = {"vis": 0, "extra": 0}
    for split in ("train", "val"):
        _, vis = read_vis_annotations(sample / "VNG" / split / "vis_annotations.json")
        tracks = _vng_tracks(sample, split)
        videos = read_meta_expressions(sample / "VNG" / split / "meta_expressions.json", tracks=tracks)
        captions = {n.video_id: [a.caption for a in n.actor_narratives] for n in narratives[split]}
        assert sorted(videos) == sorted(captions)
        for name, video in videos.items():
            assert [a.description for a in video.actors] == captions[name]
            assert list(video.frames) == [f"{i:06d}" for i in range(CONFIG.num_frames)]
            for expression in video.expressions:
                colour, shape = video.noun_text(expression).split()
                track = tracks[expression.obj_id]
                masks = np.stack([rle_decode(r) for r in track.segmentations])
                labels = np.unique(davis_masks[name][masks])
                assert len(labels) == 1  # one object's masks, the same as in DAVIS
                sources["vis" if expression.obj_id in vis else "extra"] += 1
                assert (sample / "frames" / SPLITS[split] / name / "000000.jpg").is_file()
    assert sources["vis"] and sources["extra"]


# --- COCO-PNG ---------------------------------------------------------------------------------------------------------

def test_coco_png_reads_back_with_a_plural_noun(sample):
    root = sample / "COCO-PNG"
    plural_seen = 0
    for split in ("train2017", "val2017"):
        panoptic = read_panoptic_annotations(root / f"panoptic_{split}.json")
        narratives = read_png_narratives(root / f"png_coco_{split}.json", panoptic=panoptic)
        assert len(narratives) == CONFIG.num_png_images
        for narrative in narratives:
            image = panoptic[narrative.image_id]
            ids = read_panoptic_png(root / f"panoptic_{split}" / image.file_name)
            assert (root / split / image.image_file_name).is_file()
            assert ids.shape == (HEIGHT, WIDTH) and set(np.unique(ids)) == set(image.segment_ids)
            for segment in image.segments:
                assert segment.area == int((ids == segment.id).sum())
            assert narrative.caption == " ".join(s.utterance for s in narrative.segments)
            for noun in narrative.nouns:
                target = noun_mask(ids, noun.segment_ids)
                assert target.any()
                if len(noun.segment_ids) > 1:
                    plural_seen += 1
                    assert noun.plural and noun.utterance.lower().startswith("two ")
                    assert target.sum() == sum((ids == i).sum() for i in noun.segment_ids)
    assert plural_seen >= 2  # one per split at least


# --- train vs val, building blocks ---------------------------------------------------------------------------------

def test_train_and_val_differ(narratives, davis_masks):
    def object_sets(split):
        return {frozenset(a.actor_name.lower() for a in n.actor_narratives[:-1]) for n in narratives[split]}

    assert not object_sets("train") & object_sets("val")
    train_ids = {n.video_id for n in narratives["train"]}
    assert not train_ids & {n.video_id for n in narratives["val"]}
    assert not any(np.array_equal(davis_masks["val_000"], davis_masks[name]) for name in train_ids)


def test_sampler_and_config_edge_cases():
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[10:13, 10:13] = True  # 9 px: far too small for 7 fg points 5 px apart
    points = sample_object_points(mask, np.random.default_rng(0), CONFIG)
    assert 1 <= (points.labels == PointLabel.FOREGROUND).sum() < CONFIG.candidates.num_foreground
    with pytest.raises(ValueError):
        SampleDataConfig(max_objects=9)
    with pytest.raises(ValueError):
        SampleDataConfig(width=32)
    scene = make_scene("x", np.random.default_rng(3), CONFIG)
    assert scene.frames.shape == (CONFIG.num_frames, HEIGHT, WIDTH, 3) and scene.frames.dtype == np.uint8
