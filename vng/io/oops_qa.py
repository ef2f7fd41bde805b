"""Oops-QA location-output questions (FORMATS.md §2): the second source of PV-Oops objects.

One JSON object, as the VidLN tools read it (``videoqa/location_output/location_output_question.py``)::

    {"<video_name>": [{"question_hash": "…", "question": "Who throws the egg at the man?",
                       "trace_frame": 12, "trace": {"size": [h, w], "counts": "…"}}, …], …}

``trace`` is a COCO RLE of the rasterised answer trace on ``trace_frame``. The public sources do not say whether
``trace_frame`` is an index or a frame name: an int is taken as the 0-based decoded frame index, a string as a frame
name (resolved like VidLN keyframe names, :mod:`vng.pipeline.objects`). An optional ``object_name`` (or ``answer``)
string names the object; the release's ``object_name`` is "" without it.
"""

from __future__ import annotations

import os

from vng.io.common import FormatError, Location, ReadReport, read_json, read_records, require
from vng.io.masks import check_rle
from vng.types import LocationQuestion

__all__ = ["read_location_questions"]


def _parse(location: Location, item: tuple[str, int, object]) -> LocationQuestion:
    video_name, index, raw = item
    prefix = f"{video_name}[{index}]."
    question_hash = require(raw, "question_hash", str, location, prefix=prefix)
    location = location.at(record=question_hash)
    name = require(raw, "object_name", str, location, prefix=prefix, optional=True)
    if name is None:
        name = require(raw, "answer", str, location, prefix=prefix, optional=True, default="")
    return LocationQuestion(video_name=video_name, question_hash=question_hash,
                            question=require(raw, "question", str, location, prefix=prefix),
                            trace_frame=require(raw, "trace_frame", (int, str), location, prefix=prefix),
                            trace=check_rle(require(raw, "trace", dict, location, prefix=prefix), location,
                                            f"{prefix}trace"),
                            object_name=name)


def read_location_questions(path: str | os.PathLike, *,
                            report: ReadReport | None = None) -> list[LocationQuestion]:
    """The questions of an Oops-QA location-output file, in file order; a bad one raises a FormatError naming the
    file, the question hash and the field (or is skipped and reported with ``report``)."""
    location = Location(str(path))
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError("expected a JSON object {video_name: [question, ...]}", location)
    items = []
    for video_name, questions in data.items():
        if not isinstance(questions, list):
            error = FormatError("expected a list of questions", location, video_name)
            if report is None:
                raise error
            report.skipped.append(error)
            continue
        items += [(location, (video_name, index, raw)) for index, raw in enumerate(questions)]
    return list(read_records(iter(items), _parse, report))
