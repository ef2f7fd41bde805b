"""The Point-VOS annotation release (FORMATS.md §2): PV-Oops ``{split}.json`` and PV-Kinetics ``train.jsonl``.

PV-Oops holds one JSON object ``{object_id: record}`` per split; PV-Kinetics one ``{object_id: record}`` per line.
The file suffix decides which (``.json`` or ``.jsonl``). Statuses map to :class:`vng.types.PointLabel`:
ACCEPTED → foreground, REJECTED → background, AMBIGUOUS → ambiguous.

An optional ``noun_span`` key ([start, end] of ``object_name`` in ``question``) is read and written when present:
it is this library's extension for VNG sets built from narratives; the public release does not have it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from vng.io.common import (FormatError, Location, ReadReport, atomic_write, iter_jsonl, read_json, read_records,
                           require)
from vng.types import FramePoints, ObjectAnnotation, PointLabel, Points, VideoRef, frame_id, parse_frame_id

__all__ = ["STATUS_TO_LABEL", "LABEL_TO_STATUS", "read_pv_annotations", "write_pv_annotations", "pv_record",
           "pv_video_path", "pv_annotation_path", "pseudo_mask_path"]

STATUS_TO_LABEL = {"ACCEPTED": PointLabel.FOREGROUND, "REJECTED": PointLabel.BACKGROUND,
                   "AMBIGUOUS": PointLabel.AMBIGUOUS}
LABEL_TO_STATUS = {int(label): status for status, label in STATUS_TO_LABEL.items()}


def pv_video_path(root: str | os.PathLike, dataset: str, split: str, video_name: str) -> Path:
    """Where the release expects a video: ``<root>/<Dataset>/videos/<split>/<video_name>.mp4``."""
    return Path(root) / dataset / "videos" / split / f"{video_name}.mp4"


def pv_annotation_path(root: str | os.PathLike, dataset: str, split: str) -> Path:
    """The annotation file of a split: ``<root>/<Dataset>/<split>.json`` (PV-Oops) or ``.jsonl`` (PV-Kinetics)."""
    candidates = [Path(root) / dataset / f"{split}{suffix}" for suffix in (".json", ".jsonl")]
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise FileNotFoundError(f"no annotation file for split {split!r}: expected {candidates[0]} or {candidates[1]}")
    if len(found) > 1:
        raise ValueError(f"split {split!r} has two annotation files, {found[0]} and {found[1]}: keep one")
    return found[0]


def pseudo_mask_path(root: str | os.PathLike, dataset: str, split: str, object_id: str, frame_index: int) -> Path:
    """Where an Oops-VNG / Kinetics-VNG pseudo-mask lives: ``<root>/<Dataset>/pseudo_masks/<split>/<object_id>/<frame_id>.png``
    (palette PNG, 0 background, 1 object; this library's layout — the release ships no pseudo-masks)."""
    return Path(root) / dataset / "pseudo_masks" / split / object_id / f"{frame_id(frame_index)}.png"


def _parse_record(location: Location, object_id: str, raw, videos: Mapping[str, VideoRef] | None) -> ObjectAnnotation:
    location = location.at(record=object_id)
    video_name = require(raw, "video_name", (str, type(None)), location)
    video = None if videos is None or video_name is None else videos.get(video_name)
    if videos is not None and video_name is not None and video is None:
        raise FormatError(f"video {video_name!r} is not among the known videos", location, "video_name")
    by_frame: dict[int, list[tuple[int, int, int, bool]]] = {}
    for index, point in enumerate(require(raw, "annotated_points", list, location)):
        prefix = f"annotated_points[{index}]."
        x = require(point, "x", int, location, prefix=prefix)
        y = require(point, "y", int, location, prefix=prefix)
        status = require(point, "status", str, location, prefix=prefix)
        if status not in STATUS_TO_LABEL:
            raise FormatError(f"unknown status {status!r} (expected one of {sorted(STATUS_TO_LABEL)})", location,
                              f"{prefix}status")
        raw_frame = require(point, "frame_id", str, location, prefix=prefix)
        try:
            frame_index = parse_frame_id(raw_frame)
        except ValueError as error:
            raise FormatError(str(error), location, f"{prefix}frame_id") from None
        if video is not None and video.num_frames is not None and frame_index >= video.num_frames:
            raise FormatError(f"frame {raw_frame} does not exist: video {video_name!r} has {video.num_frames} frames",
                              location, f"{prefix}frame_id")
        if x < 0 or y < 0 or (video is not None and video.width is not None
                              and (x >= video.width or y >= video.height)):
            size = f"{video.width}x{video.height}" if video is not None and video.width else "the frame"
            raise FormatError(f"point ({x}, {y}) is outside {size}", location, f"{prefix}x")
        candidate = require(point, "is_fg_candidate", bool, location, prefix=prefix)
        by_frame.setdefault(frame_index, []).append((x, y, int(STATUS_TO_LABEL[status]), candidate))
    frames = []
    for frame_index in sorted(by_frame):
        rows = by_frame[frame_index]
        frames.append(FramePoints(frame_index, Points(
            xy=np.array([(x, y) for x, y, _, _ in rows], np.float32),
            labels=np.array([label for _, _, label, _ in rows], np.int8),
            is_fg_candidate=np.array([candidate for _, _, _, candidate in rows], bool))))
    span = require(raw, "noun_span", list, location, optional=True)
    return ObjectAnnotation(
        object_id=object_id, video_name=video_name,
        object_name=require(raw, "object_name", str, location),
        question=require(raw, "question", str, location),
        question_hash=require(raw, "question_hash", str, location),
        frames=tuple(frames), noun_span=None if span is None else tuple(span))


def _iter_raw(path: str, report: ReadReport | None) -> Iterator[tuple[Location, tuple[str, object]]]:
    if path.endswith(".jsonl"):
        for location, line in iter_jsonl(path, report):
            if not isinstance(line, dict) or len(line) != 1:
                error = FormatError("each line must be an object with exactly one {object_id: record}", location)
                if report is None:
                    raise error
                report.skipped.append(error)
                continue
            yield location, next(iter(line.items()))
    else:
        data = read_json(path)
        if not isinstance(data, dict):
            raise FormatError("expected a JSON object {object_id: record}", Location(path))
        for object_id, record in data.items():
            yield Location(path), (object_id, record)


def read_pv_annotations(path: str | os.PathLike, *, videos: Mapping[str, VideoRef] | None = None,
                        report: ReadReport | None = None, skip_missing_video: bool = True) -> list[ObjectAnnotation]:
    """Read PV-Oops (``.json``) or PV-Kinetics (``.jsonl``) annotations.

    Args:
        videos: when given (video name → :class:`VideoRef` with ``num_frames``/``width``/``height``), points are
            checked against the frame count and size, and unknown video names are errors.
        report: skip bad records and collect them here instead of raising.
        skip_missing_video: drop records whose ``video_name`` is null (the release says to skip them).
    """
    path = str(path)
    objects = read_records(_iter_raw(path, report),
                           lambda location, item: _parse_record(location, item[0], item[1], videos), report)
    return [obj for obj in objects if not (skip_missing_video and obj.video_name is None)]


def pv_record(obj: ObjectAnnotation) -> dict:
    """One object as the release's record (points in frame order, coordinates rounded to integer pixels)."""
    points = []
    for frame in obj.frames:
        candidate = frame.points.is_fg_candidate
        if candidate is None:
            candidate = frame.points.labels == PointLabel.FOREGROUND
        for (x, y), label, is_candidate in zip(np.rint(frame.points.xy), frame.points.labels, candidate):
            points.append({"x": int(x), "y": int(y), "frame_id": frame_id(frame.frame_index),
                           "status": LABEL_TO_STATUS[int(label)], "is_fg_candidate": bool(is_candidate)})
    record = {"question_hash": obj.question_hash, "question": obj.question, "object_name": obj.object_name,
              "video_name": obj.video_name, "annotated_points": points}
    if obj.noun_span is not None:
        record["noun_span"] = list(obj.noun_span)
    return record


def write_pv_annotations(path: str | os.PathLike, objects: Iterable[ObjectAnnotation]) -> None:
    """Write PV-Oops ``.json`` (one object) or PV-Kinetics ``.jsonl`` (a line per object), atomically.

    Points without ``is_fg_candidate`` are written with ``is_fg_candidate = (label == foreground)``.
    """
    path = str(path)
    objects = list(objects)
    ids = [obj.object_id for obj in objects]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate object ids would be lost in {path}")
    with atomic_write(path) as handle:
        if path.endswith(".jsonl"):
            for obj in objects:
                handle.write(json.dumps({obj.object_id: pv_record(obj)}, ensure_ascii=False) + "\n")
        else:
            json.dump({obj.object_id: pv_record(obj) for obj in objects}, handle, ensure_ascii=False)
            handle.write("\n")
