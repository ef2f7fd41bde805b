"""The segmenter interface: prompts, SAM's preprocessing and coordinate transform, the embedding cache, the focus
(zoom-in) pass."""

import dataclasses

import numpy as np
import pytest
import torch
from segment_anything.utils.transforms import ResizeLongestSide

from vng.segmenters import base
from vng.segmenters.base import (FocusConfig, ImageEmbedding, Prediction, Prompt, SamDecodingConfig, SamStyleSegmenter,
                                 Segmenter, downscale_logits, focus_crop, preprocess_image, resized_size,
                                 transform_coords, upscale_logits)
from vng.segmenters.onnx_sam import OnnxSamSegmenter


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

    def settings(self):
        return {}

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


def test_focus_crop_is_the_grown_square_around_the_object_clipped_to_the_image():
    mask = np.zeros((100, 200), bool)
    mask[40:60, 50:70] = True  # x 50..69, y 40..59
    prompt = Prompt([[80, 50], [190, 5]], [1, 0])  # the fg point widens the box to x 50..80; bg points do not count
    # box x [50, 81), y [40, 60): side 31, x1.5 → 46 (46.5 rounds to even), centred on (65.5, 50)
    assert focus_crop(mask, prompt, FocusConfig(expand=1.5)) == (42, 27, 88, 73)
    # near the border the square is shifted inside the image, not shrunk: box x [2, 70), y [40, 100), side 68
    assert focus_crop(mask, Prompt([[2, 95]], [1]), FocusConfig(expand=1.0)) == (2, 32, 70, 100)
    # a box prompt is object evidence as well (its corners are pixels: x [10, 71)); a crop as large as the image is
    # no zoom
    assert focus_crop(mask, Prompt([[60, 50]], [1], box=[10, 30, 70, 60]), FocusConfig(expand=1.0)) == (10, 15, 71, 76)
    assert focus_crop(mask, prompt, FocusConfig(expand=7.0)) is None
    assert focus_crop(np.zeros_like(mask), Prompt([[5, 5]], [0]), FocusConfig()) is None  # nothing marks the object
    with pytest.raises(ValueError, match="expand"):
        FocusConfig(expand=0.5)
    with pytest.raises(ValueError, match="min_agreement"):
        FocusConfig(min_agreement=1.5)


def test_downscale_logits_inverts_upscale_logits():
    yy, xx = np.mgrid[:90, :130]
    logits = (20.0 - np.hypot(xx - 60, yy - 40)).astype(np.float32)  # a disk of radius 20 px, logits linear in r
    low_res = downscale_logits(logits, (709, 1024), 1024, 256)
    assert low_res.shape == (256, 256) and (low_res[180:] == -20.0).all()  # rows below the image: padding
    back = upscale_logits(low_res, (709, 1024), (90, 130), 1024)
    np.testing.assert_allclose(back[5:-5, 5:-5], logits[5:-5, 5:-5], atol=0.5)  # bilinear but for the cone's tip
    assert ((back > 0) == (logits > 0)).all()


class DiskSam(SamStyleSegmenter):
    """A SAM-style backend without a model: the answer is a disk of radius 3 low-res cells around the fg points'
    mean, whatever the scale, so a focus pass on a crop (encoded larger) answers a smaller disk at the same spot;
    with ``echo_mask``, a mask prompt is answered with itself."""

    input_size, low_res_size = 64, 16

    def __init__(self, decoding, echo_mask=False):
        super().__init__(decoding)
        self.encoded = []
        self.echo_mask = echo_mask

    def _encode(self, pixels):
        self.encoded.append(pixels.shape)
        return pixels.shape  # no features: the answer depends on the prompt alone

    def _decode(self, embedding, coords, labels, box, mask_input, multimask):
        if self.echo_mask and mask_input is not None:
            return np.ones(1, np.float32), mask_input[None]
        centre = coords[labels == 1].mean(0) * self.low_res_size / self.input_size
        yy, xx = np.mgrid[:self.low_res_size, :self.low_res_size] + 0.5
        disk = np.hypot(xx - centre[0], yy - centre[1]) < 3.0
        return np.ones(1, np.float32), np.where(disk, 10.0, -10.0)[None].astype(np.float32)


