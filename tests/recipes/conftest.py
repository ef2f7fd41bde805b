"""The recipes are scripts, not a package: their folder goes on the import path, so that the tests import them by
name (``import point_stcn``), as ``recipes/stcn_pseudo_masks.py`` does."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "recipes"))
