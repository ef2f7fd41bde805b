"""The segmenter interface: prompts, SAM's preprocessing and coordinate transform, the embedding cache."""

import numpy as np
import pytest
import torch
from segment_anything.utils.transforms import ResizeLongestSide

from vng.segmenters.base import (ImageEmbedding, Prediction, Prompt, Segmenter, preprocess_image, resized_size,
                                 transform_coords, upscale_logits)


def test_prompt_validates_and_normalises():
    prompt = Prompt([[1, 2], [3, 4]], [1, 0], box=[0, 0, 5, 6])
    assert prompt.points.dtype == np.float32 and prompt.labels.dtype == np.int8 and prompt.box.shape == (4,)
    assert len(Prompt(np.zeros((0, 2)), [], box=[0, 0, 1, 1]).points) == 0
    with pytest.raises(ValueError, match="labels"):
        Prompt([[1, 2]], [1, 0])
    with pytest.raises(ValueError, match="1 \\(foreground\\) or 0"):
        Prompt([[1, 2]], [-1])  # ambiguous points are not prompts
    with pytest.raises(ValueError, match="box"):
        Prompt([[1, 2]], [1], box=[5, 0, 1, 1])
    with pytest.raises(ValueError, match="at least one point or a box"):
        Prompt(np.zeros((0, 2)), [])
    with pytest.raises(ValueError, match="low-resolution"):
        Prompt([[1, 2]], [1], mask=np.zeros((4, 5)))


@pytest.mark.parametrize("size", [(90, 130), (480, 854), (130, 90), (64, 64)])
def test_preprocessing_equals_segment_anything(tiny_sam, size):
    """Resize (PIL bilinear), normalise, pad: what SamPredictor.set_image feeds the encoder."""
    image = np.random.default_rng(1).integers(0, 255, (*size, 3), dtype=np.uint8)
    pixels, input_size = preprocess_image(image, 1024)
    transform = ResizeLongestSide(1024)
    resized = transform.apply_image(image)
    expected = tiny_sam.model.preprocess(torch.as_tensor(resized).permute(2, 0, 1)[None].float()).numpy()
    assert input_size == resized.shape[:2] == resized_size(*size, 1024)
    np.testing.assert_allclose(pixels, expected, atol=1e-5)
    xy = np.array([[0, 0], [size[1] - 1, size[0] - 1], [10.5, 3.25]], np.float32)
    np.testing.assert_allclose(transform_coords(xy, size, input_size), transform.apply_coords(xy, size), rtol=1e-6)


def test_upscale_logits_equals_postprocess_masks(tiny_sam):
    low_res = np.random.default_rng(2).normal(size=(256, 256)).astype(np.float32)
    expected = tiny_sam.model.postprocess_masks(torch.from_numpy(low_res)[None, None], (709, 1024), (90, 130))
    np.testing.assert_allclose(upscale_logits(low_res, (709, 1024), (90, 130), 1024), expected[0, 0].numpy(),
                               atol=1e-6)


class CountingSegmenter(Segmenter):
    """Encodes to the image mean and answers a mask of the prompt's first point; counts the encoder calls."""

    def __init__(self):
        super().__init__()
        self.encoded = 0

    def embed(self, image):
        self.encoded += 1
        return ImageEmbedding(float(image.mean()), image.shape[:2], image.shape[:2])

    def predict(self, embedding, prompt):
        mask = np.zeros(embedding.original_size, bool)
        x, y = prompt.points[0].astype(int)
        mask[y, x] = True
        return Prediction(mask, embedding.features, np.zeros((4, 4), np.float32))


def test_segment_caches_the_last_image_embedding(image):
    segmenter = CountingSegmenter()
    mask, score = segmenter.segment(image, [[3, 4]], [1])
    assert mask.shape == image.shape[:2] and mask[4, 3] and mask.sum() == 1 and score == pytest.approx(image.mean())
    segmenter.segment(image.copy(), [[5, 6]], [1])  # same pixels, another array: no new encoding
    assert segmenter.encoded == 1
    other = image.copy()
    other[0, 0, 0] ^= 1
    segmenter.segment(other, [[5, 6]], [1])
    assert segmenter.encoded == 2
    predictions = segmenter.segment_objects(image, [Prompt([[1, 1]], [1]), Prompt([[2, 7]], [1])])
    assert segmenter.encoded == 3 and [p.mask[7, 2] for p in predictions] == [False, True]
    assert segmenter.segment_objects(image, []) == []
    with pytest.raises(ValueError, match="uint8"):
        segmenter.segment(image.astype(np.float32), [[1, 1]], [1])
