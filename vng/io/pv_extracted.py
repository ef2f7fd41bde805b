"""The Point-VOS release's extracted layout (FORMATS.md §2): frames and point PNGs keyed by *object id*.

The release's ``extract_frames.py`` writes, per object::

    <root>/<Dataset>/<split>/JPEGImages/<object_id>/<frame_id>.jpg     every frame of the object's video, %06d
    <root>/<Dataset>/<split>/Annotations/<object_id>/<frame_id>.png    palette PNG, one pixel per point:
                                                                       0 none, 1 REJECTED, 2 ACCEPTED, 255 AMBIGUOUS

:func:`read_point_pngs` reads the PNGs into :class:`~vng.types.ObjectAnnotation` records. A PNG keeps less than the
JSON record, so what it lacks is filled in, and taken from the JSON when it is given (``records``):

- ``object_name``, ``question``, ``question_hash``: "" (from the JSON record when there is one);
- ``video_name``: the object id, because in this layout the object's frames are the folder named by it
  (:func:`vng.io.pointvos.find_pv_frames` finds them there); the JSON's name when the record has one;
- ``is_fg_candidate``: None (unknown; writers then use ``label == foreground``), or the JSON's flag of the same point;
- the points of a frame come in row-major pixel order (the JSON's order is lost), at integer pixels.

:func:`read_pv_split` reads a split whichever of the two the user has: the JSON alone, the PNGs alone, or both,
combined (the JSON's records, checked against the PNGs where both describe an object, and the PNG-only objects).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from vng.io.common import FormatError, Location, ReadReport, read_records
from vng.io.masks import read_mask_png, write_mask_png
from vng.io.pointvos import fg_candidate_flags, pv_annotation_path, read_pv_annotations
from vng.io.video import list_frame_files
from vng.types import FramePoints, ObjectAnnotation, PointLabel, Points, frame_id, parse_frame_id

__all__ = ["PNG_LABELS", "point_pngs_dir", "read_point_pngs", "write_point_pngs", "release_names", "read_pv_source",
           "read_pv_split"]

# PNG value → point label (the release's rendering convention); 0 is "no point"
PNG_LABELS = {1: PointLabel.BACKGROUND, 2: PointLabel.FOREGROUND, 255: PointLabel.AMBIGUOUS}
_LABEL_VALUES = {int(label): value for value, label in PNG_LABELS.items()}


def point_pngs_dir(root: str | os.PathLike, dataset: str, split: str) -> Path:
    """``<root>/<Dataset>/<split>/Annotations``: the folder of one folder of point PNGs per object."""
    return Path(root) / dataset / split / "Annotations"


def _frame_points(path: Path) -> tuple[int, Points]:
    try:
        frame_index = parse_frame_id(path.stem)
    except ValueError as error:
        raise FormatError(str(error), Location(str(path))) from None
    values = read_mask_png(path)
    unknown = sorted(set(np.unique(values).tolist()) - set(PNG_LABELS) - {0})
    if unknown:
        raise FormatError(f"pixel values {unknown[:5]} are none of 0 (no point), 1 (REJECTED), 2 (ACCEPTED), "
                          "255 (AMBIGUOUS)", Location(str(path)))
    rows, columns = np.nonzero(values)
    labels = [PNG_LABELS[int(value)] for value in values[rows, columns]]
    return frame_index, Points(np.stack([columns, rows], 1).astype(np.float32), np.asarray(labels, np.int8))


def _candidates(points: Points, frame_index: int, record: ObjectAnnotation, path: Path) -> np.ndarray:
    """The JSON record's ``is_fg_candidate`` of the PNG's points; a FormatError when the two disagree on the points."""
    known = {frame.frame_index: frame.points for frame in record.frames}.get(frame_index)
    if known is None:
        raise FormatError(f"object {record.object_id!r} has no points on frame {frame_id(frame_index)} in the JSON",
                          Location(str(path)))
    flags = {(int(x), int(y), int(label)): bool(flag) for (x, y), label, flag
             in zip(np.floor(known.xy), known.labels, fg_candidate_flags(known))}
    keys = [(int(x), int(y), int(label)) for (x, y), label in zip(points.xy, points.labels)]
    if sorted(keys) != sorted(flags):
        missing = sorted(set(flags) - set(keys))[:3]
        extra = sorted(set(keys) - set(flags))[:3]
        raise FormatError(f"the points differ from the JSON's: (x, y, label) {missing} only in the JSON, {extra} "
                          "only in the PNG (a pixel holds one point: two points on one pixel cannot be stored)",
                          Location(str(path)))
    return np.asarray([flags[key] for key in keys], bool)


def _parse_object(folder: Path, records: Mapping[str, ObjectAnnotation]) -> ObjectAnnotation:
    record = records.get(folder.name)
    frames = []
    for path in list_frame_files(folder, suffixes=(".png",)):
        frame_index, points = _frame_points(path)
        candidates = None if record is None else _candidates(points, frame_index, record, path)
        frames.append(FramePoints(frame_index, Points(points.xy, points.labels, candidates)))
    missing = sorted(set(record.frame_indices) - {frame.frame_index for frame in frames}) if record else []
    if missing:
        raise FormatError(f"the JSON has points on frames {[frame_id(i) for i in missing[:5]]}, which have no PNG",
                          Location(str(folder)))
    if record is None:
        return ObjectAnnotation(object_id=folder.name, video_name=folder.name, object_name="", question="",
                                question_hash="", frames=tuple(frames))
    return ObjectAnnotation(object_id=folder.name, video_name=record.video_name or folder.name,
                            object_name=record.object_name, question=record.question,
                            question_hash=record.question_hash, frames=tuple(frames), noun_span=record.noun_span)


def read_point_pngs(folder: str | os.PathLike, *, records: Mapping[str, ObjectAnnotation] | None = None,
                    report: ReadReport | None = None) -> list[ObjectAnnotation]:
    """The objects of an ``Annotations`` folder of point PNGs (module docstring), in object id order.

    Args:
        records: the JSON's records by object id, to take what the PNGs lack from (and to check them against).
        report: skip bad objects (an unreadable PNG, unknown pixel values, points that differ from the JSON's) and
            collect the errors here instead of raising.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError("no such folder of point PNGs", Location(str(folder)))
    objects = sorted(path for path in folder.iterdir() if path.is_dir())
    return list(read_records(((Location(str(path)), path) for path in objects),
                             lambda location, path: _parse_object(path, records or {}), report))


def write_point_pngs(folder: str | os.PathLike, objects: Iterable[ObjectAnnotation],
                     frame_size: Mapping[str, tuple[int, int]]) -> None:
    """Write each object's points as ``<folder>/<object_id>/<frame_id>.png`` (one pixel per point, ``floor(x),
    floor(y)``), each file atomically; ``frame_size``: (width, height) per object id.

    Raises:
        ValueError when two points of a frame share a pixel (the layout cannot hold both) or one is outside.
    """
    for obj in objects:
        width, height = frame_size[obj.object_id]
        for frame in obj.frames:
            values = np.zeros((height, width), np.uint8)
            if frame.points.outside(width, height).any():
                raise ValueError(f"object {obj.object_id} frame {frame.frame_index}: a point outside {width}x{height}")
            pixels = np.floor(frame.points.xy).astype(int)
            if len({tuple(pixel) for pixel in pixels.tolist()}) != len(pixels):
                raise ValueError(f"object {obj.object_id} frame {frame.frame_index}: two points on one pixel")
            values[pixels[:, 1], pixels[:, 0]] = [_LABEL_VALUES[int(label)] for label in frame.points.labels]
            write_mask_png(Path(folder) / obj.object_id / f"{frame_id(frame.frame_index)}.png", values)


def release_names(path: str | os.PathLike) -> tuple[str, str]:
    """(Dataset, split) of a release path: ``<root>/<Dataset>/<split>.json[l]`` or the point PNGs'
    ``<root>/<Dataset>/<split>/Annotations``."""
    path = Path(path).resolve()
    if path.name == "Annotations":
        return path.parent.parent.name, path.parent.name
    return path.parent.name, path.stem


def read_pv_source(path: str | os.PathLike, *, report: ReadReport | None = None) -> list[ObjectAnnotation]:
    """Point-VOS annotations from a release file (``.json``, ``.jsonl``: :func:`read_pv_annotations`) or a folder
    of point PNGs (:func:`read_point_pngs`; the release's ``<root>/<Dataset>/<split>/Annotations`` is combined with
    the split's JSON when that exists: :func:`read_pv_split`)."""
    path = Path(path)
    if not path.is_dir():
        return read_pv_annotations(path, report=report)
    if path.name == "Annotations":
        dataset, split = release_names(path)
        return read_pv_split(path.resolve().parent.parent.parent, dataset, split, report=report)
    return read_point_pngs(path, report=report)


def read_pv_split(root: str | os.PathLike, dataset: str, split: str, *,
                  report: ReadReport | None = None) -> list[ObjectAnnotation]:
    """A split of the release from its JSON (``<Dataset>/<split>.json[l]``), its point PNGs
    (:func:`point_pngs_dir`), or both combined: the JSON's usable records (with a ``video_name``) in file order,
    each checked against its PNGs when it has them, then the objects only the PNGs have. A JSON record whose
    ``video_name`` is null but whose PNGs exist is kept: its frames are found by object id.

    Raises:
        FileNotFoundError when the split has neither.
    """
    pngs = point_pngs_dir(root, dataset, split)
    try:
        json_path = pv_annotation_path(root, dataset, split)
    except FileNotFoundError:
        if not pngs.is_dir():
            base = Path(root) / dataset / split
            raise FileNotFoundError(f"no annotations of split {split!r}: expected {base}.json, {base}.jsonl or the "
                                    f"point PNGs {pngs}") from None
        return read_point_pngs(pngs, report=report)
    records = read_pv_annotations(json_path, report=report, skip_missing_video=False)
    if not pngs.is_dir():
        return [obj for obj in records if obj.video_name is not None]
    from_pngs = {obj.object_id: obj for obj in read_point_pngs(pngs, records={r.object_id: r for r in records},
                                                                  report=report)}
    with_pngs = {path.name for path in pngs.iterdir() if path.is_dir()}  # those missing from from_pngs were skipped
    combined = [from_pngs.pop(obj.object_id) if obj.object_id in from_pngs else obj for obj in records
                if obj.object_id in from_pngs or obj.object_id not in with_pngs]
    return [obj for obj in combined if obj.video_name is not None] + list(from_pngs.values())
