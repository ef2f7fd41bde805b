"""YouTube-VOS on disk (FORMATS.md §5).

Layout::

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/<split>/Annotations/<video>/<frame>.png      palette PNG of object ids, only on annotated frames
    <root>/<split>/meta.json                            {"videos": {video: {"objects": {obj_id: {category, frames}}}}}

Object ids are the JSON's string keys ("1", "2", …); each must be an integer in [1, 255] because it is a palette
index in the annotation PNGs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from vng.io.common import FormatError, Location, ReadReport, read_json, read_records, require, write_json
from vng.io.masks import read_frame_mask, write_mask_png
from vng.io.video import list_frame_files, write_frames

__all__ = ["YTVOSObject", "read_ytvos_meta", "write_ytvos_meta", "ytvos_frame_paths", "read_ytvos_masks",
           "write_ytvos_video"]


@dataclass(frozen=True)
class YTVOSObject:
    """One object of a YouTube-VOS video: its category name and the stems of the frames it is annotated on."""

    category: str
    frames: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.category, str):
            raise TypeError(f"category must be a string, got {type(self.category).__name__}")
        frames = tuple(self.frames)
        if not all(isinstance(name, str) for name in frames):
            raise TypeError(f"frames must be frame stem strings, got {frames!r:.60}")
        object.__setattr__(self, "frames", frames)


def _check_object_id(object_id, location: Location) -> str:
    if not isinstance(object_id, str) or not object_id.isdigit() or not 1 <= int(object_id) <= 255:
        raise FormatError(f"object id {object_id!r} must be an integer string in [1, 255] (a palette index)",
                          location, f"objects.{object_id}")
    return object_id


def _parse_video(location: Location, item) -> tuple[str, dict[str, YTVOSObject]]:
    video, raw = item
    location = location.at(record=video)
    objects = {}
    for object_id, raw_object in require(raw, "objects", dict, location).items():
        prefix = f"objects.{_check_object_id(object_id, location)}."
        frames = require(raw_object, "frames", list, location, prefix=prefix)
        for index, name in enumerate(frames):
            if not isinstance(name, str):
                raise FormatError(f"expected a frame stem string, got {name!r}", location, f"{prefix}frames[{index}]")
        objects[object_id] = YTVOSObject(require(raw_object, "category", str, location, prefix=prefix), tuple(frames))
    return video, objects


def read_ytvos_meta(path: str | os.PathLike, *,
                    report: ReadReport | None = None) -> dict[str, dict[str, YTVOSObject]]:
    """``meta.json`` as ``{video: {object_id: YTVOSObject}}`` (object ids stay strings, as in the file).

    A bad video raises a FormatError naming file, video and field, or is skipped into ``report``.
    """
    path = str(path)
    data = read_json(path)
    videos = require(data, "videos", dict, Location(path))
    return dict(read_records(((Location(path), item) for item in videos.items()), _parse_video, report))


def write_ytvos_meta(path: str | os.PathLike, meta: Mapping[str, Mapping[str, YTVOSObject]]) -> None:
    """Write ``meta.json`` from ``{video: {object_id: YTVOSObject}}``, atomically."""
    videos = {}
    for video, objects in meta.items():
        for object_id in objects:
            _check_object_id(object_id, Location(str(path), record=video))
        videos[video] = {"objects": {object_id: {"category": obj.category, "frames": list(obj.frames)}
                                     for object_id, obj in objects.items()}}
    write_json(path, {"videos": videos})


def ytvos_frame_paths(root: str | os.PathLike, split: str, video: str) -> list[Path]:
    """The video's ``.jpg`` frames in order; FormatError naming the folder when missing or empty."""
    return list_frame_files(Path(root) / split / "JPEGImages" / video, suffixes=(".jpg",))


def read_ytvos_masks(root: str | os.PathLike, split: str, video: str) -> dict[str, np.ndarray]:
    """The video's annotations: ``{frame stem: (H, W) uint8 object ids}`` in frame order (annotated frames only).

    Raises:
        FormatError naming the video and frame when a mask has no frame or differs in size from its frame.
    """
    frames = {path.stem: path for path in ytvos_frame_paths(root, split, video)}
    masks = {}
    for path in list_frame_files(Path(root) / split / "Annotations" / video, suffixes=(".png",)):
        what = f"video {video!r} frame {path.stem!r}"
        if path.stem not in frames:
            raise FormatError(f"{what}: a mask without a frame in JPEGImages", Location(str(path)))
        masks[path.stem] = read_frame_mask(path, frames[path.stem], what)
    return masks


def write_ytvos_video(root: str | os.PathLike, split: str, video: str, frames: Iterable[np.ndarray],
                      masks: Mapping[str, np.ndarray], frame_names: Sequence[str], *, quality: int = 95) -> None:
    """Write one video in the YouTube-VOS layout (``meta.json`` is written separately, by :func:`write_ytvos_meta`).

    Args:
        frames: (H, W, 3) uint8 RGB, one per name in ``frame_names``, written as JPEG at ``quality``.
        masks: ``{frame stem: (H, W) uint8 object ids}`` for the annotated frames only (YouTube-VOS annotates a
            subset: every 5th frame in train, the first appearance of each object in valid).
        frame_names: the frame stems, e.g. ``"00000"``, ``"00005"``.
    """
    unknown = sorted(set(masks) - set(frame_names))
    if unknown:
        raise ValueError(f"video {video!r}: masks for frames {unknown} that are not in frame_names")
    root = Path(root) / split
    shapes: dict[str, tuple[int, ...]] = {}

    def recorded() -> Iterator[np.ndarray]:  # streams the frames, keeping only their sizes for the mask check
        for index, frame in enumerate(frames):
            if index < len(frame_names):
                shapes[frame_names[index]] = np.shape(frame)[:2]
            yield frame

    write_frames(root / "JPEGImages" / video, recorded(), names=frame_names, quality=quality)
    for name, mask in masks.items():
        if np.shape(mask) != shapes[name]:
            raise ValueError(f"video {video!r} frame {name!r}: mask shape {np.shape(mask)} differs from the frame's "
                             f"{shapes[name]}")
        write_mask_png(root / "Annotations" / video / f"{name}.png", mask)
