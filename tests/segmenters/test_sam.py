"""The segment-anything backend equals SamPredictor on the same (tiny, random) model; the official builders work."""

import numpy as np
import pytest
from segment_anything import SamPredictor

from vng.segmenters import Prompt, SamConfig, SamDecodingConfig, SamSegmenter
from vng.segmenters.base import ImageEmbedding

PROMPTS = [Prompt([[10, 20]], [1]), Prompt([[10, 20], [50, 60], [100, 80]], [1, 0, 1]),
           Prompt(np.zeros((0, 2)), [], box=[5, 5, 60, 70]), Prompt([[30, 30]], [1], box=[5, 5, 60, 70])]


def _predictor_answer(predictor: SamPredictor, prompt: Prompt, multimask: bool, mask_input=None):
    masks, scores, low_res = predictor.predict(
        point_coords=prompt.points if len(prompt.points) else None,
        point_labels=prompt.labels if len(prompt.points) else None, box=prompt.box,
        mask_input=None if mask_input is None else mask_input[None], multimask_output=multimask)
    best = int(np.argmax(scores))
    return masks[best], scores[best], low_res[best]


def tiny(**decoding) -> SamSegmenter:
    """The tiny SAM (the same weights every build) with other decoding options."""
    return SamSegmenter(SamConfig(model_type="tiny", decoding=SamDecodingConfig(**decoding)))


@pytest.mark.parametrize("multimask", [True, False])
def test_sam_segmenter_equals_sam_predictor(image, multimask):
    segmenter = tiny(multimask=multimask, refine_iterations=0)
    predictor = SamPredictor(segmenter.model)
    predictor.set_image(image)
    embedding = segmenter.cached_embed(image)
    np.testing.assert_allclose(embedding.features.numpy(), predictor.features.numpy(), atol=1e-5)
    for prompt in PROMPTS:
        ambiguous = len(prompt.points) + 2 * (prompt.box is not None) <= 2  # one click, or a lone box
        mask, score, low_res = _predictor_answer(predictor, prompt, multimask and ambiguous)
        ours = segmenter.predict(embedding, prompt)
        np.testing.assert_allclose(ours.low_res_logits, low_res, atol=1e-4)
        assert ours.score == pytest.approx(float(score), abs=1e-5)
        assert (ours.mask != mask).mean() < 1e-3  # logits within 1e-4 may still straddle 0 at a pixel


def test_refinement_feeds_the_low_res_logits_back(tiny_sam, image):
    embedding = tiny_sam.cached_embed(image)
    prompt = PROMPTS[1]
    refined = tiny(refine_iterations=2).predict(embedding, prompt)
    first = tiny_sam.predict(embedding, prompt)
    second = tiny_sam.predict(embedding, Prompt(prompt.points, prompt.labels, mask=first.low_res_logits))
    third = tiny_sam.predict(embedding, Prompt(prompt.points, prompt.labels, mask=second.low_res_logits))
    np.testing.assert_allclose(refined.low_res_logits, third.low_res_logits, atol=1e-5)
    assert not np.allclose(first.low_res_logits, third.low_res_logits)
    predictor = SamPredictor(tiny_sam.model)
    predictor.set_image(image)
    _, _, expected = _predictor_answer(predictor, prompt, False, mask_input=first.low_res_logits)
    np.testing.assert_allclose(second.low_res_logits, expected, atol=1e-4)
    # A single click keeps SAM's best of three: refining it would replace that with the single-mask answer.
    click = Prompt([[10, 20]], [1])
    np.testing.assert_array_equal(tiny(refine_iterations=2).predict(embedding, click).low_res_logits,
                                  tiny_sam.predict(embedding, click).low_res_logits)


def test_segment_returns_a_mask_of_the_image_size(tiny_sam, image):
    mask, score = tiny_sam.segment(image, [[10, 20]], [1])
    assert mask.shape == image.shape[:2] and mask.dtype == bool and isinstance(score, float)
    assert isinstance(tiny_sam.cached_embed(image), ImageEmbedding)


def test_config_rejects_unknown_model_types():
    with pytest.raises(ValueError, match="model_type"):
        SamConfig(model_type="vit_x")


def test_official_builder_makes_vit_b_with_random_weights():
    """The vit_b architecture of the official checkpoints (a forward pass at 1024² is too slow for a CPU test)."""
    segmenter = SamSegmenter(SamConfig(model_type="vit_b"))
    assert 90e6 < sum(p.numel() for p in segmenter.model.parameters()) < 95e6
    assert (segmenter.input_size, segmenter.low_res_size) == (1024, 256)