def test_focus_pass_maps_points_and_pastes_the_crop_back_exactly():
    image = np.zeros((200, 300, 3), np.uint8)
    prompt = Prompt([[100, 80], [104, 84], [290, 190]], [1, 1, 0])  # the bg point lies outside the crop
    first = DiskSam(SamDecodingConfig(refine_iterations=0, focus=None)).segment_objects(image, [prompt])[0]
    focused_segmenter = DiskSam(SamDecodingConfig(refine_iterations=0, focus=FocusConfig(1.5, min_agreement=0.0)))
    focused = focused_segmenter.segment_objects(image, [prompt])[0]
    assert focused.mask.shape == first.mask.shape == (200, 300) and focused.low_res_logits.shape == (16, 16)
    assert len(focused_segmenter.encoded) == 2  # the image, then the crop

    def centre(mask):
        return np.argwhere(mask)[:, ::-1].mean(0)

    # the disks sit on the fg points' mean (pixel centres: x - 0.5) in both passes: the crop offset is undone exactly
    np.testing.assert_allclose(centre(first.mask), [101.5, 81.5], atol=1.0)
    np.testing.assert_allclose(centre(focused.mask), [101.5, 81.5], atol=1.0)
    # radius 3 cells: 56 px at 300 px → 64, about 31 px in the crop of 1.5 x 113 px → 64
    assert 0.8 < np.sqrt(first.mask.sum() / np.pi) / 56.25 < 1.1
    assert 0.8 < np.sqrt(focused.mask.sum() / np.pi) / (3 * 4 * 169 / 64) < 1.1
    assert not (focused.mask & ~first.mask).any()
    # the low-res logits are those of the pasted answer in the image's own (coarser) frame, not the crop's
    again = upscale_logits(focused.low_res_logits, (43, 64), (200, 300), 64) > 0
    assert (again & focused.mask).sum() / (again | focused.mask).sum() > 0.85
    # the disks' IoU is (31 / 56)² ≈ 0.3: below the default agreement, the first answer stands
    kept = DiskSam(SamDecodingConfig(refine_iterations=0, focus=FocusConfig(1.5))).segment_objects(image, [prompt])[0]
    np.testing.assert_array_equal(kept.mask, first.mask)
    np.testing.assert_array_equal(kept.low_res_logits, first.low_res_logits)


def test_focus_pass_prompts_the_crop_with_the_first_answer_in_place():
    """A decoder echoing its mask prompt gives the first answer back: resampled into the crop and pasted back, in
    place (the crop's low-res frame is 16 cells for 169 px here, finer than the image's: the disk survives)."""
    image = np.zeros((200, 300, 3), np.uint8)
    prompt = Prompt([[100, 80], [104, 84]], [1, 1])
    first = DiskSam(SamDecodingConfig(refine_iterations=0, focus=None)).segment_objects(image, [prompt])[0]
    echoed = DiskSam(SamDecodingConfig(refine_iterations=0, focus=FocusConfig(1.5)), echo_mask=True)
    again = echoed.segment_objects(image, [prompt])[0].mask
    assert (again & first.mask).sum() / (again | first.mask).sum() > 0.97


