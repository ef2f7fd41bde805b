"""The noun-objects JSONL written by ``vng parse-narratives``: one record per (narrative, actor, noun).

Record fields: ``vidln_id, dataset_id, video_id, actor_index, actor_name, caption, noun, span [start, end], source,
frame_size [width, height], keyframe_index, keyframe, points [[x, y], ...] (pixels), times_ms [...], area,
line_width``. ``keyframe``/``points`` are null for a noun whose words have no trace. Only the chosen run is kept:
reading a record gives a :class:`~vng.traces.Localisation` whose noun holds that one run.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from vng.io.common import FormatError, Location, ReadReport, iter_jsonl, read_records, require, write_jsonl
from vng.traces import Localisation
from vng.types import NounObject, TraceRun

__all__ = ["localisation_record", "write_noun_objects", "read_noun_objects"]


def localisation_record(localisation: Localisation, *, line_width: int) -> dict:
    noun, run = localisation.noun, localisation.run
    return {
        "vidln_id": noun.vidln_id, "dataset_id": noun.dataset_id, "video_id": noun.video_id,
        "actor_index": noun.actor_index, "actor_name": noun.actor_name, "caption": noun.caption,
        "noun": noun.text, "span": list(noun.span), "source": noun.source, "frame_size": list(noun.frame_size),
        "keyframe_index": None if run is None else run.keyframe_index,
        "keyframe": None if run is None else run.keyframe_name,
        "points": None if run is None else [[float(x), float(y)] for x, y in run.xy],
        "times_ms": None if run is None else [int(t) for t in run.times_ms],
        "area": localisation.area, "line_width": line_width,
    }


def write_noun_objects(path: str | os.PathLike, localisations: Iterable[Localisation], *, line_width: int) -> None:
    write_jsonl(path, (localisation_record(loc, line_width=line_width) for loc in localisations))


def _parse(location: Location, raw) -> Localisation:
    caption = require(raw, "caption", str, location)
    span = require(raw, "span", list, location)
    noun_text = require(raw, "noun", str, location)
    if len(span) != 2 or caption[span[0]:span[1]] != noun_text:
        raise FormatError(f"span {span} does not give the noun {noun_text!r} in the caption", location, "span")
    run = None
    if require(raw, "keyframe", (str, type(None)), location) is not None:
        points = np.asarray(require(raw, "points", list, location), np.float64)
        run = TraceRun(require(raw, "keyframe_index", int, location), raw["keyframe"], points.reshape(-1, 2),
                       require(raw, "times_ms", list, location))
    noun = NounObject(vidln_id=require(raw, "vidln_id", int, location),
                      dataset_id=require(raw, "dataset_id", str, location),
                      video_id=require(raw, "video_id", str, location),
                      actor_index=require(raw, "actor_index", int, location),
                      actor_name=require(raw, "actor_name", str, location), caption=caption, span=tuple(span),
                      source=require(raw, "source", str, location),
                      frame_size=tuple(require(raw, "frame_size", list, location)),
                      runs=() if run is None else (run,))
    return Localisation(noun, run, require(raw, "area", int, location))


def read_noun_objects(path: str | os.PathLike, *, report: ReadReport | None = None) -> list[Localisation]:
    return list(read_records(iter_jsonl(path, report), _parse, report))
