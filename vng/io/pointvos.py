"""The Point-VOS annotation release (FORMATS.md §2): PV-Oops ``{split}.json`` and PV-Kinetics ``train.jsonl``.

PV-Oops holds one JSON object ``{object_id: record}`` per split; PV-Kinetics one ``{object_id: record}`` per line.
The file suffix decides which (``.json`` or ``.jsonl``). Statuses map to :class:`vng.types.PointLabel`:
ACCEPTED → foreground, REJECTED → background, AMBIGUOUS → ambiguous.

An optional ``noun_span`` key ([start, end] of ``object_name`` in ``question``) is read and written when present:
it is this library's extension for VNG sets built from narratives; the public release does not have it.
"""

from __future__ import annotations

import json
import re
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from vng.io.common import (FormatError, Location, ReadReport, atomic_write, iter_jsonl, read_json, read_records,
                           require, skip_or_raise)
from vng.io.video import first_existing, video_candidates, video_ref
from vng.types import FramePoints, ObjectAnnotation, PointLabel, Points, VideoRef, frame_id, parse_frame_id

__all__ = ["STATUS_TO_LABEL", "LABEL_TO_STATUS", "read_pv_annotations", "write_pv_annotations", "pv_record",
           "release_file", "JSONL_DATASETS", "pv_video_path", "pv_frames_dir", "pv_frames_candidates", "find_pv_frames",
           "pv_annotation_path",
           "pseudo_mask_path", "fg_candidate_flags", "point_problem", "check_against_frames"]

STATUS_TO_LABEL = {"ACCEPTED": PointLabel.FOREGROUND, "REJECTED": PointLabel.BACKGROUND,
                   "AMBIGUOUS": PointLabel.AMBIGUOUS}
LABEL_TO_STATUS = {int(label): status for status, label in STATUS_TO_LABEL.items()}


JSONL_DATASETS = frozenset({"Kinetics"})  # the release ships PV-Kinetics as JSONL, PV-Oops as one JSON per split
_RELEASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def release_file(root: str | os.PathLike, dataset: str, split: str) -> Path:
    """Where a split's annotations go in a release: ``<root>/<Dataset>/<split>.jsonl`` for PV-Kinetics, ``.json``
    for the others (PV-Oops); the names must be plain file names."""
    for part in (dataset, split):
        if not _RELEASE_NAME.fullmatch(part):
            raise ValueError(f"dataset / split {part!r} cannot name a release file")
    return Path(root) / dataset / f"{split}{'.jsonl' if dataset in JSONL_DATASETS else '.json'}"


def pv_video_path(root: str | os.PathLike, dataset: str, split: str, video_name: str) -> Path:
    """Where the release expects a video: ``<root>/<Dataset>/videos/<split>/<video_name>.mp4``, the split not doubled
    when ``video_name`` carries it as a prefix (``"train/…"``, FORMATS.md §2)."""
    head, _, tail = video_name.partition("/")
    return Path(root) / dataset / "videos" / split / f"{tail if tail and head == split else video_name}.mp4"


def pv_frames_dir(root: str | os.PathLike, dataset: str, split: str, object_id: str) -> Path:
    """The release's extracted frames of an object: ``<root>/<Dataset>/<split>/JPEGImages/<object_id>/`` (every
    frame of its video, ``<frame_id>.jpg``)."""
    return Path(root) / dataset / split / "JPEGImages" / object_id


def pv_frames_candidates(root: str | os.PathLike, dataset: str, split: str, video_name: str | None,
                         object_id: str | None = None) -> list[Path]:
    """Where a release root may hold an object's frames, in the order :func:`find_pv_frames` tries: its video
    (:func:`pv_video_path`, then under the name as written when that carries a split prefix), then, given the
    object id, its extracted frames (:func:`pv_frames_dir`)."""
    videos = [pv_video_path(root, dataset, split, video_name)] if video_name is not None else []
    videos += [path for path in video_candidates(Path(root) / dataset / "videos" / split, video_name)
               if path.suffix == ".mp4"]
    extracted = [pv_frames_dir(root, dataset, split, object_id)] if object_id is not None else []
    return list(dict.fromkeys(videos)) + extracted


