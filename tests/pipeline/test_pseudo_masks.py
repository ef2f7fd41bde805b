"""Pseudo-masks on the sample data with a tiny exported SAM: the CLI, both layouts, resuming, splitting the work over
processes, the VNG conversion reading the masks, and keyframe masks from mouse traces."""

import json
import shutil

import datasets
import numpy as np
import pytest
from typer.testing import CliRunner

from vng.cli import app
from vng.datasets.hf import convert_vng
from vng.datasets.simulate import SimulationConfig, simulate_davis
from vng.datasets.synthetic import SampleDataConfig, generate_sample_data
from vng.io.common import FormatError
from vng.io.masks import read_mask_png
from vng.io.pointvos import pseudo_mask_path, read_pv_annotations, write_pv_annotations
from vng.pipeline.pseudo_masks import PseudoMaskConfig, index_path, make_pseudo_masks, merge_index, open_video
from vng.points import CandidateConfig
from vng.segmenters import OnnxSamConfig, OnnxSamSegmenter, PointPromptConfig

pytest.importorskip("segment_anything")
from vng.segmenters.sam import SamConfig, SamSegmenter, export_onnx  # noqa: E402

# Small: 2 train videos, 4 annotated frames per object.
CONFIG = SampleDataConfig(num_frames=12, num_train_videos=2, num_val_videos=1, num_kinetics_videos=1,
                          num_png_images=1,
                          candidates=CandidateConfig(min_distance=5.0, num_frames=4))
SIZE = (CONFIG.height, CONFIG.width)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    generate_sample_data(root, seed=0, config=CONFIG)
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> OnnxSamConfig:
    folder = tmp_path_factory.mktemp("tiny_onnx")
    return export_onnx(SamSegmenter(SamConfig(model_type="tiny")).model, folder / "encoder.onnx",
                       folder / "decoder.onnx")


@pytest.fixture(scope="module")
def segmenter(model) -> OnnxSamSegmenter:
    return OnnxSamSegmenter(model)


def _backend(model: OnnxSamConfig) -> list[str]:
    return ["--encoder", model.encoder, "--decoder", model.decoder, "--threads", "1"]


def _index(path) -> list[dict]:
    return json.loads(path.read_text())["masks"]


