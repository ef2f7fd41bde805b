"""Video narrative grounding training and evaluation data: torch ``Dataset``s, clip sampling, augmentation, batching.

One sample = one clip of a video (or one image), one caption with one marked noun, and that noun's masks::

    from transformers import AutoTokenizer
    from torch.utils.data import DataLoader
    from vng.datasets.vng_data import (ClipSampler, PointVOSVNGDataset, TransformConfig, VNGCollator,
                                       train_transforms)

    data = PointVOSVNGDataset("/data/point-vos", "Oops", "train", sampler=ClipSampler(num_frames=5),
                              transform=train_transforms(TransformConfig()), seed=0)
    loader = DataLoader(data, batch_size=2, shuffle=True, num_workers=4,
                        collate_fn=VNGCollator(AutoTokenizer.from_pretrained(text_encoder)))
    for epoch in range(num_epochs):
        data.set_epoch(epoch)                       # new clips and augmentations every epoch
        for batch in loader:                        # a VNGBatch
            batch = batch.to(device)

Sources (FORMATS.md §2–4):

- :class:`COCOPNGDataset` — COCO-PNG still images (RF-VNG's pre-training, Sec. 5): 1-frame clips, one sample per
  grounded noun segment; the caption is the full narrative, a plural noun's target the union of its segments.
- :class:`PointVOSVNGDataset` — Oops-VNG / Kinetics-VNG: Point-VOS objects whose caption has the noun marked, with
  point-based pseudo-masks on the annotated frames; from the release files or a converted HF dataset
  (:meth:`PointVOSVNGDataset.from_hf`).
- :class:`VISVNGDataset` — OVIS-VNG / UVO-VNG: ``meta_expressions.json`` + masks from the original VIS file and/or
  ``extra_masks.json`` + a folder of frames per video.

Randomness: the clip and the augmentation of sample ``index`` depend only on ``(seed, epoch, index)``, not on the
worker that loads it or on the loading order, so runs reproduce with any ``num_workers``. ``set_epoch`` must reach
the workers: keep ``persistent_workers=False`` (the default) or the workers keep the epoch they were started with.

Workers: datasets hold only metadata (paths, annotations, RLE strings); videos and images are opened inside
``__getitem__`` and closed there, so datasets pickle and fork cleanly.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import pyarrow.compute as pc
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from vng.io.coco_png import noun_mask, read_panoptic_annotations, read_panoptic_png, read_png_narratives
from vng.io.common import FormatError, Location
from vng.io.images import load_image
from vng.io.masks import read_mask_png, rle_decode
from vng.io.pointvos import find_pv_frames, pseudo_mask_path
from vng.io.pv_extracted import read_pv_split
from vng.io.video import Video, read_frames
from vng.io.vng_format import merge_tracks, read_extra_masks, read_meta_expressions, read_vis_annotations
from vng.language.tokens import noun_token_mask
from vng.pixels import normalise_imagenet
from vng.types import MaskTrack, PNGNarrative, VNGExpression, VNGVideo, frame_id

__all__ = ["VNGSample", "ClipSampler", "TransformConfig", "ClipTransform",
           "train_transforms", "eval_transforms", "swap_left_right", "COCOPNGDataset", "PointVOSVNGDataset",
           "VISVNGDataset", "VNGBatch", "VNGCollator"]

# Statistics of the ImageNet training images: the pre-trained backbones (ResNet, Swin, ...) expect inputs
# normalised with them; the collator applies them.


@dataclass(frozen=True, eq=False)
class VNGSample:
    """A clip, a caption with one marked noun, and the noun's masks.

    Attributes:
        frames: as loaded (T, H, W, 3) uint8 RGB numpy; after a :class:`ClipTransform` (T, 3, H', W') float32
            tensor in [0, 1].
        masks: the noun's target per frame: (T, H, W) bool numpy as loaded, (T, H', W') bool tensor after a
            transform; all False where ``valid`` is False.
        valid: (T,) bool (numpy as loaded, tensor after a transform): the frame has ground truth (a mask, a
            pseudo-mask, or a non-null VIS segmentation).
        caption: the full caption (narrative, actor description or question).
        noun_span: (start, end) character span of the noun in ``caption``.
        video: video name (COCO-PNG: the image id as a string).
        expression_id: the noun's id within the source: VIS ``meta_expressions`` expression id, Point-VOS object id,
            COCO-PNG ``"<narrative index>:<segment index>"``.
        frame_names: (T,) frame stems (prediction files are named after them).
        frame_indices: (T,) 0-based frame indices in the video (VIS: position in ``meta_expressions`` frames;
            Point-VOS: decoded frame index; COCO-PNG: 0). Repeated when a video is shorter than the clip.
        original_size: (height, width) of the frames as loaded, to resize predictions back.
    """

    frames: np.ndarray | torch.Tensor
    masks: np.ndarray | torch.Tensor
    valid: np.ndarray | torch.Tensor
    caption: str
    noun_span: tuple[int, int]
    video: str
    expression_id: str
    frame_names: tuple[str, ...]
    frame_indices: tuple[int, ...]
    original_size: tuple[int, int]

    def __len__(self) -> int:
        """T, the number of frames."""
        return len(self.frame_indices)


# --- clip sampling ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipSampler:
    """Which frames of a video form a clip, chosen among its *candidate* frames (the frames a dataset can supervise:
    Point-VOS annotated frames, a VIS track's non-null frames; every frame in evaluation).

    Modes:
        ``"random"`` (training): ``num_frames`` candidates in increasing order, consecutive ones between 1 and
            ``max_stride`` candidates apart, at a random place; videos with fewer candidates than ``num_frames`` repeat
            random candidates (as ReferFormer does), so every clip has exactly ``num_frames`` frames.
        ``"even"``: ``num_frames`` candidates evenly spaced over all of them, no randomness (repeatable validation).
        ``"all"`` (evaluation): every candidate in order, cut into chunks of ``chunk_size`` frames, one sample each;
            the last chunk may be shorter.

    ``sample`` draws from the ``numpy.random.Generator`` it is given, so a seed fixes the clip.
    """

    num_frames: int = 5  # ReferFormer (and RF-VNG) train on 5-frame clips
    max_stride: int = 3  # ReferFormer's max_skip: neighbouring clip frames at most 3 candidates apart (local motion)
    mode: Literal["random", "even", "all"] = "random"  # "random" for training; see the class docstring
    chunk_size: int | None = None  # "all" only: frames per evaluation sample; None = the whole video at once

    def __post_init__(self) -> None:
        if self.mode not in ("random", "even", "all"):
            raise ValueError(f"mode must be 'random', 'even' or 'all', got {self.mode!r}")
        if self.num_frames < 1 or self.max_stride < 1:
            raise ValueError(f"num_frames and max_stride must be >= 1, got {self.num_frames}, {self.max_stride}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be None or >= 1, got {self.chunk_size}")

    def num_clips(self, num_candidates: int) -> int:
        """How many samples a video with ``num_candidates`` candidate frames gives (0 when it has none)."""
        if num_candidates == 0:
            return 0
        if self.mode != "all":
            return 1
        return -(-num_candidates // (self.chunk_size or num_candidates))

    def sample(self, num_candidates: int, clip_index: int = 0, rng: np.random.Generator | None = None) -> list[int]:
        """Positions (into the candidate list, increasing) of clip ``clip_index`` (< :meth:`num_clips`); ``rng``
        is required by the "random" mode only."""
        if not 0 <= clip_index < self.num_clips(num_candidates):
            raise IndexError(f"clip {clip_index} does not exist for {num_candidates} candidate frames")
        if self.mode == "all":
            size = self.chunk_size or num_candidates
            return list(range(clip_index * size, min(num_candidates, (clip_index + 1) * size)))
        if self.mode == "even":
            return np.linspace(0, num_candidates - 1, self.num_frames).round().astype(int).tolist()
        if rng is None:
            raise ValueError("random clips need a numpy Generator: pass rng=")
        if num_candidates < self.num_frames:
            repeats = rng.integers(0, num_candidates, self.num_frames - num_candidates)
            return sorted([*range(num_candidates), *repeats.tolist()])
        # strides as large as allowed, but small enough that the clip fits in the candidates
        largest = min(self.max_stride, (num_candidates - 1) // max(self.num_frames - 1, 1))
        gaps = rng.integers(1, largest + 1, self.num_frames - 1)
        start = int(rng.integers(0, num_candidates - int(gaps.sum())))
        return (start + np.concatenate([[0], np.cumsum(gaps)])).tolist()


# --- augmentation -----------------------------------------------------------------------------------------------------

_LEFT_RIGHT = re.compile(r"\b(left|right)\b", re.IGNORECASE)
_SWAPPED = {"left": "right", "right": "left"}


def swap_left_right(caption: str, span: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """The caption of a horizontally flipped clip: whole words "left" ↔ "right" (case kept: "Left" → "Right"),
    and the noun span moved to where the same characters now are (the words differ in length by one).

    ReferFormer does the swap by substring replacement, which also turns "bright" into "bleft"; here only whole
    words change. "left" as a verb ("he left") is swapped too: the caption cannot tell. Spans are assumed to start
    and end at word boundaries.
    """
    start, end = span
    pieces, cursor = [], 0
    for match in _LEFT_RIGHT.finditer(caption):
        word = match.group()
        swapped = _SWAPPED[word.lower()]
        swapped = swapped.upper() if word.isupper() else swapped.capitalize() if word[0].isupper() else swapped
        shift = len(swapped) - len(word)
        span = (span[0] + shift * (match.end() <= start), span[1] + shift * (match.start() < end))
        pieces += [caption[cursor:match.start()], swapped]
        cursor = match.end()
    pieces.append(caption[cursor:])
    return "".join(pieces), span


@dataclass(frozen=True)
class TransformConfig:
    """Joint frame/mask augmentation (:func:`train_transforms`) and evaluation resizing (:func:`eval_transforms`)."""

    train_sizes: tuple[int, ...] = (288, 320, 352, 392, 416, 448, 480, 512)  # ReferFormer's random shorter sides
    eval_size: int = 360  # shorter side at evaluation, as ReferFormer's inference on Ref-YouTube-VOS
    max_size: int = 640  # longer side cap (ReferFormer): bounds memory for wide videos
    flip_probability: float = 0.5  # horizontal flip, with "left"/"right" swapped in the caption (ReferFormer)
    brightness: float = 0.2  # ColorJitter factors, drawn once per clip so that all frames change alike
    contrast: float = 0.5  # ReferFormer's PhotometricDistort scales contrast and saturation in [0.5, 1.5]
    saturation: float = 0.5
    hue: float = 0.0  # off, unlike ReferFormer: captions name colours, and "the red car" must stay red

    def __post_init__(self) -> None:
        if not self.train_sizes or min(self.train_sizes) < 1 or self.eval_size < 1:
            raise ValueError("train_sizes must be non-empty and sizes positive")
        if self.max_size < max(max(self.train_sizes), self.eval_size):
            raise ValueError(f"max_size {self.max_size} is below a shorter-side size")
        if not 0 <= self.flip_probability <= 1:
            raise ValueError(f"flip_probability must be in [0, 1], got {self.flip_probability}")


class ClipTransform:
    """Turns a loaded :class:`VNGSample` (numpy uint8 frames) into tensors, resized (and augmented when ``train``).

    Train: random horizontal flip (frames, masks and caption together) → resize the shorter side to one of
    ``train_sizes`` (longer side ≤ ``max_size``; masks nearest-neighbour) → colour jitter. Eval: resize the shorter
    side to ``eval_size`` only. Random draws use torch's global generator: the datasets seed it per sample.
    Output frames are (T, 3, H', W') float32 in [0, 1]; ImageNet normalisation is the collator's job.
    """

    def __init__(self, config: TransformConfig, *, train: bool):
        self.config = config
        self.train = train
        if train:
            self._resize = v2.RandomShortestSize(min_size=list(config.train_sizes), max_size=config.max_size)
            self._jitter = v2.ColorJitter(brightness=config.brightness, contrast=config.contrast,
                                          saturation=config.saturation, hue=config.hue)
        else:
            self._resize = v2.Resize(config.eval_size, max_size=config.max_size)
            self._jitter = None

    def __call__(self, sample: VNGSample) -> VNGSample:
        if not isinstance(sample.frames, np.ndarray) or sample.frames.dtype != np.uint8:
            raise TypeError("ClipTransform expects a sample as loaded ((T, H, W, 3) uint8 numpy frames)")
        video = tv_tensors.Video(torch.from_numpy(np.ascontiguousarray(sample.frames)).permute(0, 3, 1, 2))
        masks = tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(sample.masks)))
        caption, span = sample.caption, sample.noun_span
        if self.train and torch.rand(()) < self.config.flip_probability:
            video, masks = F.horizontal_flip(video), F.horizontal_flip(masks)
            caption, span = swap_left_right(caption, span)
        video, masks = self._resize(video, masks)
        if self._jitter is not None:
            video = self._jitter(video)
        return replace(sample, frames=F.to_dtype(video, torch.float32, scale=True).as_subclass(torch.Tensor),
                       masks=masks.as_subclass(torch.Tensor), valid=torch.from_numpy(np.asarray(sample.valid)),
                       caption=caption, noun_span=span)


def train_transforms(config: TransformConfig | None = None) -> ClipTransform:
    """Random flip (with the caption), multi-scale resize and colour jitter; see :class:`ClipTransform`."""
    return ClipTransform(config or TransformConfig(), train=True)


def eval_transforms(config: TransformConfig | None = None) -> ClipTransform:
    """Deterministic resize to ``eval_size``; see :class:`ClipTransform`."""
    return ClipTransform(config or TransformConfig(), train=False)


# --- datasets ---------------------------------------------------------------------------------------------------------

Transform = Callable[[VNGSample], VNGSample]


def _stack(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray | None], where: str
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame RGB frames and masks (None = no ground truth) → (T, H, W, 3) uint8, (T, H, W) bool, (T,) bool."""
    frames = np.stack(frames)
    height, width = frames.shape[1:3]
    for mask in masks:
        if mask is not None and mask.shape != (height, width):
            raise FormatError(f"a mask is {mask.shape[1]}x{mask.shape[0]}, the frames are {width}x{height}",
                              Location(where))
    valid = np.array([mask is not None for mask in masks], bool)
    stacked = np.stack([np.zeros((height, width), bool) if mask is None else mask.astype(bool) for mask in masks])
    return frames, stacked, valid


class _ClipDataset(Dataset):
    """Shared machinery: items with candidate frames → (item, clip) samples; seeded sampling and transforms.

    Subclasses call :meth:`_index_items` with each item's candidate frame ids and implement :meth:`_load`.
    """

    def __init__(self, *, sampler: ClipSampler, transform: Transform | None, seed: int):
        self.sampler = sampler
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self._candidates: list[tuple[int, ...]] = []
        self._samples: list[tuple[int, int]] = []  # (item, clip index)

    def _index_items(self, candidates: Sequence[Sequence[int]]) -> None:
        self._candidates = [tuple(frames) for frames in candidates]
        self._samples = [(item, clip) for item, frames in enumerate(self._candidates)
                         for clip in range(self.sampler.num_clips(len(frames)))]

    def set_epoch(self, epoch: int) -> None:
        """Draw other clips and augmentations from now on (call at the start of every epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index: int) -> VNGSample:
        item, clip = self._samples[index]
        clip_seed, transform_seed = np.random.SeedSequence([self.seed, self.epoch, index]).spawn(2)
        candidates = self._candidates[item]
        positions = self.sampler.sample(len(candidates), clip, np.random.default_rng(clip_seed))
        sample = self._load(item, [candidates[p] for p in positions])
        if self.transform is None:
            return sample
        with torch.random.fork_rng(devices=[]):  # seed torchvision's draws without touching the caller's generator
            torch.manual_seed(int(transform_seed.generate_state(1)[0]))
            return self.transform(sample)

    def _load(self, item: int, frame_ids: list[int]) -> VNGSample:
        """The untransformed sample of ``item`` on frames ``frame_ids`` (increasing, may repeat)."""
        raise NotImplementedError


def _utterance_spans(narrative: PNGNarrative) -> list[tuple[int, int] | None]:
    """The character span of each segment's utterance in the caption, found in segment order.

    Each utterance is searched after the previous one's end: exactly first, then ignoring case and runs of
    whitespace (the release's captions and utterances do not always agree on them); None when not found.
    """
    spans, cursor = [], 0
    for segment in narrative.segments:
        words = segment.utterance.split()
        if not words:
            spans.append(None)
            continue
        text = " ".join(words)
        start = narrative.caption.find(text, cursor)
        if start >= 0:
            end = start + len(text)
        else:
            pattern = re.compile(r"\s+".join(map(re.escape, words)), re.IGNORECASE)
            match = pattern.search(narrative.caption, cursor)
            if match is None:
                spans.append(None)
                continue
            start, end = match.span()
        spans.append((start, end))
        cursor = end
    return spans


@dataclass(frozen=True)
class _PNGNoun:
    narrative_index: int
    segment_index: int
    image_id: int
    caption: str
    span: tuple[int, int]
    segment_ids: tuple[int, ...]
    image_file: str
    panoptic_file: str


class COCOPNGDataset(_ClipDataset):
    """COCO Panoptic Narrative Grounding as 1-frame clips: one sample per grounded noun segment.

    Layout (the sample data's; COCO's ``annotations/`` folder works as ``root`` with ``images_dir`` pointing at the
    COCO images)::

        <root>/png_coco_<split>.json  <root>/panoptic_<split>.json  <root>/panoptic_<split>/<id>.png
        <images_dir or root/<split>>/<image file>

    ``split`` is "train2017" or "val2017". A noun whose utterance cannot be found in the caption is skipped with a
    warning.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train2017", *,
                 images_dir: str | os.PathLike | None = None, transform: Transform | None = None, seed: int = 0):
        # one frame per sample, however the caller samples video clips
        super().__init__(sampler=ClipSampler(num_frames=1, mode="all"), transform=transform, seed=seed)
        root = Path(root)
        images_dir = Path(images_dir) if images_dir is not None else root / split
        panoptic = read_panoptic_annotations(root / f"panoptic_{split}.json")
        narratives = read_png_narratives(root / f"png_coco_{split}.json", panoptic=panoptic)
        self.nouns: list[_PNGNoun] = []
        missing = 0
        for narrative_index, narrative in enumerate(narratives):
            image = panoptic[narrative.image_id]
            for segment_index, (segment, span) in enumerate(zip(narrative.segments, _utterance_spans(narrative))):
                if not (segment.is_noun and segment.segment_ids):
                    continue
                if span is None:
                    missing += 1
                    continue
                self.nouns.append(_PNGNoun(narrative_index, segment_index, narrative.image_id, narrative.caption,
                                           span, segment.segment_ids, str(images_dir / image.image_file_name),
                                           str(root / f"panoptic_{split}" / image.file_name)))
        if missing:
            warnings.warn(f"{missing} noun utterance(s) not found in their caption: skipped", stacklevel=2)
        self._index_items([(0,)] * len(self.nouns))

    def _load(self, item: int, frame_ids: list[int]) -> VNGSample:
        noun = self.nouns[item]
        pixels = np.asarray(load_image(noun.image_file).convert("RGB"))
        target = noun_mask(read_panoptic_png(noun.panoptic_file), noun.segment_ids)
        frames, masks, valid = _stack([pixels], [target], noun.image_file)
        return VNGSample(frames, masks, valid, noun.caption, noun.span, video=str(noun.image_id),
                         expression_id=f"{noun.narrative_index}:{noun.segment_index}",
                         frame_names=(Path(noun.image_file).stem,), frame_indices=(0,),
                         original_size=frames.shape[1:3])


@dataclass(frozen=True)
class _PVObject:
    """What a Point-VOS VNG sample needs of an object; ``row``: its row in a converted HF dataset."""

    object_id: str
    video_name: str
    caption: str
    span: tuple[int, int]
    frame_indices: tuple[int, ...]
    row: int


def _noun_span(caption: str, object_name: str, span: Sequence[int] | None) -> tuple[int, int] | None:
    """The object's noun span: as annotated, else the first whole-word, case-insensitive ``object_name`` in the
    caption (the public PV release has no spans), else None."""
    if span is not None:
        return int(span[0]), int(span[1])
    match = re.search(rf"\b{re.escape(object_name)}\b", caption, re.IGNORECASE) if object_name else None
    return match.span() if match else None


def _open_hf_image(value, root: Path | None) -> Image.Image | None:
    """A converted dataset's image cell: decoded (PIL), ``{"bytes"}`` or ``{"path"}`` relative to ``root``."""
    if value is None or isinstance(value, Image.Image):
        return value
    if value.get("bytes"):
        return Image.open(io.BytesIO(value["bytes"]))
    if root is None:
        raise ValueError("this converted dataset references files instead of embedding them: pass root=")
    return load_image(root / value["path"])


class PointVOSVNGDataset(_ClipDataset):
    """Oops-VNG / Kinetics-VNG (Sec. 5): Point-VOS objects with a marked noun and point-based pseudo-masks.

    Candidate frames are an object's annotated frames (10 per object, Sec. 3.1), in every sampler mode: no other
    frame has a target. A frame is valid when its pseudo-mask exists. Frames are decoded from the video
    (``<root>/<Dataset>/videos/<split>/<video>.mp4``) or the release's extracted frames (``<root>/<Dataset>/<split>/
    JPEGImages/<object_id>/``, :func:`~vng.io.pointvos.find_pv_frames`) at the annotated indices, or taken from a
    converted dataset that embeds them. Annotations: the split's JSON and/or its point PNGs
    (:func:`~vng.io.pv_extracted.read_pv_split`). The caption is the object's ``question`` field (for VNG data: the
    narrative sentence), the noun its ``noun_span``; records without one fall back to the first occurrence of
    ``object_name`` in the caption, and are skipped with a warning when there is none.
    """

    def __init__(self, root: str | os.PathLike, dataset: str = "Oops", split: str = "train", *,
                 sampler: ClipSampler = ClipSampler(), transform: Transform | None = None, seed: int = 0):
        super().__init__(sampler=sampler, transform=transform, seed=seed)
        self.root, self.dataset, self.split = Path(root), dataset, split
        self._rows = None
        annotations = read_pv_split(self.root, dataset, split)
        self._set_objects([(a.object_id, a.video_name, a.question, a.object_name, a.noun_span, a.frame_indices)
                           for a in annotations])

    @classmethod
    def from_hf(cls, rows, *, root: str | os.PathLike | None = None, sampler: ClipSampler = ClipSampler(),
                transform: Transform | None = None, seed: int = 0) -> PointVOSVNGDataset:
        """From a converted ``datasets.Dataset`` (:func:`vng.datasets.hf.load_oops_vng`).

        Args:
            root: the source root the dataset's ``video_path`` and pseudo-mask paths are relative to; only needed
                when frames or pseudo-masks are not embedded (``embed_images=False`` conversions).
        """
        if "pseudo_mask" not in rows.features["frames"].feature:
            raise ValueError("rows have no pseudo-masks: convert with convert_vng / load with load_oops_vng, not the "
                             "point_vos variants")
        self = cls.__new__(cls)
        _ClipDataset.__init__(self, sampler=sampler, transform=transform, seed=seed)
        self.root, self.dataset, self.split = (Path(root) if root is not None else None), None, None
        self._rows = rows
        # metadata only, a batch of rows at a time: the frames column may embed images, which are not decoded here
        records = []
        columns = ["object_id", "video_name", "question", "object_name", "noun_span", "frames"]
        for batch in rows.select_columns(columns).with_format("arrow").iter(batch_size=1024):
            frames = batch.column("frames")
            indices = pc.struct_field(pc.list_flatten(frames), "frame_index").to_numpy()
            per_row = np.split(indices, np.cumsum(pc.list_value_length(frames).to_numpy())[:-1])
            records += zip(*(batch.column(name).to_pylist() for name in columns[:-1]),
                           [tuple(map(int, row)) for row in per_row])
        self._set_objects(records)
        return self

    def _set_objects(self, records) -> None:
        """``records``: (object_id, video_name, caption, object_name, noun_span or None, frame indices) per row."""
        self.objects: list[_PVObject] = []
        for row, (object_id, video_name, caption, object_name, span, frames) in enumerate(records):
            span = _noun_span(caption, object_name, span)
            if span is not None and video_name is not None:
                self.objects.append(_PVObject(object_id, video_name, caption, span, tuple(frames), row))
        skipped = len(records) - len(self.objects)
        if skipped:
            warnings.warn(f"{skipped} object(s) without a video or a noun in their caption: skipped", stacklevel=3)
        self._index_items([obj.frame_indices for obj in self.objects])

    def _load(self, item: int, frame_ids: list[int]) -> VNGSample:
        obj = self.objects[item]
        load = self._load_row if self._rows is not None else self._load_files
        frames, masks = load(obj, sorted(set(frame_ids)))
        where = f"{obj.video_name} / object {obj.object_id}"
        frames, masks, valid = _stack([frames[i] for i in frame_ids], [masks[i] for i in frame_ids], where)
        return VNGSample(frames, masks, valid, obj.caption, obj.span, video=obj.video_name,
                         expression_id=obj.object_id, frame_names=tuple(frame_id(i) for i in frame_ids),
                         frame_indices=tuple(frame_ids), original_size=frames.shape[1:3])

    def _load_files(self, obj: _PVObject, wanted: list[int]
                    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray | None]]:
        """Frames ``wanted`` decoded from the release video, and their pseudo-masks (None where missing)."""
        video = find_pv_frames(self.root, self.dataset, self.split, obj.video_name, obj.object_id)
        frames = read_frames(video, wanted, Location(str(video), record=obj.object_id))
        masks = {}
        for index in wanted:
            path = pseudo_mask_path(self.root, self.dataset, self.split, obj.object_id, index)
            masks[index] = read_mask_png(path) > 0 if path.is_file() else None
        return frames, masks

    def _load_row(self, obj: _PVObject, wanted: list[int]
                  ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray | None]]:
        """:meth:`_load_files` for a converted dataset: embedded frames, or decoded from ``root/video_path``."""
        row = self._rows[obj.row]
        by_index = {frame["frame_index"]: frame for frame in row["frames"]}
        images = {index: _open_hf_image(by_index[index]["image"], self.root) for index in wanted}
        if any(image is None for image in images.values()):  # not embedded: decode the video
            if self.root is None:
                raise ValueError("this converted dataset does not embed its frames: pass root=")
            video = self.root / row["video_path"]
            frames = read_frames(video, wanted, Location(str(video), record=obj.object_id))
        else:
            frames = {index: np.asarray(image.convert("RGB")) for index, image in images.items()}
        masks = {}
        for index in wanted:
            mask = _open_hf_image(by_index[index]["pseudo_mask"], self.root)
            masks[index] = None if mask is None else np.asarray(mask) > 0
        return frames, masks