def test_focus_pass_of_a_sam_model_equals_decoding_the_crop_by_hand(tiny_onnx, image, monkeypatch):
    """The tiny SAM's answers are scattered over the image (random weights), so the crop is fixed here: inside it
    the answer is the crop's own decoding (points shifted, bg points outside dropped, the first answer's logits as
    mask prompt), outside it the first answer. Without refinement passes: the tiny SAM's refinement converges to one
    answer whatever the mask prompt, which would hide a wrong one."""
    plain = OnnxSamSegmenter(dataclasses.replace(tiny_onnx[0], decoding=SamDecodingConfig(refine_iterations=0,
                                                                                            focus=None)))
    focused = OnnxSamSegmenter(dataclasses.replace(
        tiny_onnx[0], decoding=SamDecodingConfig(refine_iterations=0, focus=FocusConfig(min_agreement=0.0))))
    x0, y0, x1, y1 = 20, 10, 80, 60
    monkeypatch.setattr(base, "focus_crop", lambda mask, prompt, config: (x0, y0, x1, y1))
    prompt = Prompt([[30, 40], [50, 20], [100, 80], [70, 55]], [1, 1, 0, 0])
    embedding = plain.embed(image)
    first = plain.predict(embedding, prompt)
    got = focused.predict(focused.embed(image), prompt)
    crop = plain.embed(np.ascontiguousarray(image[y0:y1, x0:x1]))
    first_logits = upscale_logits(first.low_res_logits, embedding.input_size, (90, 130), 1024)
    expected = plain.predict(crop, Prompt([[10, 30], [30, 10], [50, 45]], [1, 1, 0], mask=downscale_logits(
        first_logits[y0:y1, x0:x1], crop.input_size, 1024, 256)))
    assert got.mask.shape == (90, 130) and got.score == pytest.approx(expected.score, abs=1e-6)
    np.testing.assert_array_equal(got.mask[y0:y1, x0:x1], expected.mask)
    pasted = first_logits.copy()
    pasted[y0:y1, x0:x1] = upscale_logits(expected.low_res_logits, crop.input_size, (y1 - y0, x1 - x0), 1024)
    np.testing.assert_allclose(got.low_res_logits, downscale_logits(pasted, embedding.input_size, 1024, 256), atol=1e-5)
    outside = np.ones((90, 130), bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(got.mask[outside], first.mask[outside])
    assert got.mask[outside].any() and (got.mask[y0:y1, x0:x1] != first.mask[y0:y1, x0:x1]).any()
    with pytest.raises(ValueError, match="keeps the image"):  # features from elsewhere (a cache): no pixels to crop
        focused.predict(ImageEmbedding(embedding.features, embedding.original_size, embedding.input_size), prompt)


class ThreeMasks(SamStyleSegmenter):
    """Answers every ambiguous prompt with three masks covering 10 %, 30 % and 80 % of a square image, predicted IoU
    0.9, 0.5 and 0.7; an unambiguous one with the 30 % mask."""

    input_size, low_res_size = 64, 10

    def _encode(self, pixels):
        return None

    def _decode(self, embedding, coords, labels, box, mask_input, multimask):
        rows = np.arange(10)[:, None] < np.array([1, 3, 8])[:, None, None]
        masks = np.where(np.broadcast_to(rows, (3, 10, 10)), 5.0, -5.0).astype(np.float32)
        if not multimask:
            return np.array([0.6], np.float32), masks[1:2]
        return np.array([0.9, 0.5, 0.7], np.float32), masks


@pytest.mark.parametrize("whole_object, area", [(None, 0.1), (1.0, 0.8), (0.5, 0.3), (0.05, 0.1)])
def test_whole_object_is_the_largest_mask_that_is_not_the_scene(whole_object, area):
    segmenter = ThreeMasks(SamDecodingConfig(refine_iterations=0))
    embedding = segmenter.embed(np.zeros((64, 64, 3), np.uint8))
    decoding = SamDecodingConfig(refine_iterations=0, whole_object=whole_object)
    one_click = segmenter.predict(embedding, Prompt([[5, 5]], [1]), decoding=decoding)
    assert one_click.mask.mean() == pytest.approx(area, abs=0.01)  # bilinear upscaling moves the edge a little
    # two points are not ambiguous: SAM's single mask whatever the setting
    assert segmenter.predict(embedding, Prompt([[5, 5], [9, 9]], [1, 1]), decoding=decoding).mask.mean() == \
        pytest.approx(0.3, abs=0.01)


class RecordingThreeMasks(ThreeMasks):
    """ThreeMasks that records each decoder pass: (multimask, the mask_input given, or None)."""

    def __init__(self, decoding):
        super().__init__(decoding)
        self.calls = []

    def _decode(self, embedding, coords, labels, box, mask_input, multimask):
        self.calls.append((multimask, None if mask_input is None else mask_input.copy()))
        return super()._decode(embedding, coords, labels, box, mask_input, multimask)


@pytest.mark.parametrize("xy, labels, limit, seeded", [
    ([[5, 5], [9, 9]], [1, 1], 2, True),          # two fg clicks, within the limit: the whole-object seed
    ([[5, 5], [9, 9]], [1, 1], 1, False),         # the default: SAM's single answer
    ([[5, 5], [9, 9], [20, 20]], [1, 1, 1], 2, False),  # more clicks than the limit
    ([[5, 5], [9, 9]], [1, 0], 2, False),         # a background click: not a whole-object question
])
def test_a_few_clicks_are_seeded_by_the_whole_object_answer_then_refined(xy, labels, limit, seeded):
    segmenter = RecordingThreeMasks(SamDecodingConfig())
    embedding = segmenter.embed(np.zeros((64, 64, 3), np.uint8))
    prompt = Prompt(xy, labels)
    unrefined = SamDecodingConfig(refine_iterations=0, whole_object=1.0, whole_object_points=limit)
    assert segmenter.predict(embedding, prompt, decoding=unrefined).mask.mean() == \
        pytest.approx(0.8 if seeded else 0.3, abs=0.01)
    segmenter.calls.clear()
    refined = dataclasses.replace(unrefined, refine_iterations=2)
    segmenter.predict(embedding, prompt, decoding=refined)
    assert [multimask for multimask, _ in segmenter.calls] == [seeded, False, False]
    if seeded:  # the first refinement starts from the whole-object mask (80 % of the rows)
        first_input = segmenter.calls[1][1]
        assert first_input is not None and (first_input > 0).mean() == pytest.approx(0.8)


def test_whole_object_points_is_a_positive_integer():
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="whole_object_points"):
            SamDecodingConfig(whole_object=0.5, whole_object_points=bad)


def test_whole_object_is_a_fraction():
    with pytest.raises(ValueError, match="whole_object"):
        SamDecodingConfig(whole_object=0.0)
