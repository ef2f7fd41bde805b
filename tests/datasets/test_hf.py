"""Point-VOS / VNG → Hugging Face ``datasets``: schema, round trip, embedded images, card, loading, failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import datasets
import numpy as np
import pytest
import yaml
from datasets import Features, Image, List

from vng.io.common import FormatError
from vng.io.masks import read_mask_png, write_mask_png
from vng.io.pointvos import pv_video_path, read_pv_annotations, write_pv_annotations
from vng.types import FramePoints, ObjectAnnotation, Points
from vng.datasets.hf import (convert_point_vos, convert_vng, load_oops_vng, load_point_vos, point_vos_features,
                             to_object_annotation, vng_features)
from vng.io.pointvos import pseudo_mask_path

WIDTH, HEIGHT = 32, 24
# one well-separated solid RGB colour per frame (8 frames): a decoded frame tells its index despite mp4 compression
COLOURS = np.array([(230, 20, 20), (20, 230, 20), (20, 20, 230), (230, 230, 20),
                    (230, 20, 230), (20, 230, 230), (128, 128, 128), (250, 250, 250)], np.uint8)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, and every cache (ours, datasets') inside tmp_path."""
    # datasets reads its environment once, at import: patch its config too, the variables serve subprocesses
    for name, value in (("HF_HUB_OFFLINE", True), ("HF_DATASETS_OFFLINE", True),
                        ("HF_DATASETS_CACHE", tmp_path / "hf-cache")):
        monkeypatch.setenv(name, "1" if value is True else str(value))
        monkeypatch.setattr(datasets.config, name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # the default cache of load_oops_vng


def _object(object_id: str, video_name: str | None, frames: dict[int, list[tuple[int, int, int, bool]]], *,
            question: str = "Who throws the egg at the man?", object_name: str = "baby girl",
            noun_span: tuple[int, int] | None = None) -> ObjectAnnotation:
    return ObjectAnnotation(
        object_id=object_id, video_name=video_name, object_name=object_name, question=question,
        question_hash=f"hash-{object_id}", noun_span=noun_span,
        frames=tuple(FramePoints(index, Points(xy=[(x, y) for x, y, _, _ in rows], labels=[l for _, _, l, _ in rows],
                                               is_fg_candidate=[c for _, _, _, c in rows]))
                     for index, rows in sorted(frames.items())))


def _write_video(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for colour in COLOURS:
        writer.write(np.full((HEIGHT, WIDTH, 3), colour[::-1], np.uint8))  # OpenCV writes BGR
    writer.release()


def _mask(object_id: str, frame_index: int) -> np.ndarray:
    column = 5 * (ord(object_id[0]) - ord("a"))  # a different place per object
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[frame_index:frame_index + 6, column:column + 9] = 1
    return mask


@pytest.fixture
def root(tmp_path) -> Path:
    """A tiny Oops-VNG root: train (3 usable objects, 1 with a null video), val (1), 8-frame videos, pseudo-masks."""
    root = tmp_path / "root"
    caption = "The baby girl throws an egg at the man."
    train = [
        _object("a" * 32, "video_one", {1: [(3, 4, 1, True), (30, 20, 0, False), (10, 10, -1, True)],
                                        5: [(0, 0, 1, True)]}, question=caption, noun_span=(4, 13)),
        _object("b" * 32, "video_one", {0: [(31, 23, 0, True)], 7: [(5, 6, 1, False), (7, 8, 0, False)]},
                question=caption, object_name="the man", noun_span=(31, 38)),
        _object("c" * 32, None, {2: [(1, 1, 1, True)]}),
        _object("d" * 32, "video_two", {3: [(2, 2, 1, True)], 4: [(12, 13, 0, False)]}),
    ]
    val = [_object("e" * 32, "video_three", {6: [(9, 9, 1, True)]})]
    write_pv_annotations(root / "Oops" / "train.json", train)
    write_pv_annotations(root / "Oops" / "val.json", val)
    for split, objects in (("train", train), ("val", val)):
        for number, obj in enumerate(objects):
            if obj.video_name is None:
                continue
            _write_video(pv_video_path(root, "Oops", split, obj.video_name))
            for frame_index in obj.frame_indices[:-1] if number == 0 else obj.frame_indices:  # one mask missing
                write_mask_png(pseudo_mask_path(root, "Oops", split, obj.object_id, frame_index),
                               _mask(obj.object_id, frame_index))
    return root


def _objects(root: Path, split: str) -> list[ObjectAnnotation]:
    return read_pv_annotations(root / "Oops" / f"{split}.json")


def _front_matter(card: Path) -> dict:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_features_are_typed_lists_of_frame_structs():
    features = vng_features()
    assert isinstance(features["frames"], List) and isinstance(features["frames"].feature, dict)
    frame = features["frames"].feature
    assert frame["frame_index"].dtype == "int32" and frame["labels"].feature.dtype == "int8"
    assert frame["points_xy"].feature.length == 2 and frame["points_xy"].feature.feature.dtype == "float32"
    assert frame["is_fg_candidate"].feature.dtype == "bool"
    assert features["noun_span"].length == 2 and features["noun_span"].feature.dtype == "int32"
    assert isinstance(frame["pseudo_mask"], Image) and not frame["pseudo_mask"].decode  # relative paths
    assert vng_features(embed_images=True)["frames"].feature["image"].decode
    assert "pseudo_mask" not in point_vos_features()["frames"].feature
    assert set(vng_features()) == set(point_vos_features())


def test_round_trip_through_load_dataset_equals_the_reader(root, tmp_path):
    out = convert_vng(root, tmp_path / "converted")
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert set(loaded) == {"train", "val"}
    for split in ("train", "val"):
        assert [to_object_annotation(row) for row in loaded[split]] == _objects(root, split)
    train = loaded["train"]
    assert "c" * 32 not in train["object_id"]  # null video_name: skipped, as the release says
    first = train[0]
    assert first["noun_span"] == [4, 13] and train[2]["noun_span"] is None
    assert first["video_path"] == "Oops/videos/train/video_one.mp4"
    assert [f["frame_id"] for f in first["frames"]] == ["000001", "000005"]
    assert first["frames"][0]["labels"] == [1, 0, -1] and first["frames"][0]["is_fg_candidate"] == [True, False, True]
    assert all(f["image"] is None for f in first["frames"])
    masks = [f["pseudo_mask"] for f in first["frames"]]
    assert masks == [{"bytes": None, "path": f"Oops/pseudo_masks/train/{'a' * 32}/000001.png"}, None]
    assert np.array_equal(read_mask_png(root / masks[0]["path"]), _mask("a" * 32, 1))


def test_point_vos_conversion_has_no_pseudo_masks(root, tmp_path):
    out = convert_point_vos(root, tmp_path / "pv", splits=["val"])
    loaded = datasets.load_dataset(str(out), split="val", cache_dir=str(tmp_path / "hf"))
    assert loaded.features == point_vos_features()
    assert [to_object_annotation(row) for row in loaded] == _objects(root, "val")


def test_embedded_images_are_the_annotated_frames_and_survive_deleting_the_source(root, tmp_path):
    expected = {split: _objects(root, split) for split in ("train", "val")}
    out = convert_vng(root, tmp_path / "embedded", embed_images=True, image_format="png", max_shard_bytes=1)
    assert sorted(p.name for p in (out / "data").glob("train-*")) == [f"train-0000{i}-of-00003.parquet"
                                                                      for i in range(3)]
    shutil.rmtree(root)
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert [to_object_annotation(row) for row in loaded] == expected["train"]
    for row in loaded:
        for frame in row["frames"]:
            pixels = np.asarray(frame["image"].convert("RGB"), np.int16)
            assert pixels.shape == (HEIGHT, WIDTH, 3)
            distances = np.abs(pixels.reshape(-1, 3).mean(0) - COLOURS).sum(1)
            assert distances.argmin() == frame["frame_index"] and distances.min() < 30
            if frame["pseudo_mask"] is not None:
                assert np.array_equal(np.asarray(frame["pseudo_mask"]), _mask(row["object_id"], frame["frame_index"]))
    assert [f["pseudo_mask"] is None for f in loaded[0]["frames"]] == [False, True]


def test_jpeg_frames_are_smaller_but_still_the_right_frames(root, tmp_path):
    out = convert_point_vos(root, tmp_path / "jpeg", splits=["val"], embed_images=True)
    row = datasets.load_dataset(str(out), split="val", cache_dir=str(tmp_path / "hf"))[0]
    image = row["frames"][0]["image"]
    assert image.format == "JPEG"
    assert np.abs(np.asarray(image, np.int16).reshape(-1, 3).mean(0) - COLOURS[6]).sum() < 30


def test_dataset_card_names_splits_and_features(root, tmp_path):
    out = convert_vng(root, tmp_path / "converted", embed_images=True)
    metadata = _front_matter(out / "README.md")
    assert metadata["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*.parquet"}, {"split": "val", "path": "data/val-*.parquet"}]}]
    info = metadata["dataset_info"]
    assert Features._from_yaml_list(info["features"]) == vng_features(embed_images=True)
    assert [(s["name"], s["num_examples"]) for s in info["splits"]] == [("train", 3), ("val", 1)]
    builder = datasets.load_dataset_builder(str(out), cache_dir=str(tmp_path / "hf"))
    assert builder.info.features == vng_features(embed_images=True)