@dataclass(frozen=True)
class _VISExpression:
    video: str
    expression: VNGExpression


class VISVNGDataset(_ClipDataset):
    """OVIS-VNG / UVO-VNG: each expression of ``meta_expressions.json`` with its mask track.

    Masks come from the original VIS file (OVIS ``annotations_train.json``, UVO ``UVO_sparse_*_video.json``) and/or
    VNG's ``extra_masks.json``; sparse (UVO) tracks are padded to the meta_expressions frame count, so track frame
    ``i`` is ``frames[i]`` of the video. Frames are read from ``<frames_dir>/<video>/<frame stem>.{jpg,png}``.
    Training modes ("random", "even") sample among the frames where the expression's mask is not null; "all"
    covers every frame, null ones with ``valid`` False (the VNG metric skips them, FORMATS.md §3).
    Expressions without any mask are left out in the training modes.
    """

    def __init__(self, meta_expressions: str | os.PathLike, frames_dir: str | os.PathLike, *,
                 vis_annotations: str | os.PathLike | None = None, extra_masks: str | os.PathLike | None = None,
                 sampler: ClipSampler = ClipSampler(), transform: Transform | None = None, seed: int = 0):
        super().__init__(sampler=sampler, transform=transform, seed=seed)
        if vis_annotations is None and extra_masks is None:
            raise ValueError("give the masks: vis_annotations, extra_masks or both")
        self.frames_dir = Path(frames_dir)
        self.videos: dict[str, VNGVideo] = read_meta_expressions(meta_expressions)
        counts = {name: len(video.frames) for name, video in self.videos.items()}
        tracks = merge_tracks(*([read_vis_annotations(vis_annotations, frame_counts=counts)[1]]
                                if vis_annotations is not None else []),
                              *([read_extra_masks(extra_masks, frame_counts=counts)[1]]
                                if extra_masks is not None else []))
        self.expressions: list[_VISExpression] = []
        self.tracks: dict[int, MaskTrack] = {}
        for name, video in self.videos.items():
            for expression in video.expressions:
                track = tracks.get(expression.obj_id)
                if track is None:
                    raise FormatError(f"expression {expression.expression_id} of video {name!r}: obj_id "
                                      f"{expression.obj_id} has no mask track in the given files",
                                      Location(str(meta_expressions)))
                if len(track.segmentations) != len(video.frames):
                    raise FormatError(f"mask track {track.obj_id} has {len(track.segmentations)} frames, video "
                                      f"{name!r} has {len(video.frames)}", Location(str(meta_expressions)))
                self.expressions.append(_VISExpression(name, expression))
                self.tracks[track.obj_id] = track
        self._index_items([range(len(self.videos[e.video].frames)) if sampler.mode == "all"
                           else self.tracks[e.expression.obj_id].annotated_frames for e in self.expressions])

    @classmethod
    def from_sample_data(cls, root: str | os.PathLike, split: str = "train", **options) -> VISVNGDataset:
        """The sample data's layout (:mod:`vng.datasets.synthetic`): ``<root>/VNG/<split>/`` and frames under
        ``<root>/frames/synthetic_<split>/``; ``options`` as for the constructor."""
        folder = Path(root) / "VNG" / split
        return cls(folder / "meta_expressions.json", Path(root) / "frames" / f"synthetic_{split}",
                   vis_annotations=folder / "vis_annotations.json", extra_masks=folder / "extra_masks.json",
                   **options)

    def _load(self, item: int, frame_ids: list[int]) -> VNGSample:
        entry = self.expressions[item]
        video, expression = self.videos[entry.video], entry.expression
        track = self.tracks[expression.obj_id]
        folder = Video.open(self.frames_dir / entry.video)
        positions = {name: index for index, name in enumerate(folder.frame_names)}
        frames = {}
        for index in sorted(set(frame_ids)):
            if video.frames[index] not in positions:
                raise FormatError(f"frame {video.frames[index]!r} of meta_expressions is not in the folder",
                                  Location(str(folder.path)))
            frames[index] = folder[positions[video.frames[index]]]
        masks = [None if track.segmentations[i] is None else rle_decode(track.segmentations[i]) for i in frame_ids]
        stacked, masks, valid = _stack([frames[i] for i in frame_ids], masks, str(folder.path))
        actor = video.actor(expression)
        return VNGSample(stacked, masks, valid, actor.description, (expression.start, expression.end),
                         video=entry.video, expression_id=expression.expression_id,
                         frame_names=tuple(video.frames[i] for i in frame_ids), frame_indices=tuple(frame_ids),
                         original_size=stacked.shape[1:3])


