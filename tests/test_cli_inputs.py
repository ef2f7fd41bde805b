"""The CLI on valid and invalid input (issue 11): valid input runs, values are checked against the frames they refer
to, outputs never destroy inputs or mix runs, and every refusal is ``error: ...`` with exit code 2."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vng.cli import app
from vng.io.common import sha256_of
from vng.io.outputs import INCOMPLETE, MANIFEST, read_manifest
from vng.io.video import write_video


def run(*args):
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.output
    return result


def refused(result, *fragments):
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture
def oops(small_sample, tmp_path):
    """A copy of the sample's Oops/val.json beside links to its videos: a release root whose annotations tests edit."""
    root = tmp_path / "release"
    (root / "Oops").mkdir(parents=True)
    shutil.copy(small_sample / "Oops" / "val.json", root / "Oops" / "val.json")
    (root / "Oops" / "videos").symlink_to(small_sample / "Oops" / "videos")
    return root


def _edit_first_point(path, **changes):
    data = json.loads(path.read_text())
    record = next(iter(data.values()))
    record["annotated_points"][0].update(changes)
    path.write_text(json.dumps(data))
    return next(iter(data))


def test_grabcut_pseudo_masks_write_their_index_and_resume(oops):
    # into the release root itself, as the recipes' presets expect them (<root>/Oops/pseudo_masks/val)
    command = ["pseudo-masks", "--annotations", oops / "Oops" / "val.json", "--frames", oops, "--out", oops,
               "--backend", "grabcut"]
    result = run(*command)
    assert result.exit_code == 0, result.output
    index = json.loads((oops / "Oops" / "pseudo_masks" / "val" / "index.json").read_text())
    assert index["masks"] and index["backend"] == "grabcut" and "grabcut" in index
    assert index["inputs"]["annotations"]["sha256"] == sha256_of(oops / "Oops" / "val.json")  # what produced it
    result = run(*command)
    assert result.exit_code == 0 and "0 masks written" in result.output


@pytest.mark.parametrize("changes, field, message", [
    ({"x": 160}, "x", "point (160, "),  # x = frame width: outside; the pixel of x = 159 is the last
    ({"y": 10 ** 12}, "y", "is outside the 160x128 frame"),
    ({"frame_id": "000012"}, "frame_id", "frame 000012 does not exist"),  # the videos have 12 frames
])
def test_points_are_checked_against_the_videos(oops, tmp_path, changes, field, message):
    object_id = _edit_first_point(oops / "Oops" / "val.json", **changes)
    result = run("pseudo-masks", "--annotations", oops / "Oops" / "val.json", "--frames", oops, "--out",
                 tmp_path / "o", "--backend", "grabcut")
    refused(result, "val.json", f"record '{object_id}'", f".{field}'", message)
    assert not (tmp_path / "o" / "Oops").exists()  # refused before any work
    masks = tmp_path / "gt"
    shutil.copytree(oops / "Oops" / "videos" / "val", tmp_path / "videos")
    masks.mkdir()
    result = run("benchmark", "--method", "flow", "--dataset", "pv-oops", "--root", tmp_path / "videos", "--points",
                 oops / "Oops" / "val.json", "--masks", masks, "--out", tmp_path / "bench")
    refused(result, f"record '{object_id}'", message)


def test_duplicate_object_ids_are_errors_not_collapsed(small_sample, tmp_path):
    lines = (small_sample / "Kinetics" / "train.jsonl").read_text().splitlines()
    (tmp_path / "Kinetics").mkdir()
    (tmp_path / "Kinetics" / "train.jsonl").write_text("\n".join(lines + lines[:1]) + "\n")
    result = run("pseudo-masks", "--annotations", tmp_path / "Kinetics" / "train.jsonl", "--frames", small_sample,
                 "--out", tmp_path / "o", "--backend", "grabcut")
    refused(result, f"train.jsonl:{len(lines) + 1}", "was already given on line 1")
    text = (small_sample / "Oops" / "val.json").read_text()
    first = next(iter(json.loads(text)))
    (tmp_path / "val.json").write_text(text.rstrip()[:-1] + f', "{first}": {{}}}}')  # the same key twice
    result = run("pseudo-masks", "--annotations", tmp_path / "val.json", "--frames", small_sample, "--out",
                 tmp_path / "o", "--backend", "grabcut")
    refused(result, f"key '{first}' appears twice")


