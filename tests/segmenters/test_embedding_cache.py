"""The embedding cache: keyed by frame content (never stale), bounded in memory, shared through a folder by model."""

import numpy as np
import pytest

from vng.segmenters import OnnxSamSegmenter
from vng.segmenters.base import SamDecodingConfig, SamStyleSegmenter, image_key
from vng.segmenters.embedding_cache import EmbeddingCache


class MeanSam(SamStyleSegmenter):
    """A SAM-style backend whose embedding is the image's per-channel mean, (1, 3, 2, 2) float32 (48 bytes);
    counts the encoder runs."""

    input_size, low_res_size = 64, 16
    embedding_id = "mean-sam"

    def __init__(self):
        super().__init__(SamDecodingConfig())
        self.encoded = 0

    def _encode(self, pixels):
        self.encoded += 1
        return np.broadcast_to(pixels.mean((2, 3), keepdims=True), (1, 3, 2, 2)).astype(np.float32)

    def _decode(self, embedding, coords, labels, box, mask_input, multimask):
        raise NotImplementedError


def frames(count: int) -> list[np.ndarray]:
    return [np.full((20, 30, 3), 10 * i, np.uint8) for i in range(count)]


def test_image_key_is_the_content():
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert image_key(image) == image_key(np.asfortranarray(image)) == image_key(image.copy())
    changed = image.copy()
    changed[19, 29, 2] ^= 1
    assert image_key(changed) != image_key(image)
    assert image_key(image.reshape(30, 20, 3)) != image_key(image)  # same bytes, another shape


def test_memory_hits_misses_and_changed_pixels():
    segmenter = MeanSam()
    cache = EmbeddingCache(segmenter)
    a, b = frames(2)
    first = cache.embed(a)
    assert cache.embed(a.copy()) is first and segmenter.encoded == 1 and (cache.hits, cache.misses) == (1, 1)
    assert first.original_size == (20, 30) and first.input_size == (43, 64)
    changed = a.copy()
    changed[0, 0, 0] = 255
    assert cache.embed(changed) is not first and segmenter.encoded == 2  # one pixel: another frame
    cache.embed(b)
    assert (cache.hits, cache.misses, len(cache)) == (1, 3, 3)
    with pytest.raises(ValueError, match="uint8"):
        cache.embed(a.astype(np.float32))


def test_memory_is_bounded_least_recently_used_first():
    segmenter = MeanSam()
    cache = EmbeddingCache(segmenter, max_bytes=2 * (48 + 1800))  # two embeddings: features and 20x30 RGB images
    a, b, c = frames(3)
    cache.embed(a), cache.embed(b), cache.embed(a)  # a is now the most recently used
    cache.embed(c)  # drops b
    assert len(cache) == 2 and cache.nbytes == 2 * (48 + 1800)
    cache.embed(a)
    assert segmenter.encoded == 3
    cache.embed(b)
    assert segmenter.encoded == 4
    nothing = EmbeddingCache(MeanSam(), max_bytes=0)
    nothing.embed(a), nothing.embed(a)
    assert nothing.misses == 2 and len(nothing) == 0
    with pytest.raises(ValueError, match="max_bytes"):
        EmbeddingCache(segmenter, max_bytes=-1)


def test_folder_is_shared_by_caches_of_one_model_only(tmp_path):
    a, b = frames(2)
    writer = EmbeddingCache(MeanSam(), folder=tmp_path)
    written = writer.embed(a)
    reader_segmenter = MeanSam()
    reader = EmbeddingCache(reader_segmenter, folder=tmp_path)
    read = reader.embed(a)
    assert reader_segmenter.encoded == 0 and (reader.hits, reader.misses) == (1, 0)
    assert read.features.dtype == np.float32 and (read.original_size, read.input_size) == ((20, 30), (43, 64))
    np.testing.assert_allclose(read.features, written.features, rtol=1e-3)  # stored as float16
    assert read.image is a
    reader.embed(b)
    assert reader_segmenter.encoded == 1
    other = MeanSam()
    other.embedding_id = "another-model"
    EmbeddingCache(other, folder=tmp_path).embed(a)
    assert other.encoded == 1  # another model's files are not its own
    assert sorted(p.name for p in tmp_path.iterdir()) == ["another-model", "mean-sam"]


def test_folder_needs_an_embedding_id(tmp_path):
    segmenter = MeanSam()
    segmenter.embedding_id = None
    with pytest.raises(ValueError, match="embedding_id"):
        EmbeddingCache(segmenter, folder=tmp_path)


def test_onnx_backend_names_its_encoder(tiny_onnx):
    segmenter = OnnxSamSegmenter(tiny_onnx[0])
    assert segmenter.embedding_id.startswith("onnx-") and len(segmenter.embedding_id) == 21


def test_settings_name_the_model_so_runs_of_two_models_never_mix():
    class OtherSam(MeanSam):
        embedding_id = "other-sam"

    assert MeanSam().settings()["model"] == "mean-sam" and OtherSam().settings()["model"] == "other-sam"
    assert MeanSam().settings()["decoding"] == OtherSam().settings()["decoding"]