# --- batching ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class VNGBatch:
    """A batch of B clips of T frames, padded to the largest H and W of the batch, with tokenized captions.

    Attributes:
        pixel_values: (B, T, 3, H, W) float32, ImageNet-normalised (:func:`vng.pixels.normalise_imagenet`);
            0 on padding.
        pixel_mask: (B, H, W) bool, True on real pixels, False on padding (the same for all frames of a clip).
        input_ids: (B, L) int64 token ids, padded to the longest caption (at most the collator's ``max_length``).
        attention_mask: (B, L) int64, 1 on tokens, 0 on padding.
        noun_token_mask: (B, L) bool, True on the tokens of the marked noun (at least one per caption).
        target_masks: (B, T, H, W) bool, the noun's mask per frame; False on padding and on invalid frames.
        target_valid: (B, T) bool, the frame has ground truth (supervise / evaluate only these).
        image_sizes: (B, 2) int64 (height, width) of each clip before padding: crop predictions to it.
        original_sizes: (B, 2) int64 (height, width) of the frames as stored: resize cropped predictions to it.
        captions, noun_spans, videos, expression_ids, frame_names, frame_indices: per-sample metadata
            (:class:`VNGSample`), in batch order, for evaluation and prediction files.
    """

    pixel_values: torch.Tensor
    pixel_mask: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    noun_token_mask: torch.Tensor
    target_masks: torch.Tensor
    target_valid: torch.Tensor
    image_sizes: torch.Tensor
    original_sizes: torch.Tensor
    captions: list[str]
    noun_spans: list[tuple[int, int]]
    videos: list[str]
    expression_ids: list[str]
    frame_names: list[tuple[str, ...]]
    frame_indices: list[tuple[int, ...]]

    _TENSORS = ("pixel_values", "pixel_mask", "input_ids", "attention_mask", "noun_token_mask", "target_masks",
                "target_valid", "image_sizes", "original_sizes")

    def __len__(self) -> int:
        return len(self.pixel_values)

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> VNGBatch:
        """The batch with every tensor on ``device`` (metadata lists are shared)."""
        return replace(self, **{name: getattr(self, name).to(device, non_blocking=non_blocking)
                                for name in self._TENSORS})