def test_a_rerun_with_other_inputs_is_refused_or_redone(oops, tmp_path):
    annotations, out = oops / "Oops" / "val.json", tmp_path / "o"
    command = ["pseudo-masks", "--annotations", annotations, "--frames", oops, "--out", out, "--backend", "grabcut"]
    assert run(*command).exit_code == 0
    folder = out / "Oops" / "pseudo_masks" / "val"
    data = json.loads(annotations.read_text())
    dropped = next(iter(data))
    del data[dropped]  # corrected annotations: one object fewer
    annotations.write_text(json.dumps(data))
    refused(run(*command), "holds the results of another run", "input annotations", "--overwrite")
    assert (folder / dropped).is_dir()  # nothing changed
    result = run(*command, "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (folder / dropped).exists()  # the stale masks are gone, not mixed in
    index = json.loads((folder / "index.json").read_text())
    assert {r["object_id"] for r in index["masks"]} == set(data)
    assert read_manifest(folder)["complete"] and not (folder / INCOMPLETE).exists()


def test_outputs_never_replace_inputs(small_sample, tmp_path):
    narratives = tmp_path / "train.jsonl"
    shutil.copy(small_sample / "vidln" / "train.jsonl", narratives)
    before = narratives.read_bytes()
    refused(run("parse-narratives", narratives, "--frames", small_sample / "frames", "--out", narratives,
                "--source", "noun_segments"), "is an input of this command")
    assert narratives.read_bytes() == before
    refused(run("simulate-points", "--dataset", "davis", "--root", small_sample / "DAVIS", "--out", narratives.parent),
            "--out must end in .json")


def test_an_existing_file_where_a_folder_is_expected(small_sample, oops, tmp_path):
    file = tmp_path / "a_file"
    file.write_text("keep")
    checkpoint = tmp_path / "rf"
    checkpoint.mkdir()
    (checkpoint / "tokenizer_config.json").write_text("{}")
    video = small_sample / "Oops" / "videos" / "val" / "val_000.mp4"
    davis = small_sample / "DAVIS"
    for command in (
            ["sample-data", "--out", file],
            ["evaluate", "--gt", davis, "--pred", davis / "Annotations" / "480p", "--out", file],
            ["pseudo-masks", "--annotations", oops / "Oops" / "val.json", "--frames", oops, "--out", file,
             "--backend", "grabcut"],
            ["annotate", "prepare", small_sample / "vidln" / "train.jsonl", "--videos", small_sample / "videos",
             "--out", file, "--backend", "grabcut"],
            ["annotate", "export", small_sample, "--verdicts", small_sample / "index.json", "--out", file],
            ["benchmark", "--method", "flow", "--root", davis, "--points", oops / "Oops" / "val.json", "--out", file],
            ["segment", video, "--points", "5,5,1", "--checkpoint", checkpoint, "--out", file],
            ["ground", video, "--caption", "a ball", "--checkpoint", checkpoint, "--out", file]):
        refused(run(*command), "is an existing file; a folder is expected")
        assert file.read_text() == "keep"


@pytest.fixture
def frames_160x128(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(rng.integers(0, 255, (128, 160, 3), dtype=np.uint8)).save(folder / f"{index:05d}.png")
    return folder


def test_segment_points_lie_in_pixel_floor_x_floor_y(stcn_checkpoint, frames_160x128, tmp_path):
    common = ["--checkpoint", stcn_checkpoint, "--device", "cpu", "--size", "32"]
    result = run("segment", frames_160x128, "--points", "159.9,127.9,1", "--out", tmp_path / "a", *common)
    assert result.exit_code == 0, result.output  # pixel (159, 127): the last pixel of a 160x128 frame
    refused(run("segment", frames_160x128, "--points", "160,10,1", "--out", tmp_path / "b", *common), "outside")
    for points in ("10,10,1.7", "nan,10,1"):  # 1.7 is not silently label 1
        result = run("segment", frames_160x128, "--points", points, "--out", tmp_path / "b", *common)
        refused(result, "--points must be", "labels 1, 0 or -1")
        assert result.output.count("error:") == 1, result.output
    refused(run("segment", frames_160x128, "--frame", "4", "--points", "10,10,1", "--out", tmp_path / "b", *common),
            "frame 4 is outside the 4 frames")


def test_segment_refuses_a_video_that_decodes_short(stcn_checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    video = tmp_path / "clip.mp4"
    write_video(video, [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(20)])
    data = bytearray(video.read_bytes())
    data[len(data) * 2 // 5:len(data) * 3 // 5] = bytes(len(data) * 3 // 5 - len(data) * 2 // 5)
    video.write_bytes(bytes(data))
    result = run("segment", video, "--points", "5,5,1", "--checkpoint", stcn_checkpoint, "--out", tmp_path / "o",
                 "--device", "cpu", "--size", "32")
    refused(result, "clip.mp4", "of the 20 frames the container lists: the file is damaged")
    assert not list((tmp_path / "o").glob("*.png")) if (tmp_path / "o").exists() else True


def test_segment_runs_never_mix_and_a_killed_run_resumes(stcn_checkpoint, frames_160x128, tmp_path, monkeypatch):
    import vng.inference

    out = tmp_path / "o"
    out.mkdir()
    (out / ".00001.png.abcd1234.tmp").write_bytes(b"left by a killed run")
    command = ["segment", frames_160x128, "--points", "50,50,1", "--checkpoint", stcn_checkpoint, "--out", out,
               "--device", "cpu", "--size", "32"]
    original = vng.inference.write_segmentation

    def killed(session, folder):
        (folder / "00000.png").write_bytes(b"")  # one mask, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(vng.inference, "write_segmentation", killed)
    run(*command)
    assert (out / INCOMPLETE).is_file() and not read_manifest(out)["complete"]
    assert not (out / ".00001.png.abcd1234.tmp").exists()  # cleaned by the next run
    monkeypatch.setattr(vng.inference, "write_segmentation", original)
    result = run(*command)  # the same command resumes
    assert result.exit_code == 0, result.output
    assert not (out / INCOMPLETE).exists() and read_manifest(out)["complete"]
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:05d}.png" for i in range(4)]
    assert "holds this run's masks already" in run(*command).output
    refused(run(*command[:3], "60,60,1", *command[4:]), "holds the results of another run", "setting points")
    result = run(*command[:3], "60,60,1", *command[4:], "--overwrite")
    assert result.exit_code == 0 and json.loads((out / MANIFEST).read_text())["settings"]["points"] == ["60,60,1"]


def test_a_corrupt_keyframe_is_a_located_error(vidln_files, tmp_path):
    narratives, frames = vidln_files
    keyframe = next((frames / "toy_train" / "vid0").glob("000005.jpg"))
    keyframe.write_bytes(keyframe.read_bytes()[:200])  # the header reads, the pixels do not
    result = run("parse-narratives", narratives, "--frames", frames, "--out", tmp_path / "nouns.jsonl",
                 "--source", "noun_segments", "--visualize", tmp_path / "overlays")
    refused(result, "000005.jpg: cannot read keyframe")


def test_the_dataset_loaders_are_importable_from_the_package():
    import subprocess
    import sys

    # in a fresh interpreter: importing vng.datasets must not pull in the heavy `datasets` and torch packages
    code = ("import sys, vng.datasets as d; assert 'datasets' not in sys.modules and 'torch' not in sys.modules; "
            "from vng.datasets import load_oops_vng, load_point_vos, convert_vng, PointVOSClipDataset; "
            "import vng.datasets.hf as hf; assert load_oops_vng is hf.load_oops_vng")
    subprocess.run([sys.executable, "-c", code], check=True)