def test_load_oops_vng_from_a_raw_root_caches_the_conversion(root, tmp_path):
    cache = tmp_path / "cache"
    first = load_oops_vng(root, split="val", cache_dir=cache)
    assert [to_object_annotation(row) for row in first] == _objects(root, "val")
    assert first.features == vng_features()
    load_oops_vng(root, split="val", cache_dir=cache)
    assert len(list((cache / "converted").iterdir())) == 1  # reused
    edited = [_object("f" * 32, "video_three", {2: [(4, 4, 0, False)]})]
    write_pv_annotations(root / "Oops" / "val.json", edited)
    assert [to_object_annotation(row) for row in load_oops_vng(root, split="val", cache_dir=cache)] == edited
    assert len(list((cache / "converted").iterdir())) == 2
    embedded = load_oops_vng(root, split="val", cache_dir=cache, embed_images=True)
    assert embedded[0]["frames"][0]["image"].size == (WIDTH, HEIGHT)


def test_load_from_a_converted_dir_and_the_default_cache(root, tmp_path):
    out = convert_vng(root, tmp_path / "converted")
    assert [to_object_annotation(row) for row in load_oops_vng(out, split="train")] == _objects(root, "train")
    point_vos = load_point_vos(root, split="train")
    assert point_vos.features == point_vos_features()
    assert any((tmp_path / "xdg-cache" / "vng" / "converted").iterdir())
    assert any((tmp_path / "hf-cache").iterdir())


