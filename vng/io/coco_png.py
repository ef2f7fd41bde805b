"""COCO Panoptic Narrative Grounding (FORMATS.md §4): narratives, panoptic PNGs and the panoptic annotation JSON.

- ``png_coco_{train2017,val2017}.json``: a list of ``{image_id, caption, segments: [{utterance, noun, segment_ids}]}``
  (the release also has ``annotator_id`` and a per-segment ``plural``; both are kept when present). The release
  writes ``image_id`` and ``segment_ids`` as digit strings; the reader takes strings or ints, the writer writes
  strings like the release.
- Panoptic PNG: RGB, segment id = R + 256·G + 256²·B; a noun's target is the union of its segment ids' pixels.
- ``panoptic_{split}.json``: ``images[{id, file_name, width, height}]``, ``annotations[{image_id, file_name,
  segments_info[{id, category_id, iscrowd, area, bbox}]}]``, ``categories[{id, name, isthing}]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from vng.io.common import FormatError, Location, ReadReport, atomic_write, read_json, read_records, require, write_json
from vng.io.images import load_image
from vng.types import PNGNarrative, PNGSegment

__all__ = ["PanopticSegment", "PanopticImage", "read_png_narratives", "write_png_narratives", "check_png_narratives",
           "decode_panoptic", "encode_panoptic", "read_panoptic_png", "write_panoptic_png", "noun_mask",
           "read_panoptic_annotations", "write_panoptic_annotations"]


@dataclass(frozen=True)
class PanopticSegment:
    """One ``segments_info`` entry; ``bbox`` is COCO [x, y, width, height]; ``isthing`` comes from its category."""

    id: int
    category_id: int
    iscrowd: int
    area: int
    bbox: tuple[float, float, float, float]
    isthing: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "bbox", tuple(self.bbox))
        if len(self.bbox) != 4:
            raise ValueError(f"bbox must be [x, y, width, height], got {self.bbox}")


@dataclass(frozen=True)
class PanopticImage:
    """The panoptic annotation of one image: ``file_name`` of its panoptic PNG, ``image_file_name`` of the photo."""

    image_id: int
    file_name: str
    image_file_name: str
    width: int
    height: int
    segments: tuple[PanopticSegment, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.segments))
        ids = self.segment_ids
        if len(set(ids)) != len(ids):
            raise ValueError(f"image {self.image_id}: duplicate segment ids in {ids}")

    @property
    def segment_ids(self) -> tuple[int, ...]:
        return tuple(segment.id for segment in self.segments)


# --- narratives ---------------------------------------------------------------------------------------------------

def _id(value, location: Location, field: str) -> int:
    """An id the release writes as a digit string (or as an int)."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise FormatError(f"expected a non-negative id (int or digit string), got {value!r:.40}", location, field)


def _check_narrative(location: Location, narrative: PNGNarrative,
                     panoptic: Mapping[int, PanopticImage]) -> PNGNarrative:
    image = panoptic.get(narrative.image_id)
    if image is None:
        raise FormatError(f"unknown image_id {narrative.image_id}: not in the panoptic annotations", location,
                          "image_id")
    known = set(image.segment_ids)
    for index, segment in enumerate(narrative.segments):
        for position, segment_id in enumerate(segment.segment_ids):
            if segment_id not in known:
                raise FormatError(f"segment id {segment_id} is not among image {narrative.image_id}'s "
                                  f"segments_info", location, f"segments[{index}].segment_ids[{position}]")
    return narrative


def _parse_narrative(location: Location, raw, panoptic: Mapping[int, PanopticImage] | None) -> PNGNarrative:
    image_id = _id(require(raw, "image_id", (str, int), location), location, "image_id")
    segments = []
    for index, segment in enumerate(require(raw, "segments", list, location)):
        prefix = f"segments[{index}]."
        ids = require(segment, "segment_ids", list, location, prefix=prefix)
        segments.append(PNGSegment(
            utterance=require(segment, "utterance", str, location, prefix=prefix),
            is_noun=require(segment, "noun", bool, location, prefix=prefix),
            segment_ids=tuple(_id(v, location, f"{prefix}segment_ids[{i}]") for i, v in enumerate(ids)),
            plural=require(segment, "plural", bool, location, prefix=prefix, optional=True)))
    narrative = PNGNarrative(image_id, require(raw, "caption", str, location), tuple(segments),
                             require(raw, "annotator_id", int, location, optional=True))
    return narrative if panoptic is None else _check_narrative(location, narrative, panoptic)