class VNGCollator:
    """``collate_fn`` for a DataLoader over transformed :class:`VNGSample` s → :class:`VNGBatch`.

    Args:
        tokenizer: a *fast* Hugging Face tokenizer (it must return offset mappings), e.g. the text encoder's.
        max_length: captions are truncated to this many tokens; a noun cut off by it raises ValueError.
            256 = the ``max_seq_length`` all-MiniLM-L6-v2 was trained with, enough for a VidLN actor narrative.
    """

    def __init__(self, tokenizer, *, max_length: int = 256):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("VNGCollator needs a fast tokenizer (return_offsets_mapping), got "
                             f"{type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, samples: Sequence[VNGSample]) -> VNGBatch:
        if not samples:
            raise ValueError("cannot collate an empty batch")
        if not all(isinstance(s.frames, torch.Tensor) and s.frames.is_floating_point() for s in samples):
            raise TypeError("samples must be transformed first (float (T, 3, H, W) frames): give the dataset "
                            "train_transforms(...) or eval_transforms(...)")
        lengths = {len(s) for s in samples}
        if len(lengths) > 1:
            raise ValueError(f"clips of a batch must have the same number of frames, got {sorted(lengths)} "
                             "(evaluate chunked videos with batch_size=1)")
        batch_size, num_frames = len(samples), lengths.pop()
        height = max(s.frames.shape[-2] for s in samples)
        width = max(s.frames.shape[-1] for s in samples)
        pixel_values = torch.zeros(batch_size, num_frames, 3, height, width)
        pixel_mask = torch.zeros(batch_size, height, width, dtype=torch.bool)
        target_masks = torch.zeros(batch_size, num_frames, height, width, dtype=torch.bool)
        for index, sample in enumerate(samples):
            h, w = sample.frames.shape[-2:]
            pixel_values[index, :, :, :h, :w] = normalise_imagenet(sample.frames)
            pixel_mask[index, :h, :w] = True
            target_masks[index, :, :h, :w] = sample.masks
        captions = [s.caption for s in samples]
        tokens = self.tokenizer(captions, padding="longest", truncation=True, max_length=self.max_length,
                                return_offsets_mapping=True, return_tensors="np")
        nouns = []
        for sample, offsets in zip(samples, tokens["offset_mapping"]):
            try:
                nouns.append(noun_token_mask(offsets, sample.noun_span))
            except ValueError as error:
                raise ValueError(f"video {sample.video}, expression {sample.expression_id}: {error}") from None
        return VNGBatch(
            pixel_values=pixel_values, pixel_mask=pixel_mask,
            input_ids=torch.from_numpy(tokens["input_ids"]).long(),
            attention_mask=torch.from_numpy(tokens["attention_mask"]).long(),
            noun_token_mask=torch.from_numpy(np.stack(nouns)),
            target_masks=target_masks, target_valid=torch.stack([torch.as_tensor(s.valid) for s in samples]),
            image_sizes=torch.tensor([tuple(s.frames.shape[-2:]) for s in samples], dtype=torch.int64),
            original_sizes=torch.tensor([s.original_size for s in samples], dtype=torch.int64),
            captions=captions, noun_spans=[s.noun_span for s in samples], videos=[s.video for s in samples],
            expression_ids=[s.expression_id for s in samples], frame_names=[s.frame_names for s in samples],
            frame_indices=[s.frame_indices for s in samples])
