"""Video Localized Narratives (VidLN) narratives JSONL (FORMATS.md §1).

Trace coordinates are normalised to [0, 1] in the file and held in pixels inside ``vng``, so reading needs each
video's keyframe size: give ``frames_dir`` (keyframes at ``<frames_dir>/<dataset_id>/<video_id>/<name>.jpg`` or
``<frames_dir>/<video_id>/<name>.jpg``; only the image header is read) or ``frame_size`` (one size for all, or a
mapping ``video_id -> (width, height)``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from vng.io.common import FormatError, Location, ReadReport, iter_jsonl, read_records, require, write_jsonl
from vng.io.images import image_size, load_image
from vng.types import ActorNarrative, Narrative, TraceSegment, WordTiming

__all__ = ["read_narratives", "parse_narrative", "write_narratives", "narrative_to_json", "find_keyframe",
           "read_keyframe", "FrameSize"]

FrameSize = tuple[int, int] | Mapping[str, tuple[int, int]]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def find_keyframe(frames_dir: str | os.PathLike, dataset_id: str, video_id: str, name: str) -> Path | None:
    """The image file of keyframe ``name``, or None. Looks under ``<dataset_id>/<video_id>/`` then ``<video_id>/``."""
    root = Path(frames_dir)
    for folder in (root / dataset_id / video_id, root / video_id):
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def read_keyframe(frames_dir: str | os.PathLike, dataset_id: str, video_id: str, name: str, *,
                  size: tuple[int, int] | None = None) -> np.ndarray:
    """Keyframe ``name`` (:func:`find_keyframe`) as (H, W, 3) uint8 RGB; a FormatError when it is missing, unreadable
    or not ``size`` (width, height) — the size its traces were converted to pixels with."""
    path = find_keyframe(frames_dir, dataset_id, video_id, name)
    if path is None:
        raise FormatError(f"keyframe {name!r} of video {video_id!r} not found: looked for {dataset_id}/{video_id}/"
                          f"{name}.jpg and {video_id}/{name}.jpg (or .jpeg, .png)", Location(str(frames_dir)))
    image = np.asarray(load_image(path, what="keyframe").convert("RGB"))
    if size is not None and tuple(size) != (image.shape[1], image.shape[0]):
        raise FormatError(f"keyframe is {image.shape[1]}x{image.shape[0]}, the traces of video {video_id!r} are "
                          f"for {size[0]}x{size[1]}", Location(str(path)))
    return image


def _frame_size(raw: dict, location: Location, frames_dir, frame_size: FrameSize | None) -> tuple[int, int]:
    video_id, dataset_id = raw["video_id"], raw["dataset_id"]
    if frame_size is not None:
        if isinstance(frame_size, Mapping):
            if video_id not in frame_size:
                raise FormatError(f"no frame size given for video {video_id!r}", location, "video_id")
            return tuple(frame_size[video_id])
        return tuple(frame_size)
    if frames_dir is None:
        raise ValueError("read_narratives needs frames_dir or frame_size to convert normalised traces to pixels")
    for name in raw["keyframe_names"]:
        image = find_keyframe(frames_dir, dataset_id, video_id, name)
        if image is not None:
            return image_size(image, what="keyframe")
    raise FormatError(f"no keyframe image of video {video_id!r} under {frames_dir} "
                      f"(looked for {dataset_id}/{video_id}/<keyframe>.jpg)", location, "keyframe_names")


def _parse_actor(raw: dict, location: Location, prefix: str, size: tuple[int, int],
                 num_keyframes: int) -> ActorNarrative:
    caption = require(raw, "caption", str, location, prefix=prefix)
    timings = []
    for index, word in enumerate(require(raw, "time_alignment", list, location, prefix=prefix)):
        word_prefix = f"{prefix}time_alignment[{index}]."
        timings.append(WordTiming(
            word=require(word, "referenced_word", str, location, prefix=word_prefix),
            start_index=require(word, "referenced_word_start_idx", int, location, prefix=word_prefix),
            end_index=require(word, "referenced_word_end_idx", int, location, prefix=word_prefix),
            start_ms=require(word, "start_ms", int, location, prefix=word_prefix),
            end_ms=require(word, "end_ms", int, location, prefix=word_prefix)))
        if caption[timings[-1].start_index:timings[-1].end_index] != timings[-1].word:
            raise FormatError(f"referenced_word {timings[-1].word!r} is not caption"
                              f"[{timings[-1].start_index}:{timings[-1].end_index}]", location,
                              f"{word_prefix}referenced_word")
    width, height = size
    segments = []
    for segment_index, segment in enumerate(require(raw, "traces", list, location, prefix=prefix)):
        if not isinstance(segment, list):
            raise FormatError("a trace segment must be a list of points", location, f"{prefix}traces[{segment_index}]")
        xy, times, keyframes = [], [], []
        for point_index, point in enumerate(segment):
            point_prefix = f"{prefix}traces[{segment_index}][{point_index}]."
            x = require(point, "x", float, location, prefix=point_prefix)
            y = require(point, "y", float, location, prefix=point_prefix)
            keyframe = require(point, "kf_idx", int, location, prefix=point_prefix)
            if not 0 <= keyframe < num_keyframes:
                raise FormatError(f"kf_idx {keyframe} is outside the {num_keyframes} keyframes", location,
                                  f"{point_prefix}kf_idx")
            for axis, value in (("x", x), ("y", y)):
                if not 0.0 <= value <= 1.0:
                    raise FormatError(f"normalised coordinate {value} is outside the frame [0, 1]", location,
                                      f"{point_prefix}{axis}")
            xy.append((x * width, y * height))
            times.append(require(point, "time_ms_since_epoch", int, location, prefix=point_prefix))
            keyframes.append(keyframe)
        segments.append(TraceSegment(np.asarray(xy, np.float64).reshape(-1, 2), times, keyframes))
    noun_segments = require(raw, "noun_segments", list, location, prefix=prefix, optional=True, default=[])
    for index, pair in enumerate(noun_segments):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
            raise FormatError(f"expected [start, end] ints, got {pair!r}", location, f"{prefix}noun_segments[{index}]")
        if not 0 <= pair[0] < pair[1] <= len(caption):
            raise FormatError(f"span {pair} is outside the caption of length {len(caption)}", location,
                              f"{prefix}noun_segments[{index}]")
    selection = require(raw, "keyframe_selection_indices", list, location, prefix=prefix)
    for index, value in enumerate(selection):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < num_keyframes:
            raise FormatError(f"{value!r} is not a keyframe index below {num_keyframes}", location,
                              f"{prefix}keyframe_selection_indices[{index}]")
    return ActorNarrative(
        actor_name=require(raw, "actor_name", str, location, prefix=prefix),
        caption=caption,
        keyframe_selection_indices=tuple(selection),
        recording_start_time_ms=require(raw, "recording_start_time_ms_since_epoch", int, location, prefix=prefix),
        traces_start_time_ms=require(raw, "traces_start_time_ms_since_epoch", int, location, prefix=prefix),
        recording_filename=require(raw, "recording_filename", str, location, prefix=prefix, optional=True,
                                   default=""),
        noun_segments=tuple(tuple(pair) for pair in noun_segments),
        time_alignment=tuple(timings),
        traces=tuple(segments))


def _parse_narrative(location: Location, raw, frames_dir, frame_size) -> Narrative:
    vidln_id = require(raw, "vidln_id", int, location)
    location = location.at(record=vidln_id)
    keyframe_names = require(raw, "keyframe_names", list, location)
    for index, name in enumerate(keyframe_names):
        if not isinstance(name, str):
            raise FormatError(f"expected a frame stem string, got {name!r}", location, f"keyframe_names[{index}]")
    require(raw, "video_id", str, location)
    require(raw, "dataset_id", str, location)
    size = _frame_size(raw, location, frames_dir, frame_size)
    actors = [
        _parse_actor(actor, location, f"actor_narratives[{index}].", size, len(keyframe_names))
        for index, actor in enumerate(require(raw, "actor_narratives", list, location))
    ]
    return Narrative(vidln_id=vidln_id, dataset_id=raw["dataset_id"], video_id=raw["video_id"],
                     annotator_id=require(raw, "annotator_id", int, location, optional=True, default=-1),
                     keyframe_names=tuple(keyframe_names), frame_size=size, actor_narratives=tuple(actors))


def read_narratives(path: str | os.PathLike, *, frames_dir: str | os.PathLike | None = None,
                    frame_size: FrameSize | None = None, report: ReadReport | None = None) -> list[Narrative]:
    """Read a VidLN narratives JSONL file into :class:`Narrative` objects (traces in pixels).

    Raises :class:`FormatError` naming file, line, vidln_id and field on the first bad record, unless ``report`` is
    given: then bad lines are skipped and recorded there.
    """
    lines: dict[int, int] = {}  # vidln_id → its line: a narrative given twice would be parsed into nouns twice

    def parse(location: Location, raw) -> Narrative:
        narrative = _parse_narrative(location, raw, frames_dir, frame_size)
        if narrative.vidln_id in lines:
            raise FormatError(f"vidln_id {narrative.vidln_id} was already given on line {lines[narrative.vidln_id]}",
                              location.at(record=narrative.vidln_id), "vidln_id")
        lines[narrative.vidln_id] = location.line
        return narrative

    return list(read_records(iter_jsonl(path, report), parse, report))


def _normalised(value: float, size: int) -> float:
    # Pixels back to [0, 1]: rounding to 10 decimals undoes the float error of the multiply-then-divide, so a
    # read → write round trip reproduces the file's (5-decimal) numbers exactly.
    return round(float(value) / size, 10)


def narrative_to_json(narrative: Narrative) -> dict:
    width, height = narrative.frame_size
    actors = []
    for actor in narrative.actor_narratives:
        traces = [[{"x": _normalised(x, width), "y": _normalised(y, height), "time_ms_since_epoch": int(t),
                    "kf_idx": int(k)}
                   for (x, y), t, k in zip(segment.xy, segment.times_ms, segment.keyframe_indices)]
                  for segment in actor.traces]
        actors.append({
            "actor_name": actor.actor_name,
            "keyframe_selection_indices": list(actor.keyframe_selection_indices),
            "recording_start_time_ms_since_epoch": actor.recording_start_time_ms,
            "traces_start_time_ms_since_epoch": actor.traces_start_time_ms,
            "caption": actor.caption,
            "traces": traces,
            "noun_segments": [list(pair) for pair in actor.noun_segments],
            "time_alignment": [{"end_ms": w.end_ms, "referenced_word": w.word,
                                "referenced_word_end_idx": w.end_index, "referenced_word_start_idx": w.start_index,
                                "start_ms": w.start_ms} for w in actor.time_alignment],
            "recording_filename": actor.recording_filename,
        })
    return {"vidln_id": narrative.vidln_id, "dataset_id": narrative.dataset_id, "video_id": narrative.video_id,
            "keyframe_names": list(narrative.keyframe_names), "actor_narratives": actors,
            "annotator_id": narrative.annotator_id}


def write_narratives(path: str | os.PathLike, narratives: Iterable[Narrative]) -> None:
    """Write narratives as VidLN JSONL (normalised traces), atomically."""
    write_jsonl(path, (narrative_to_json(n) for n in narratives))


def parse_narrative(location: Location, raw, *, frame_size: tuple[int, int]) -> Narrative:
    """One narrative record (the JSON object of the line at ``location``) with its traces in pixels of a
    ``frame_size`` (width, height) frame; a bad record raises the FormatError :func:`read_narratives` would."""
    def parse(where: Location, item) -> Narrative:
        return _parse_narrative(where, item, None, frame_size)

    return next(read_records(iter([(location, raw)]), parse, None))