def find_pv_frames(root: str | os.PathLike, dataset: str, split: str, video_name: str | None,
                   object_id: str) -> Path:
    """An object's frames under a release root (:func:`pv_frames_candidates`); a FormatError naming the object and
    every path tried when there are none."""
    return first_existing(pv_frames_candidates(root, dataset, split, video_name, object_id),
                          f"frames of video {video_name!r}", Location(str(root), record=object_id))


def fg_candidate_flags(points: Points) -> np.ndarray:
    """(N,) bool ``is_fg_candidate`` of the points; where unknown, the release's reading: the ACCEPTED points."""
    return points.labels == PointLabel.FOREGROUND if points.is_fg_candidate is None else points.is_fg_candidate


def point_problem(x: float, y: float, frame_index: int, video: VideoRef) -> tuple[str, str] | None:
    """What is wrong with a point (x, y) on frame ``frame_index`` of ``video`` and in which field, or None: the frame
    must exist and the point's pixel ``floor(x), floor(y)`` lie in the frame (where ``video`` knows count and size)."""
    if video.num_frames is not None and frame_index >= video.num_frames:
        return (f"frame {frame_id(frame_index)} does not exist: video {video.name!r} has {video.num_frames} frames",
                "frame_id")
    for axis, value, size in (("x", x, video.width), ("y", y, video.height)):
        if value < 0 or (size is not None and value >= size):
            frame = f"the {video.width}x{video.height} frame" if video.width is not None else "the frame"
            return f"point ({x:g}, {y:g}) is outside {frame}", axis
    return None


def check_against_frames(objects: Iterable[ObjectAnnotation], frames_of: Callable[[ObjectAnnotation], Path], *,
                         source: str | os.PathLike) -> None:
    """Check every point of ``objects`` against the frames it lies on (``frames_of(obj)``: its video file or frame
    folder; frame count and size from :func:`vng.io.video.video_ref`, each video opened once): the checks
    :func:`read_pv_annotations` makes when given ``videos``, for callers that find the videos after reading.

    Raises:
        FormatError located at ``source`` (the annotation file), the object and the point's frame; or the
        FormatError of a missing or unreadable video.
    """
    videos: dict[Path, VideoRef] = {}
    for obj in objects:
        path = frames_of(obj)
        if path not in videos:
            videos[path] = video_ref(path, obj.video_name)
        video = videos[path]
        for frame in obj.frames:
            for (x, y) in frame.points.xy.tolist():
                problem = point_problem(x, y, frame.frame_index, video)
                if problem is not None:
                    raise FormatError(problem[0], Location(str(source), record=obj.object_id),
                                      f"annotated_points[frame_id={frame_id(frame.frame_index)}].{problem[1]}")


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
    """Where an Oops-VNG / Kinetics-VNG pseudo-mask lives:
    ``<root>/<Dataset>/pseudo_masks/<split>/<object_id>/<frame_id>.png`` (palette PNG, 0 background, 1 object; this
    library's layout — the release ships no pseudo-masks)."""
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
        problem = point_problem(x, y, frame_index, video or VideoRef(video_name or object_id))
        if problem is not None:
            raise FormatError(problem[0], location, f"{prefix}{problem[1]}")
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
        lines: dict[str, int] = {}  # object id → its line: a second record would silently replace the first
        for location, line in iter_jsonl(path, report):
            if not isinstance(line, dict) or len(line) != 1:
                skip_or_raise(FormatError("each line must be an object with exactly one {object_id: record}",
                                          location), report)
                continue
            object_id, record = next(iter(line.items()))
            if object_id in lines:
                skip_or_raise(FormatError(f"object id {object_id!r} was already given on line {lines[object_id]}",
                                          location.at(record=object_id)), report)
                continue
            lines[object_id] = location.line
            yield location, (object_id, record)
    else:
        data = read_json(path)  # a repeated object id is an error there (read_json refuses repeated keys)
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
    """One object as the release's record (points in frame order; x, y: the integer pixel a point lies in,
    ``floor(x), floor(y)``)."""
    points = []
    for frame in obj.frames:
        candidate = fg_candidate_flags(frame.points)
        for (x, y), label, is_candidate in zip(np.floor(frame.points.xy), frame.points.labels, candidate):
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
