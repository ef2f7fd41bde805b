"""The files the annotation pipeline's stages hand each other (:mod:`vng.pipeline`), one reader and writer each.

Stage 1, objects — JSONL, one :class:`~vng.types.TracedObject` per line::

    {"object_id": "0f3c…", "source": "narratives", "video_name": "c1a40349", "video_path": "…/c1a40349.mp4",
     "dataset": "OVIS", "split": "train", "num_frames": 72, "frame_size": [1280, 720],
     "object_name": "people", "question": "A group of people is cycling on the grey road.", "question_hash": "",
     "noun_span": [11, 17], "mentions": [[11, 17]], "actor_name": "Group of people", "vidln_id": 0,
     "keyframe_name": "img_0000040", "keyframe_id": "000039",
     "trace": {"size": [720, 1280], "counts": "…"}, "trace_area": 1534}

``keyframe_id`` is the decoded frame's 6-digit id (the release's ``frame_id``); ``trace`` the COCO RLE of the trace
rasterised on it.

Stage 2, keyframe pseudo-masks — JSONL, one :class:`~vng.types.TraceMask` per line:
``{"object_id", "mask": "<path relative to the video's work folder>", "score": predicted IoU or null, "area"}``.

Stage 3, probability maps — one ``.npz`` per video: ``frames`` = the frame indices, and per object ``<object_id>``
= its (F, H, W) uint8 maps (:class:`~vng.types.ObjectProbabilities`).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from typing import Iterable

import numpy as np

from vng.io.common import (FormatError, Location, ReadReport, atomic_write, iter_jsonl, read_records, require,
                           write_jsonl)
from vng.io.masks import check_rle
from vng.types import ObjectProbabilities, TracedObject, TraceMask, frame_id, parse_frame_id

__all__ = ["traced_object_record", "write_traced_objects", "read_traced_objects", "write_trace_masks",
           "read_trace_masks", "write_probabilities", "read_probabilities"]


def _span(value) -> list[int] | None:
    return None if value is None else list(value)


def traced_object_record(obj: TracedObject) -> dict:
    """One object as its JSON record (module docstring)."""
    return {"object_id": obj.object_id, "source": obj.source, "video_name": obj.video_name,
            "video_path": obj.video_path, "dataset": obj.dataset, "split": obj.split, "num_frames": obj.num_frames,
            "frame_size": list(obj.frame_size), "object_name": obj.object_name, "question": obj.question,
            "question_hash": obj.question_hash, "noun_span": _span(obj.noun_span),
            "mentions": [list(span) for span in obj.mentions], "actor_name": obj.actor_name,
            "vidln_id": obj.vidln_id, "keyframe_name": obj.keyframe_name, "keyframe_id": frame_id(obj.keyframe),
            "trace": obj.trace, "trace_area": obj.trace_area}


def _pair(raw, location: Location, field: str) -> tuple[int, int]:
    if (not isinstance(raw, list) or len(raw) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw)):
        raise FormatError(f"expected a pair of integers, got {raw!r:.40}", location, field)
    return raw[0], raw[1]


def _parse_object(location: Location, raw) -> TracedObject:
    object_id = require(raw, "object_id", str, location)
    location = location.at(record=object_id)
    keyframe = require(raw, "keyframe_id", str, location)
    try:
        keyframe_index = parse_frame_id(keyframe)
    except ValueError as error:
        raise FormatError(str(error), location, "keyframe_id") from None
    span = require(raw, "noun_span", (list, type(None)), location)
    return TracedObject(
        object_id=object_id, source=require(raw, "source", str, location),
        video_name=require(raw, "video_name", str, location), video_path=require(raw, "video_path", str, location),
        dataset=require(raw, "dataset", str, location), split=require(raw, "split", str, location),
        num_frames=require(raw, "num_frames", int, location),
        frame_size=_pair(require(raw, "frame_size", list, location), location, "frame_size"),
        object_name=require(raw, "object_name", str, location), question=require(raw, "question", str, location),
        question_hash=require(raw, "question_hash", str, location),
        noun_span=None if span is None else _pair(span, location, "noun_span"),
        mentions=tuple(_pair(item, location, f"mentions[{index}]")
                       for index, item in enumerate(require(raw, "mentions", list, location))),
        actor_name=require(raw, "actor_name", str, location),
        vidln_id=require(raw, "vidln_id", (int, type(None)), location),
        keyframe_name=require(raw, "keyframe_name", str, location), keyframe=keyframe_index,
        trace=check_rle(require(raw, "trace", dict, location), location, "trace"),
        trace_area=require(raw, "trace_area", int, location))


def write_traced_objects(path: str | os.PathLike, objects: Iterable[TracedObject]) -> None:
    """Write stage 1's objects JSONL atomically."""
    write_jsonl(path, (traced_object_record(obj) for obj in objects))


def read_traced_objects(path: str | os.PathLike, *, report: ReadReport | None = None) -> list[TracedObject]:
    """Read stage 1's objects JSONL; a bad record raises a FormatError naming file, line, object and field."""
    return list(read_records(iter_jsonl(path, report), _parse_object, report))


def write_trace_masks(path: str | os.PathLike, masks: Iterable[TraceMask]) -> None:
    """Write stage 2's records JSONL atomically."""
    write_jsonl(path, ({"object_id": m.object_id, "mask": m.mask,
                        "score": None if m.score is None else round(m.score, 5), "area": m.area} for m in masks))


def _parse_trace_mask(location: Location, raw) -> TraceMask:
    object_id = require(raw, "object_id", str, location)
    location = location.at(record=object_id)
    return TraceMask(object_id=object_id, mask=require(raw, "mask", str, location),
                     score=require(raw, "score", (float, type(None)), location),
                     area=require(raw, "area", int, location))


def read_trace_masks(path: str | os.PathLike, *, report: ReadReport | None = None) -> list[TraceMask]:
    """Read stage 2's records JSONL."""
    return list(read_records(iter_jsonl(path, report), _parse_trace_mask, report))


def write_probabilities(path: str | os.PathLike, objects: Iterable[ObjectProbabilities]) -> None:
    """Write one video's maps as a compressed ``.npz`` atomically; every object must have the same frames."""
    objects = list(objects)
    frames = {obj.frames for obj in objects}
    if len(frames) > 1:
        raise ValueError(f"the objects of one file must share their frames, got {sorted(frames)}")
    arrays = {obj.object_id: obj.maps for obj in objects}
    if "frames" in arrays:
        raise ValueError("'frames' is not an object id")
    with atomic_write(path, "wb") as handle:
        np.savez_compressed(handle, frames=np.asarray(next(iter(frames), ()), np.int64), **arrays)


def read_probabilities(path: str | os.PathLike) -> list[ObjectProbabilities]:
    """Read one video's maps (:func:`write_probabilities`), in the order they were written."""
    location = Location(str(path))
    try:
        with np.load(path, allow_pickle=False) as data:
            if "frames" not in data.files:
                raise FormatError("no 'frames' array", location, "frames")
            frames = tuple(int(v) for v in np.asarray(data["frames"]).reshape(-1))
            objects = []
            for object_id in data.files:
                if object_id != "frames":
                    try:
                        objects.append(ObjectProbabilities(object_id, frames, data[object_id]))
                    except (ValueError, TypeError) as error:
                        raise FormatError(str(error), location.at(record=object_id)) from None
            return objects
    except FormatError:
        raise
    # what a damaged .npz raises: a zip or zlib error, a short read, an unparsable array header
    except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise FormatError(f"cannot read the probability maps: {error}", location) from None
