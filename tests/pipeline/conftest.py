"""Fixtures of the pipeline tests; their helpers live in ``stories.py``. This folder, ``recipes/`` (the closed loop
trains with ``recipes/point_stcn.py``) and the repository root (``annotation/``, the verification tool that reads the
task folders) go on the import path, as in the recipes' and the tool's tests."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "recipes"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stories import actor, line, narrative, write_clip  # noqa: E402

from vng.io.vidln import write_narratives  # noqa: E402
from vng.types import Narrative  # noqa: E402


@pytest.fixture
def kitchen() -> Narrative:
    """A woman who holds a cake, then puts the cake on a table while walking to the left, and a background actor."""
    return narrative(
        actor("Woman",
              "A woman is holding a cake and then putting the cake on a white table while walking to the left.",
              {"woman": [(0, line(10, 20, 10))], "cake": [(0, line(30, 33, 20))], "cake#2": [(2, line(5, 40, 30))],
               "table": [(1, line(10, 50, 40))], "left": [(1, line(0, 60, 5))]}),
        actor("background", "In the background, there is a grey wall.", {"wall": [(1, line(0, 60, 2))]}))


@pytest.fixture
def narrative_files(tmp_path, kitchen):
    """(narratives.jsonl, videos dir) with the kitchen narrative and a second one whose video is missing."""
    videos = tmp_path / "videos"
    write_clip(videos / "toy_train" / "clip.mp4")
    other = narrative(actor("Dog", "A dog runs.", {"dog": [(0, line(5, 30, 20))]}), video_id="gone", vidln_id=2)
    path = tmp_path / "narratives.jsonl"
    write_narratives(path, [kitchen, other])
    return path, videos
