"""Shared fixtures: tiny data the tests write themselves (never ../shared)."""

import copy
import json

import numpy as np
import pytest
from PIL import Image

FRAME_SIZE = (64, 48)  # width, height of the fixture keyframes

VIDLN_RECORD = {
    "vidln_id": 7, "dataset_id": "toy_train", "video_id": "vid0", "annotator_id": 3,
    "keyframe_names": ["000002", "000005", "000009"],
    "actor_narratives": [
        {
            "actor_name": "Dog", "keyframe_selection_indices": [0, 2],
            "recording_start_time_ms_since_epoch": 1000, "traces_start_time_ms_since_epoch": 900,
            "caption": "A brown dog chases the red ball.",
            "traces": [
                [{"x": 0.25, "y": 0.5, "time_ms_since_epoch": 1210, "kf_idx": 0},
                 {"x": 0.3125, "y": 0.5, "time_ms_since_epoch": 1250, "kf_idx": 0},
                 {"x": 0.375, "y": 0.5625, "time_ms_since_epoch": 1290, "kf_idx": 0}],
                [{"x": 0.5, "y": 0.25, "time_ms_since_epoch": 1620, "kf_idx": 2},
                 {"x": 0.75, "y": 0.25, "time_ms_since_epoch": 1700, "kf_idx": 2}],
            ],
            "noun_segments": [[2, 11], [27, 31]],
            "time_alignment": [
                {"end_ms": 100, "referenced_word": "A", "referenced_word_end_idx": 1,
                 "referenced_word_start_idx": 0, "start_ms": 0},
                {"end_ms": 200, "referenced_word": "brown", "referenced_word_end_idx": 7,
                 "referenced_word_start_idx": 2, "start_ms": 100},
                {"end_ms": 300, "referenced_word": "dog", "referenced_word_end_idx": 11,
                 "referenced_word_start_idx": 8, "start_ms": 200},
                {"end_ms": 400, "referenced_word": "chases", "referenced_word_end_idx": 18,
                 "referenced_word_start_idx": 12, "start_ms": 300},
                {"end_ms": 500, "referenced_word": "the", "referenced_word_end_idx": 22,
                 "referenced_word_start_idx": 19, "start_ms": 400},
                {"end_ms": 600, "referenced_word": "red", "referenced_word_end_idx": 26,
                 "referenced_word_start_idx": 23, "start_ms": 500},
                {"end_ms": 700, "referenced_word": "ball.", "referenced_word_end_idx": 32,
                 "referenced_word_start_idx": 27, "start_ms": 600},
            ],
            "recording_filename": "rec.wav",
        },
        {
            "actor_name": "background", "keyframe_selection_indices": [1],
            "recording_start_time_ms_since_epoch": 5000, "traces_start_time_ms_since_epoch": 5000,
            "caption": "In the background, there is grass.",
            "traces": [[{"x": 0.1, "y": 0.9, "time_ms_since_epoch": 5800, "kf_idx": 1}]],
            "noun_segments": [[7, 17], [28, 33]],
            "time_alignment": [
                {"end_ms": 800, "referenced_word": "grass.", "referenced_word_end_idx": 34,
                 "referenced_word_start_idx": 28, "start_ms": 700},
            ],
            "recording_filename": "rec2.wav",
        },
    ],
}


@pytest.fixture
def vidln_record():
    """A raw VidLN narrative (dict) — mutate freely, it is a fresh copy."""
    return copy.deepcopy(VIDLN_RECORD)


@pytest.fixture
def vidln_files(tmp_path, vidln_record):
    """(narratives.jsonl, frames_dir) with the fixture narrative and its keyframes as JPEGs."""
    path = tmp_path / "narratives.jsonl"
    path.write_text(json.dumps(vidln_record) + "\n")
    frames = tmp_path / "frames"
    folder = frames / vidln_record["dataset_id"] / vidln_record["video_id"]
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in vidln_record["keyframe_names"]:
        pixels = rng.integers(0, 255, (FRAME_SIZE[1], FRAME_SIZE[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.jpg")
    return path, frames


@pytest.fixture(scope="session")
def stcn_checkpoint(tmp_path_factory):
    """A tiny random STCN saved with save_pretrained (for `vng segment`)."""
    import torch

    from vng.models.stcn import STCN, STCNConfig

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("stcn") / "ckpt"
    STCN(STCNConfig.tiny()).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory):
    """The sample data (every format, seed 0) at a small size: 12-frame videos, 2 train / 1 val / 1 Kinetics video,
    4 annotated frames per object. Shared by the session: copy the files a test changes."""
    from vng.datasets.synthetic import SampleDataConfig, generate_sample_data
    from vng.points import CandidateConfig

    root = tmp_path_factory.mktemp("small_sample")
    generate_sample_data(root, seed=0, config=SampleDataConfig(
        num_frames=12, num_train_videos=2, num_val_videos=1, num_kinetics_videos=1, num_png_images=1,
        candidates=CandidateConfig(min_distance=5.0, num_frames=4)))
    return root