def test_kinetics_jsonl(tmp_path):
    root = tmp_path / "root"
    objects = [_object("k" * 32, "clip", {0: [(1, 2, 1, True)]})]
    write_pv_annotations(root / "Kinetics" / "train.jsonl", objects)
    loaded = load_point_vos(root, dataset="Kinetics", cache_dir=tmp_path / "cache")
    assert [to_object_annotation(row) for row in loaded] == objects
    assert loaded[0]["video_path"] == "Kinetics/videos/train/clip.mp4"


def test_bad_input_gives_errors_naming_the_path(root, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Oops/test\.json"):
        convert_vng(root, tmp_path / "out", splits=["test"])
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        load_oops_vng(tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match=r"no split file .* in .*root/Kinetics"):
        convert_point_vos(root, tmp_path / "out", dataset="Kinetics")
    (root / "Oops" / "videos" / "val" / "video_three.mp4").unlink()
    with pytest.raises(FormatError, match="video_three' not found; tried .*video_three.mp4"):
        convert_vng(root, tmp_path / "out", splits=["val"], embed_images=True)
    write_pv_annotations(root / "Oops" / "val.json", [_object("g" * 32, "video_one", {8: [(1, 1, 1, True)]})])
    shutil.copy(pv_video_path(root, "Oops", "train", "video_one"), pv_video_path(root, "Oops", "val", "video_one"))
    with pytest.raises(FormatError, match="frame 8 is outside the 8 frames of .*video_one.mp4"):
        convert_vng(root, tmp_path / "out", splits=["val"], embed_images=True)
    with pytest.raises(ValueError, match="image_format"):
        convert_vng(root, tmp_path / "out", image_format="gif")
    with pytest.raises(ValueError, match="contains the source root"):
        convert_vng(root, tmp_path, overwrite=True)
    assert not (tmp_path / "out").exists()


def test_failure_leaves_no_partial_output_and_keeps_the_existing_one(root, tmp_path):
    out = convert_vng(root, tmp_path / "converted")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError):
        convert_vng(root, out)
    (root / "Oops" / "videos" / "val" / "video_three.mp4").unlink()  # fails in the second split, after train
    with pytest.raises(FormatError):
        convert_vng(root, out, embed_images=True, overwrite=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted", "root"]  # no temporary directory left
    replaced = convert_vng(root, out, splits=["train"], overwrite=True)
    assert sorted(p.name.split("-")[0] for p in (replaced / "data").iterdir()) == ["train"]


def test_a_split_without_usable_objects_is_left_out(root, tmp_path):
    write_pv_annotations(root / "Oops" / "val.json", [_object("c" * 32, None, {0: [(1, 1, 1, True)]})])
    with pytest.warns(UserWarning, match="split 'val' left out"):
        out = convert_vng(root, tmp_path / "out")
    assert list(datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))) == ["train"]
    with pytest.raises(ValueError, match=r"no usable objects in splits val of .*root/Oops"), pytest.warns(UserWarning):
        load_oops_vng(root, split="val", cache_dir=tmp_path / "cache")


def test_converts_the_synthetic_sample_data(tmp_path):
    generate_sample_data = pytest.importorskip("vng.datasets.synthetic").generate_sample_data
    root = tmp_path / "sample"
    generate_sample_data(root, seed=0)
    out = convert_vng(root, tmp_path / "converted", dataset="Oops", embed_images=True)
    splits = [split["name"] for split in _front_matter(out / "README.md")["dataset_info"]["splits"]]
    assert splits == ["train", "val"]
    for split in splits:
        loaded = datasets.load_dataset(str(out), split=split, cache_dir=str(tmp_path / "hf"))
        assert [to_object_annotation(row) for row in loaded] == read_pv_annotations(root / "Oops" / f"{split}.json")
        for row in loaded:
            # the generator also writes every frame as a JPEG: the embedded frame must be closest to its own
            video_frames = sorted((root / "frames" / f"synthetic_{split}" / row["video_name"]).glob("*.jpg"))
            originals = np.stack([cv2.imread(str(path))[..., ::-1] for path in video_frames]).astype(np.int16)
            for frame in row["frames"]:
                errors = np.abs(originals - np.asarray(frame["image"], np.int16)).mean(axis=(1, 2, 3))
                assert errors.argmin() == frame["frame_index"]
                if frame["pseudo_mask"] is not None:
                    assert set(np.unique(np.asarray(frame["pseudo_mask"]))) <= {0, 1}