def test_cli_writes_one_mask_per_object_and_frame_and_resumes(sample, model, tmp_path):
    out = tmp_path / "out"
    command = ["pseudo-masks", "--annotations", str(sample / "Oops" / "train.json"), "--frames", str(sample),
               "--out", str(out), *_backend(model)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    objects = read_pv_annotations(sample / "Oops" / "train.json")
    expected = {(obj.object_id, frame.frame_index) for obj in objects for frame in obj.frames}
    index_file = index_path(out, layout="pointvos", dataset="Oops", split="train")
    index = _index(index_file)
    assert {(r["object_id"], r["frame_index"]) for r in index} == expected
    for record in index:
        path = pseudo_mask_path(out, "Oops", "train", record["object_id"], record["frame_index"])
        assert record["path"] == path.relative_to(out).as_posix()
        mask = read_mask_png(path)
        assert mask.shape == SIZE and set(np.unique(mask)) <= {0, 1} and int(mask.sum()) == record["area"]
        assert isinstance(record["score"], float) and record["num_foreground"] > 0 and record["num_background"] > 0
    header = json.loads(index_file.read_text())
    assert (header["dataset"], header["split"], header["backend"]) == ("Oops", "train", "onnx-sam")
    assert header["prompt"]["use_background"] is True
    # Resume: nothing to do; after deleting one mask only its frame is segmented again.
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0 and "process 0: 0 masks written" in result.output
    victim = index[3]
    pseudo_mask_path(out, "Oops", "train", victim["object_id"], victim["frame_index"]).unlink()
    result = CliRunner().invoke(app, command)
    same_frame = [r for r in index if (r["video_name"], r["frame_index"]) == (victim["video_name"],
                                                                            victim["frame_index"])]
    assert f"process 0: {len(same_frame)} masks written" in result.output
    assert _index(index_file) == index


def test_validation_prompts_use_foreground_points_only(sample, model, tmp_path):
    result = CliRunner().invoke(app, ["pseudo-masks", "--annotations", str(sample / "Oops" / "val.json"), "--frames",
                                      str(sample), "--out", str(tmp_path), "--foreground-only", *_backend(model)])
    assert result.exit_code == 0, result.output
    index = _index(index_path(tmp_path, layout="pointvos", dataset="Oops", split="val"))
    assert index and all(r["num_background"] == 0 for r in index)
    assert json.loads(index_path(tmp_path, layout="pointvos", dataset="Oops",
                                 split="val").read_text())["prompt"]["use_background"] is False


def test_processes_split_the_videos_and_merge_to_the_single_process_result(sample, segmenter, tmp_path):
    objects = read_pv_annotations(sample / "Oops" / "train.json")
    single = make_pseudo_masks(objects, sample, tmp_path / "one", segmenter, dataset="Oops", split="train")
    shares = [make_pseudo_masks(objects, sample, tmp_path / "two", segmenter, dataset="Oops", split="train",
                                process_index=rank, num_processes=2) for rank in range(2)]
    assert {r["video_name"] for r in shares[0]}.isdisjoint({r["video_name"] for r in shares[1]})
    assert all(shares)
    merged = [_index(merge_index(folder, layout="pointvos", dataset="Oops", split="train")) for folder in
              (tmp_path / "one", tmp_path / "two")]
    assert merged[0] == merged[1] and len(merged[0]) == len(single)
    for record in single:
        assert (tmp_path / "one" / record["path"]).read_bytes() == (tmp_path / "two" / record["path"]).read_bytes()


def test_masks_feed_the_oops_vng_conversion(sample, segmenter, tmp_path):
    root = tmp_path / "release"
    (root / "Oops").mkdir(parents=True)
    shutil.copy(sample / "Oops" / "train.json", root / "Oops" / "train.json")
    shutil.copytree(sample / "Oops" / "videos", root / "Oops" / "videos")
    objects = read_pv_annotations(root / "Oops" / "train.json")
    make_pseudo_masks(objects, root, root, segmenter, dataset="Oops", split="train")
    merge_index(root, layout="pointvos", dataset="Oops", split="train")
    converted = convert_vng(root, tmp_path / "converted", splits=["train"], embed_images=True)
    rows = datasets.load_dataset(str(converted), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(rows) == len(objects)
    for row in rows:
        for frame in row["frames"]:
            mask = np.asarray(frame["pseudo_mask"])
            expected = read_mask_png(pseudo_mask_path(root, "Oops", "train", row["object_id"], frame["frame_index"]))
            assert np.array_equal(mask, expected)


def test_davis_layout_from_frame_folders(sample, model, tmp_path):
    davis = sample / "DAVIS"
    objects = simulate_davis(davis, year="2017", split="train", config=SimulationConfig(num_frames=2))
    annotations = tmp_path / "PV-DAVIS" / "train.json"
    write_pv_annotations(annotations, objects)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["pseudo-masks", "--annotations", str(annotations), "--frames",
                                      str(davis / "JPEGImages" / "480p"), "--out", str(out), "--layout", "davis",
                                      *_backend(model)])
    assert result.exit_code == 0, result.output
    index = _index(out / "index.json")
    assert len(index) == sum(len(obj.frames) for obj in objects)
    for obj in objects:
        sequence = obj.video_name
        ids = {r["object_id"]: r["label"] for r in index if r["video_name"] == sequence}
        video_objects = [o.object_id for o in objects if o.video_name == sequence]
        assert ids == {object_id: position + 1 for position, object_id in enumerate(video_objects)}
        for frame in obj.frames:
            path = out / "Annotations" / sequence / f"{frame.frame_index:05d}.png"  # DAVIS frame names
            labels = read_mask_png(path)
            assert labels.shape == SIZE and set(np.unique(labels)) <= set(range(len(video_objects) + 1))
            record = next(r for r in index if r["object_id"] == obj.object_id and
                          r["frame_index"] == frame.frame_index)
            assert record["path"] == path.relative_to(out).as_posix()
            assert record["area"] == int((labels == record["label"]).sum())


def test_a_frame_without_foreground_points_gets_an_empty_mask(sample, segmenter, tmp_path):
    from vng.types import FramePoints, ObjectAnnotation, Points

    video = read_pv_annotations(sample / "Oops" / "train.json")[0].video_name
    absent = FramePoints(2, Points([[5, 5], [60, 40]], [0, -1]))
    present = FramePoints(3, Points([[80, 60]], [1]))
    obj = ObjectAnnotation("x" * 32, video, "thing", "", "", (absent, present))
    records = make_pseudo_masks([obj], sample, tmp_path, segmenter, dataset="Oops", split="train",
                                config=PseudoMaskConfig(PointPromptConfig()))
    assert [(r["frame_index"], r["score"] is None, r["num_foreground"]) for r in records] == [(2, True, 0),
                                                                                              (3, False, 1)]
    assert read_mask_png(tmp_path / records[0]["path"]).max() == 0


def test_open_video_names_every_place_it_looked(tmp_path):
    with pytest.raises(FormatError, match="video 'nope' not found; tried .*Oops/videos/train/nope.mp4, .*/nope.mp4, "
                                          ".*/nope$"):
        open_video(tmp_path, "Oops", "train", "nope")
    # a name with the split prefix (the release's README example) is tried with and without it, then the object's
    # extracted frames
    with pytest.raises(FormatError, match=r"tried .*/Oops/videos/train/nope\.mp4, .*/Oops/videos/train/train/nope\.mp4, "
                                          r".*/Oops/train/JPEGImages/abc, "):
        open_video(tmp_path, "Oops", "train", "train/nope", "abc")
