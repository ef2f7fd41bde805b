"""Video Narrative Grounding files (OVIS-VNG, UVO-VNG; FORMATS.md §3).

- ``meta_expressions.json``: per video its frames, actor narratives and expressions (nouns marked by character
  indices into an actor's ``description``) → ``{video name: VNGVideo}``.
- Masks of an expression's ``obj_id`` come from a YouTube-VIS style file: the original dataset file (OVIS
  ``annotations_train.json``, UVO ``UVO_sparse_*_video.json``) or VNG's ``extra_masks.json``. Both read into
  ``([VISVideo], {annotation id: MaskTrack})``; the two id sets are disjoint and :func:`merge_tracks` joins them.

Sparse (UVO) files: recognised, as by the reference tools, by a ``ytid`` key in ``videos[0]``. Their
``segmentations`` hold one entry per ``file_names`` entry, which names the annotated frame (``<ytid>/<n>.png`` or
``img_<n>``: frame number ``n``). Each is placed at index ``n`` of a track padded with None up to the video's dense
frame count: ``frame_counts[video name]`` when given (e.g. ``len(meta[name].frames)`` from meta_expressions, what
the reference tools pad to), else the larger of ``length`` and the last annotated frame + 1. Writers invert this:
for a video with a ``ytid`` only the file_names frames are written. Dense (OVIS) files need one segmentation per
frame (``len(file_names) == length``).
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Mapping, Sequence

import numpy as np

from vng.io.common import FormatError, Location, ReadReport, read_json, read_records, require, write_json
from vng.io.masks import check_rle, rle_decode
from vng.types import MaskTrack, VISVideo, VNGActor, VNGExpression, VNGVideo

__all__ = ["read_meta_expressions", "write_meta_expressions", "meta_expressions_record", "read_extra_masks",
           "write_extra_masks", "read_vis_annotations", "write_vis_annotations", "expression_masks", "merge_tracks",
           "frame_number"]


# --- meta_expressions.json ------------------------------------------------------------------------------------------

def _parse_vng_video(location: Location, item, tracks: Mapping[int, MaskTrack] | None) -> VNGVideo:
    name, raw = item
    location = location.at(record=name)
    frames = require(raw, "frames", list, location)
    for index, frame in enumerate(frames):
        if not isinstance(frame, str):
            raise FormatError(f"expected a frame stem string, got {frame!r}", location, f"frames[{index}]")
    actors = []
    for position, actor in enumerate(require(raw, "actor_narratives", list, location)):
        prefix = f"actor_narratives[{position}]."
        actor_index = require(actor, "actor_idx", int, location, prefix=prefix)
        if actor_index != position:
            raise FormatError(f"actor_idx {actor_index} differs from the position {position} that "
                              "narrative_actor_idx refers to", location, f"{prefix}actor_idx")
        actors.append(VNGActor(actor_index, require(actor, "actor_name", str, location, prefix=prefix),
                               require(actor, "description", str, location, prefix=prefix)))
    expressions = []
    for expression_id, expression in require(raw, "expressions", dict, location).items():
        prefix = f"expressions.{expression_id}."
        actor_index = require(expression, "narrative_actor_idx", int, location, prefix=prefix)
        if not 0 <= actor_index < len(actors):
            raise FormatError(f"actor {actor_index} does not exist ({len(actors)} actor narratives)", location,
                              f"{prefix}narrative_actor_idx")
        start = require(expression, "noun_phrase_start_idx", int, location, prefix=prefix)
        end = require(expression, "noun_phrase_end_idx", int, location, prefix=prefix)
        if not 0 <= start < end <= len(actors[actor_index].description):
            raise FormatError(f"noun span [{start}, {end}) is outside the description of length "
                              f"{len(actors[actor_index].description)}", location, f"{prefix}noun_phrase_end_idx")
        obj_id = require(expression, "obj_id", int, location, prefix=prefix)
        if tracks is not None and obj_id not in tracks:
            raise FormatError(f"unknown obj_id {obj_id}: no mask track has this id", location, f"{prefix}obj_id")
        expressions.append(VNGExpression(expression_id, actor_index, start, end, obj_id))
    return VNGVideo(name, tuple(frames), tuple(actors), tuple(expressions))


def read_meta_expressions(path: str | os.PathLike, *, report: ReadReport | None = None,
                          tracks: Mapping[int, MaskTrack] | None = None) -> dict[str, VNGVideo]:
    """``meta_expressions.json`` → ``{video name: VNGVideo}``.

    Args:
        report: skip bad videos and collect their errors here instead of raising.
        tracks: when given (e.g. :func:`merge_tracks` of both mask files), an ``obj_id`` without a track is an error.
    """
    path = str(path)
    videos = require(read_json(path), "videos", dict, Location(path))
    parsed = read_records(((Location(path), item) for item in videos.items()),
                          lambda location, item: _parse_vng_video(location, item, tracks), report)
    return {video.name: video for video in parsed}


def meta_expressions_record(video: VNGVideo) -> dict:
    """One video as its ``meta_expressions.json`` entry."""
    return {
        "frames": list(video.frames),
        "actor_narratives": [{"actor_idx": a.actor_index, "actor_name": a.actor_name, "description": a.description}
                             for a in video.actors],
        "expressions": {e.expression_id: {"narrative_actor_idx": e.actor_index, "noun_phrase_start_idx": e.start,
                                          "noun_phrase_end_idx": e.end, "obj_id": e.obj_id}
                        for e in video.expressions},
    }


def write_meta_expressions(path: str | os.PathLike, videos: Mapping[str, VNGVideo]) -> None:
    """Write ``{"videos": {name: entry}}``, atomically; the mapping's keys must be the videos' names."""
    for name, video in videos.items():
        if name != video.name:
            raise ValueError(f"key {name!r} differs from the video's name {video.name!r}")
    write_json(path, {"videos": {name: meta_expressions_record(video) for name, video in videos.items()}})


# --- YouTube-VIS style mask files ---------------------------------------------------------------------------------

def frame_number(file_name: str) -> int:
    """The frame number a VIS ``file_names`` entry names: ``"abc/img_0000012.jpg"`` → 12, ``"yt/30.png"`` → 30."""
    stem = PurePosixPath(file_name).stem
    stem = stem[4:] if stem.startswith("img_") else stem
    if not stem.isdigit():
        raise ValueError(f"file name {file_name!r} does not end in a frame number")
    return int(stem)


def _video_name(video: VISVideo) -> str:
    """UVO videos are named by their YouTube id; OVIS ones by the folder of their frames."""
    if video.ytid is not None:
        return video.ytid
    folder = PurePosixPath(video.file_names[0]).parent.as_posix() if video.file_names else "."
    if folder == ".":
        raise ValueError(f"video {video.id}: file_names carry no folder to name the video by")
    return folder


def _parse_vis_video(location: Location, raw, sparse: bool) -> VISVideo:
    file_names = require(raw, "file_names", list, location)
    for index, name in enumerate(file_names):
        if not isinstance(name, str):
            raise FormatError(f"expected a file name string, got {name!r}", location, f"file_names[{index}]")
        if sparse:
            try:
                frame_number(name)
            except ValueError as error:
                raise FormatError(str(error), location, f"file_names[{index}]") from None
    video = VISVideo(id=require(raw, "id", int, location), width=require(raw, "width", int, location),
                     height=require(raw, "height", int, location), length=require(raw, "length", int, location),
                     file_names=tuple(file_names), ytid=require(raw, "ytid", str, location, optional=True))
    if not sparse and video.length != len(file_names):
        raise FormatError(f"length {video.length} differs from the {len(file_names)} file_names", location, "length")
    return video


def _parse_track(location: Location, raw, videos: Mapping[int, VISVideo], sparse: bool, extra: bool,
                 frame_counts: Mapping[str, int] | None) -> MaskTrack:
    obj_id = require(raw, "id", int, location)
    video_id = require(raw, "video_id", int, location)
    if video_id not in videos:
        raise FormatError(f"unknown video id {video_id}", location, "video_id")
    video = videos[video_id]
    height = require(raw, "height", int, location, optional=not extra, default=video.height)
    width = require(raw, "width", int, location, optional=not extra, default=video.width)
    if (height, width) != (video.height, video.width):
        raise FormatError(f"size {width}x{height} differs from video {video_id}'s {video.width}x{video.height}",
                          location, "height")
    if extra:
        video_name = require(raw, "video_name", str, location)
    else:
        try:
            video_name = _video_name(video)
        except ValueError as error:
            raise FormatError(str(error), location, "video_id") from None
    segmentations = require(raw, "segmentations", list, location)
    if len(segmentations) != len(video.file_names):
        raise FormatError(f"{len(segmentations)} segmentations for the {len(video.file_names)} file_names of video "
                          f"{video_id}", location, "segmentations")
    for index, rle in enumerate(segmentations):
        if rle is not None:
            check_rle(rle, location, f"segmentations[{index}]")
            if rle["size"] != [height, width]:
                raise FormatError(f"RLE size {rle['size']} differs from [{height}, {width}]", location,
                                  f"segmentations[{index}].size")
    if sparse:
        frames = [frame_number(name) for name in video.file_names]
        count = max(video.length, max(frames, default=-1) + 1)
        if frame_counts is not None and video_name in frame_counts:
            count = frame_counts[video_name]
            if frames and max(frames) >= count:
                raise FormatError(f"annotated frame {max(frames)} is beyond the {count} frames given for video "
                                  f"{video_name!r}", location, "segmentations")
        dense: list[dict | None] = [None] * count
        for frame, rle in zip(frames, segmentations):
            dense[frame] = rle
        segmentations = dense
    return MaskTrack(obj_id, video_id, video_name, height, width, tuple(segmentations))


def _read_vis(path: str | os.PathLike, report: ReadReport | None, frame_counts: Mapping[str, int] | None, *,
              extra: bool) -> tuple[list[VISVideo], dict[int, MaskTrack]]:
    path = str(path)
    data = read_json(path)
    raw_videos = require(data, "videos", list, Location(path))
    raw_annotations = require(data, "annotations", list, Location(path))
    sparse = bool(raw_videos) and isinstance(raw_videos[0], dict) and "ytid" in raw_videos[0]
    videos: dict[int, VISVideo] = {}

    names: dict[str, int] = {}  # video name → id: two videos of one name could not be told apart by their tracks

    def parse_video(location: Location, raw) -> VISVideo:
        video = _parse_vis_video(location, raw, sparse)
        if video.id in videos:
            raise FormatError(f"duplicate video id {video.id}", location, "id")
        try:
            name = _video_name(video)
        except ValueError:
            name = None  # a video without a name; its tracks say so
        if name in names:
            raise FormatError(f"video name {name!r} is also video {names[name]}'s", location, "file_names")
        if name is not None:
            names[name] = video.id
        videos[video.id] = video
        return video

    tracks: dict[int, MaskTrack] = {}

    def parse_track(location: Location, raw) -> MaskTrack:
        track = _parse_track(location, raw, videos, sparse, extra, frame_counts)
        if track.obj_id in tracks:
            raise FormatError(f"duplicate annotation id {track.obj_id}", location, "id")
        tracks[track.obj_id] = track
        return track

    video_list = list(read_records(((Location(path, record=f"videos[{i}]"), raw) for i, raw in enumerate(raw_videos)),
                                   parse_video, report))
    list(read_records(((Location(path, record=f"annotations[{i}]"), raw) for i, raw in enumerate(raw_annotations)),
                      parse_track, report))  # parse_track fills ``tracks``
    return video_list, tracks


def read_extra_masks(path: str | os.PathLike, *, report: ReadReport | None = None,
                     frame_counts: Mapping[str, int] | None = None) -> tuple[list[VISVideo], dict[int, MaskTrack]]:
    """VNG ``extra_masks.json`` → (videos, {annotation id: MaskTrack}); see the module docstring for UVO padding."""
    return _read_vis(path, report, frame_counts, extra=True)


def read_vis_annotations(path: str | os.PathLike, *, report: ReadReport | None = None,
                         frame_counts: Mapping[str, int] | None = None
                         ) -> tuple[list[VISVideo], dict[int, MaskTrack]]:
    """An original YouTube-VIS style file (OVIS ``annotations_train.json``, UVO ``UVO_sparse_*_video.json``).

    Track names: OVIS → the folder of the video's ``file_names``; UVO → its ``ytid``. Annotation ``height``/``width``
    default to the video's. Categories, areas, bboxes and iscrowd are not kept.
    """
    return _read_vis(path, report, frame_counts, extra=False)


def _file_segmentations(video: VISVideo, track: MaskTrack) -> list[dict | None]:
    """A track as the file stores it: per ``file_names`` entry (sparse for UVO videos, see the module docstring)."""
    if (track.height, track.width) != (video.height, video.width):
        raise ValueError(f"track {track.obj_id} is {track.width}x{track.height}, video {video.id} is "
                         f"{video.width}x{video.height}")
    if video.ytid is None:
        if len(track.segmentations) != len(video.file_names):
            raise ValueError(f"track {track.obj_id} has {len(track.segmentations)} frames, video {video.id} has "
                             f"{len(video.file_names)} file_names")
        return list(track.segmentations)
    frames = [frame_number(name) for name in video.file_names]
    beyond = [frame for frame in frames if frame >= len(track.segmentations)]
    if beyond:
        raise ValueError(f"track {track.obj_id}: file_names frames {beyond} of video {video.id} are beyond its "
                         f"{len(track.segmentations)} frames")
    lost = sorted(set(track.annotated_frames) - set(frames))
    if lost:
        raise ValueError(f"track {track.obj_id}: masks on frames {lost} are not in video {video.id}'s file_names "
                         "and would be lost")
    return [track.segmentations[frame] for frame in frames]


def _video_record(video: VISVideo) -> dict:
    record = {"id": video.id, "width": video.width, "height": video.height, "length": video.length,
              "file_names": list(video.file_names)}
    if video.ytid is not None:
        record["ytid"] = video.ytid
    return record


def _videos_by_id(videos: Sequence[VISVideo], tracks: Mapping[int, MaskTrack]) -> dict[int, VISVideo]:
    by_id = {video.id: video for video in videos}
    if len(by_id) != len(videos):
        raise ValueError("duplicate video ids")
    for obj_id, track in tracks.items():
        if obj_id != track.obj_id:
            raise ValueError(f"key {obj_id} differs from the track's obj_id {track.obj_id}")
        if track.video_id not in by_id:
            raise ValueError(f"track {obj_id} refers to unknown video id {track.video_id}")
    return by_id


def write_extra_masks(path: str | os.PathLike, videos: Sequence[VISVideo], tracks: Mapping[int, MaskTrack], *,
                      info: Mapping | None = None) -> None:
    """Write an ``extra_masks.json`` (``{info, videos, annotations}``), atomically."""
    by_id = _videos_by_id(videos, tracks)
    annotations = [{"id": t.obj_id, "video_id": t.video_id, "height": t.height, "width": t.width,
                    "video_name": t.video_name, "segmentations": _file_segmentations(by_id[t.video_id], t)}
                   for t in tracks.values()]
    write_json(path, {"info": dict(info or {}), "videos": [_video_record(v) for v in videos],
                      "annotations": annotations})


def _area_and_box(rle: dict | None) -> tuple[int | None, list[int] | None]:
    if rle is None:
        return None, None
    mask = rle_decode(rle)
    if not mask.any():
        return 0, [0, 0, 0, 0]
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    x, y = int(columns[0]), int(rows[0])
    return int(mask.sum()), [x, y, int(columns[-1]) + 1 - x, int(rows[-1]) + 1 - y]


def write_vis_annotations(path: str | os.PathLike, videos: Sequence[VISVideo], tracks: Mapping[int, MaskTrack], *,
                          categories: Sequence[Mapping] | None = None,
                          category_ids: Mapping[int, int] | None = None) -> None:
    """Write a YouTube-VIS style file like OVIS/UVO's (for fixtures and sample data), atomically.

    Args:
        categories: ``[{"id", "name", ...}]``; default one category ``{"id": 1, "name": "object"}``.
        category_ids: annotation id → category id; default the first category for every track.

    ``areas`` and ``bboxes`` ([x, y, w, h], COCO) are computed from the masks; ``iscrowd`` is 0.
    """
    categories = [dict(c) for c in categories] if categories is not None else [{"id": 1, "name": "object"}]
    known = {c["id"] for c in categories}
    by_id = _videos_by_id(videos, tracks)
    annotations = []
    for track in tracks.values():
        category = (category_ids or {}).get(track.obj_id, categories[0]["id"])
        if category not in known:
            raise ValueError(f"track {track.obj_id}: unknown category id {category}")
        segmentations = _file_segmentations(by_id[track.video_id], track)
        areas, boxes = zip(*map(_area_and_box, segmentations)) if segmentations else ((), ())
        annotations.append({"id": track.obj_id, "video_id": track.video_id, "category_id": category,
                            "segmentations": segmentations, "areas": list(areas), "bboxes": list(boxes),
                            "iscrowd": 0, "height": track.height, "width": track.width})
    write_json(path, {"videos": [_video_record(v) for v in videos], "annotations": annotations,
                      "categories": categories})


# --- using the tracks ---------------------------------------------------------------------------------------------

def expression_masks(track: MaskTrack) -> list[np.ndarray | None]:
    """The track's masks decoded: per frame (H, W) bool, or None where the frame has no annotation."""
    return [None if rle is None else rle_decode(rle) for rle in track.segmentations]


def merge_tracks(*track_dicts: Mapping[int, MaskTrack]) -> dict[int, MaskTrack]:
    """Join ``{annotation id: MaskTrack}`` dicts whose ids must be disjoint (original file + extra_masks.json)."""
    merged: dict[int, MaskTrack] = {}
    for tracks in track_dicts:
        overlap = sorted(set(merged) & set(tracks))
        if overlap:
            raise ValueError(f"mask track ids {overlap[:10]} occur in more than one file")
        merged.update(tracks)
    return merged