def read_png_narratives(path: str | os.PathLike, *, report: ReadReport | None = None,
                        panoptic: Mapping[int, PanopticImage] | None = None) -> list[PNGNarrative]:
    """``png_coco_<split>.json`` → narratives in file order (records are located by their list index).

    Args:
        panoptic: when given (:func:`read_panoptic_annotations`), unknown image ids and segment ids are errors.
    """
    path = str(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise FormatError("expected a JSON list of narratives", Location(path))
    return list(read_records(((Location(path, record=index), raw) for index, raw in enumerate(data)),
                             lambda location, raw: _parse_narrative(location, raw, panoptic), report))


def check_png_narratives(narratives: Iterable[PNGNarrative], panoptic: Mapping[int, PanopticImage], *,
                         source: str | os.PathLike = "<narratives>",
                         report: ReadReport | None = None) -> list[PNGNarrative]:
    """Check that every narrative's image and referenced segment ids exist in ``panoptic``.

    Raises a FormatError located at ``source`` (a file name for the message), narrative index and field, or, with
    ``report``, skips bad narratives; returns the narratives that pass.
    """
    return list(read_records(((Location(str(source), record=index), n) for index, n in enumerate(narratives)),
                             lambda location, narrative: _check_narrative(location, narrative, panoptic), report))


def _narrative_record(narrative: PNGNarrative) -> dict:
    segments = []
    for segment in narrative.segments:
        record = {"utterance": segment.utterance, "segment_ids": [str(v) for v in segment.segment_ids],
                  "noun": segment.is_noun}
        if segment.plural is not None:
            record["plural"] = segment.plural
        segments.append(record)
    record = {"image_id": str(narrative.image_id), "caption": narrative.caption, "segments": segments}
    if narrative.annotator_id is not None:
        record["annotator_id"] = narrative.annotator_id
    return record


def write_png_narratives(path: str | os.PathLike, narratives: Iterable[PNGNarrative]) -> None:
    """Write a ``png_coco_<split>.json`` list (ids as digit strings, like the release), atomically."""
    write_json(path, [_narrative_record(n) for n in narratives])


# --- panoptic PNGs --------------------------------------------------------------------------------------------------

def decode_panoptic(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W) int64 segment ids R + 256·G + 256²·B (0 = unlabelled in COCO)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a panoptic image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def encode_panoptic(ids: np.ndarray) -> np.ndarray:
    """(H, W) integer segment ids in [0, 256³) → (H, W, 3) uint8 RGB; inverse of :func:`decode_panoptic`."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"segment ids must be an (H, W) integer array, got {ids.shape} {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= 256 ** 3):
        raise ValueError(f"segment ids must lie in [0, 256**3), got [{ids.min()}, {ids.max()}]")
    ids = ids.astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // (256 * 256)], axis=-1).astype(np.uint8)


def read_panoptic_png(path: str | os.PathLike) -> np.ndarray:
    """A COCO panoptic PNG as (H, W) int64 segment ids; FormatError naming the file if unreadable or not RGB."""
    image = load_image(path, what="panoptic image")
    if image.mode != "RGB":
        raise FormatError(f"expected an RGB panoptic PNG, got mode {image.mode}", Location(str(path)))
    return decode_panoptic(np.asarray(image, dtype=np.uint8))


def write_panoptic_png(path: str | os.PathLike, ids: np.ndarray) -> None:
    """Write (H, W) segment ids as an RGB panoptic PNG, atomically."""
    image = Image.fromarray(encode_panoptic(ids), mode="RGB")
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")


def noun_mask(ids: np.ndarray, segment_ids: Sequence[int]) -> np.ndarray:
    """(H, W) bool target of a noun: pixels whose id is one of ``segment_ids`` (plural nouns: the union).

    Raises:
        ValueError when ``segment_ids`` is empty or names an id absent from ``ids`` (wrong image or corrupt PNG).
    """
    ids = np.asarray(ids)
    if len(segment_ids) == 0:
        raise ValueError("a noun without segment ids has no mask")
    present = np.isin(segment_ids, ids)
    if not present.all():
        missing = [int(v) for v, ok in zip(segment_ids, present) if not ok]
        raise ValueError(f"segment ids {missing} do not occur in the panoptic image")
    return np.isin(ids, segment_ids)


# --- panoptic annotation JSON -------------------------------------------------------------------------------------

def _parse_segment(raw, location: Location, prefix: str, categories: Mapping[int, bool]) -> PanopticSegment:
    segment_id = require(raw, "id", int, location, prefix=prefix)
    if not 0 <= segment_id < 256 ** 3:
        raise FormatError(f"segment id {segment_id} does not fit an RGB PNG", location, f"{prefix}id")
    category_id = require(raw, "category_id", int, location, prefix=prefix)
    if category_id not in categories:
        raise FormatError(f"unknown category id {category_id}", location, f"{prefix}category_id")
    area = require(raw, "area", (int, float), location, prefix=prefix)
    if area < 0:
        raise FormatError(f"negative area {area}", location, f"{prefix}area")
    bbox = require(raw, "bbox", list, location, prefix=prefix)
    if len(bbox) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
        raise FormatError(f"expected [x, y, width, height] numbers, got {bbox!r:.60}", location, f"{prefix}bbox")
    return PanopticSegment(segment_id, category_id, require(raw, "iscrowd", int, location, prefix=prefix), area,
                           tuple(bbox), categories[category_id])


def read_panoptic_annotations(path: str | os.PathLike, *,
                              report: ReadReport | None = None) -> dict[int, PanopticImage]:
    """``panoptic_<split>.json`` → ``{image_id: PanopticImage}`` (annotations located by their list index)."""
    path = str(path)
    data = read_json(path)
    categories = {}
    for index, raw in enumerate(require(data, "categories", list, Location(path))):
        location = Location(path, record=f"categories[{index}]")
        categories[require(raw, "id", int, location)] = bool(require(raw, "isthing", (int, bool), location))
    images = {}
    for index, raw in enumerate(require(data, "images", list, Location(path))):
        location = Location(path, record=f"images[{index}]")
        images[require(raw, "id", int, location)] = (require(raw, "file_name", str, location),
                                                     require(raw, "width", int, location),
                                                     require(raw, "height", int, location))

    parsed: dict[int, PanopticImage] = {}

    def parse(location: Location, raw) -> PanopticImage:
        image_id = require(raw, "image_id", int, location)
        if image_id not in images:
            raise FormatError(f"unknown image id {image_id}", location, "image_id")
        if image_id in parsed:
            raise FormatError(f"a second annotation of image {image_id}", location, "image_id")
        image_file_name, width, height = images[image_id]
        segments = [_parse_segment(segment, location, f"segments_info[{index}].", categories)
                    for index, segment in enumerate(require(raw, "segments_info", list, location))]
        parsed[image_id] = PanopticImage(image_id, require(raw, "file_name", str, location), image_file_name,
                                         width, height, tuple(segments))
        return parsed[image_id]

    annotations = require(data, "annotations", list, Location(path))
    list(read_records(((Location(path, record=f"annotations[{i}]"), raw) for i, raw in enumerate(annotations)),
                      parse, report))  # parse fills ``parsed``
    return parsed


def write_panoptic_annotations(path: str | os.PathLike, images: Iterable[PanopticImage], *,
                               categories: Sequence[Mapping]) -> None:
    """Write a ``panoptic_<split>.json`` (for fixtures and sample data), atomically.

    Args:
        categories: ``[{"id", "name", "isthing"}, ...]``; every segment's category must be there, with the same
            ``isthing``.
    """
    isthing = {c["id"]: bool(c["isthing"]) for c in categories}
    images = list(images)
    for image in images:
        for segment in image.segments:
            if segment.category_id not in isthing or isthing[segment.category_id] != segment.isthing:
                raise ValueError(f"image {image.image_id} segment {segment.id}: category {segment.category_id} is "
                                 f"unknown or disagrees on isthing")
    write_json(path, {
        "images": [{"id": i.image_id, "file_name": i.image_file_name, "width": i.width, "height": i.height}
                   for i in images],
        "annotations": [{"image_id": i.image_id, "file_name": i.file_name,
                         "segments_info": [{"id": s.id, "category_id": s.category_id, "iscrowd": s.iscrowd,
                                            "area": s.area, "bbox": list(s.bbox)} for s in i.segments]}
                        for i in images],
        "categories": [dict(c) for c in categories],
    })
