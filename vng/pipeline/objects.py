"""Stage 1 of the annotation pipeline: the objects worth annotating, each localised by one trace (Sec. 3.2).

From VidLN narratives (the nouns of each actor's caption, Point-VOS' source for PV-Kinetics) or from Oops-QA
location-output questions (one object per question, PV-Oops' source). Per video, :func:`make_objects` writes
``videos/<key>/objects.jsonl`` (:class:`~vng.types.TracedObject` records, :mod:`vng.io.pipeline`).

Objects from narratives, per actor narrative (the "background" actor narrates stuff such as sky and road, not
objects: left out unless ``include_background``):

1. spaCy's nouns (or VidLN's ``noun_segments``) are mentions; a mention whose head noun names no object is
   dropped: a direction, a place in the frame or a time (:data:`STOP_NOUNS`), or a quantity word followed by
   "of" ("a group of people" is the people: :data:`PARTITIVE_NOUNS`).
2. Mentions of one referent merge: same lemmas, compounds included ("the traffic cones" = "a traffic cone"), unless a
   word such as "other" or "first" marks another referent of the same noun ("a tiger … the other tiger":
   :data:`DISTINGUISHING_WORDS`).
3. The object is localised by the largest-area trace run over all its mentions (ties: the earliest keyframe; VidLN's
   word → trace rule, :mod:`vng.traces`); a referent without trace points is dropped.
4. Its id is ``md5(source, dataset_id, video_id, vidln_id, actor index, merge key)``: reruns give the same ids. It
   keeps the caption, the first mention's span (the language link of Oops-VNG / Kinetics-VNG) and every mention.

Keyframe names → decoded frames (:class:`KeyframeNaming`). VidLN names keyframes after the extracted frames of its
source: OVIS' ``img_0000005`` numbers frames from 1 (on the OVIS sample in ``../shared/data/vidln`` every keyframe
JPEG ``img_N`` equals decoded frame N - 1 — mean absolute difference 1.8-2.6 grey levels against 11-23 for the
neighbouring frames); plain numbers (``000025``, Kinetics / Oops, the sample data) are taken as 0-based, the
Point-VOS ``frame_id``. A name no rule matches, or one past the video's last frame, is an error naming the file,
line, narrative and keyframe.

Traces are converted to pixels of the decoded video frames (VidLN stores them normalised), so keyframe images are
not needed; the video is, for its frame count and size.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from vng.io.common import FormatError, Location, parse_json_line, require
from vng.io.masks import rle_decode, rle_encode
from vng.io.oops_qa import read_location_questions
from vng.io.outputs import describe_inputs
from vng.io.pipeline import write_traced_objects
from vng.io.video import SPLIT_NAMES, first_existing, video_candidates, video_ref
from vng.io.vidln import parse_narrative
from vng.language.nouns import NounMention, load_spacy, noun_mentions
from vng.pipeline.workdir import Problem, StageReport, WorkDir, run_per_video, shard_of, video_key
from vng.traces import DEFAULT_LINE_WIDTH, localise_noun, noun_trace_runs, rasterise_trace
from vng.types import LocationQuestion, Narrative, NounObject, TracedObject, VideoRef

__all__ = ["STOP_NOUNS", "PARTITIVE_NOUNS", "DISTINGUISHING_WORDS", "KeyframeNaming", "ObjectConfig",
           "source_video", "object_id", "referent_key", "narrative_objects",
           "question_object", "make_objects"]

# Nouns that name no object to segment, by lemma (Sec. 3.2 takes every noun; these are what made "left", "side",
# "front" and "middle" objects whose traces cover whatever lay there). Extend or replace with ObjectConfig.
STOP_NOUNS: frozenset[str] = frozenset({
    # directions and relative positions: "walking to the left", "in front of", "on the right side"; spaCy's small
    # model also tags "moves downwards" as a noun
    "left", "right", "top", "bottom", "front", "back", "rear", "side", "middle", "center", "centre", "direction",
    "way", "corner", "edge", "upward", "downward", "forward", "backward", "upwards", "downwards",
    # places in the frame, and the frame itself: "in the background", "in the distance", "of the video"
    "background", "foreground", "distance", "frame", "image", "picture", "video", "clip", "scene", "screen",
    "view", "camera", "shot", "part", "place", "spot", "position", "location",
    # time: "at the end", "for a moment", "at the same time"
    "time", "moment", "end", "beginning", "start", "second", "minute", "while", "point", "instant",
})
# Quantity words that name the referent of their "of" complement: "a group of people" is traced as the people.
PARTITIVE_NOUNS: frozenset[str] = frozenset({
    "group", "pair", "couple", "bunch", "lot", "number", "herd", "flock", "crowd", "row", "pile", "stack", "set",
    "team", "kind", "type", "sort",
})
# Modifiers that set a mention apart from an earlier one of the same noun: "a tiger … with the other tiger".
DISTINGUISHING_WORDS: frozenset[str] = frozenset({
    "other", "another", "first", "second", "third", "fourth", "last", "next",
})


@dataclass(frozen=True)
class KeyframeNaming:
    """How a keyframe name becomes a 0-based decoded frame index: the first rule whose regular expression matches
    the whole name reads the frame number from its first group and subtracts the rule's first frame number
    (module docstring: OVIS ``img_N`` counts from 1, plain numbers from 0)."""

    rules: tuple[tuple[str, int], ...] = ((r"img_(\d+)", 1), (r"(\d+)", 0))

    def frame_index(self, name: str) -> int:
        """The decoded frame index of ``name``; ValueError when no rule matches or the index is negative."""
        for pattern, first in self.rules:
            match = re.fullmatch(pattern, name)
            if match:
                index = int(match.group(1)) - first
                if index < 0:
                    raise ValueError(f"keyframe {name!r} gives frame {index}: frames are counted from {first}")
                return index
        raise ValueError(f"keyframe name {name!r} matches no naming rule ({', '.join(p for p, _ in self.rules)})")

    @classmethod
    def counted_from(cls, first: int) -> KeyframeNaming:
        """Every name's last number is the frame number, counted from ``first`` (0 or 1)."""
        return cls(((r"\D*(\d+)", first),))


@dataclass(frozen=True)
class ObjectConfig:
    """Which nouns become objects and how they are localised (module docstring)."""

    noun_source: Literal["spacy", "noun_segments"] = "spacy"  # spaCy's nouns (the paper) or VidLN's segments
    unit: Literal["noun", "chunk"] = "noun"  # spaCy's span unit (vng.language.nouns)
    spacy_model: str | None = None
    include_background: bool = False  # the background actor narrates stuff (sky, road), not objects
    stop_nouns: frozenset[str] = STOP_NOUNS
    partitive_nouns: frozenset[str] = PARTITIVE_NOUNS
    distinguishing_words: frozenset[str] = DISTINGUISHING_WORDS
    line_width: int = DEFAULT_LINE_WIDTH  # px, the traces' rasterisation (localisation and trace masks)
    keyframes: KeyframeNaming = field(default_factory=KeyframeNaming)
    # Where the release puts the objects; None: from the narrative's dataset_id ("OVIS_train" → OVIS, train), and
    # Oops / train for Oops-QA.
    dataset: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        if self.noun_source not in ("spacy", "noun_segments"):
            raise ValueError(f"noun_source must be 'spacy' or 'noun_segments', got {self.noun_source!r}")
        if self.line_width < 1:
            raise ValueError(f"line_width must be >= 1, got {self.line_width}")


def source_video(videos: str | os.PathLike, names: Sequence[str]) -> Path:
    """The video a source names, found under ``videos`` by the first of ``names`` that exists
    (:func:`~vng.io.video.video_candidates`: ``<name>.mp4`` or a frame folder ``<name>/``, also without a split
    prefix); a FormatError naming every path tried when none does."""
    candidates = [path for name in names for path in video_candidates(videos, name)]
    return first_existing(candidates, f"video {names[0]!r}", Location(str(videos)))


def _frame_size(video: VideoRef) -> tuple[int, int]:
    return video.width, video.height


def object_id(*parts: object) -> str:
    """A stable 32-hex id from the parts that name an object."""
    return hashlib.md5("\x1f".join(map(str, parts)).encode()).hexdigest()


def referent_key(mention: NounMention, config: ObjectConfig) -> str | None:
    """What mentions of one referent share, or None when the mention names no object (module docstring)."""
    if mention.head in config.stop_nouns or (mention.head in config.partitive_nouns and mention.has_of_complement):
        return None
    marks = [word for word in mention.modifiers if word in config.distinguishing_words]
    return " ".join([*marks, *mention.lemmas])


def _dataset_split(dataset_id: str, config: ObjectConfig) -> tuple[str, str]:
    name, _, split = dataset_id.rpartition("_")
    if not name or split not in ("train", "val", "test"):
        name, split = dataset_id, "train"
    return config.dataset or name, config.split or split


def _trace_object(video: VideoRef, trace: np.ndarray, **fields) -> TracedObject:
    return TracedObject(video_name=video.name, video_path=video.path, num_frames=video.num_frames,
                        frame_size=_frame_size(video), trace=rle_encode(trace), trace_area=int(trace.sum()), **fields)


def _keyframe_indices(narrative: Narrative, video: VideoRef, config: ObjectConfig,
                      location: Location) -> list[int]:
    indices = []
    for position, name in enumerate(narrative.keyframe_names):
        try:
            index = config.keyframes.frame_index(name)
        except ValueError as error:
            raise FormatError(str(error), location, f"keyframe_names[{position}]") from None
        if index >= video.num_frames:
            raise FormatError(f"keyframe {name!r} is frame {index}, but {video.path} decodes to {video.num_frames} "
                              f"frames (frames 0-{video.num_frames - 1})", location, f"keyframe_names[{position}]")
        indices.append(index)
    return indices


def narrative_objects(narrative: Narrative, video: VideoRef, *, config: ObjectConfig = ObjectConfig(), nlp=None,
                      location: Location | None = None, report: StageReport | None = None) -> list[TracedObject]:
    """The objects of one narrative (module docstring), in actor order, then by first mention.

    Args:
        narrative: read with traces in pixels of the video's frames (``video.width`` x ``video.height``).
        nlp: a spaCy pipeline (default: :func:`~vng.language.nouns.load_spacy` of ``config.spacy_model``).
        location: where the narrative was read (named by keyframe errors).
        report: counts the nouns, those naming no object, those merged into an earlier mention and the referents
            without a trace into its notes.
    """
    location = location or Location("<narrative>", record=narrative.vidln_id)
    keyframes = _keyframe_indices(narrative, video, config, location)
    nlp = nlp or load_spacy(config.spacy_model)
    dataset, split = _dataset_split(narrative.dataset_id, config)
    objects = []
    for actor_index, actor in enumerate(narrative.actor_narratives):
        if actor.is_background and not config.include_background:
            continue
        spans = actor.noun_segments if config.noun_source == "noun_segments" else None
        referents: dict[str, list[NounMention]] = {}
        for mention in noun_mentions(actor.caption, nlp=nlp, unit=config.unit, spans=spans):
            key = referent_key(mention, config)
            if report is not None:
                report.count("nouns")
                if key is None or key in referents:
                    report.count("nouns naming no object" if key is None else "nouns merged")
            if key is not None:
                referents.setdefault(key, []).append(mention)
        for key, mentions in referents.items():
            runs = [run for mention in mentions for run in noun_trace_runs(narrative, actor, mention.span)]
            if not runs:
                if report is not None:
                    report.count("referents without a trace")
                continue
            first = mentions[0].span
            noun = NounObject(vidln_id=narrative.vidln_id, dataset_id=narrative.dataset_id,
                              video_id=narrative.video_id, actor_index=actor_index, actor_name=actor.actor_name,
                              caption=actor.caption, span=first, source=config.noun_source,
                              frame_size=_frame_size(video), runs=tuple(runs))
            run = localise_noun(noun, line_width=config.line_width).run
            objects.append(_trace_object(
                video, rasterise_trace(run.xy, _frame_size(video), line_width=config.line_width),
                object_id=object_id("narratives", narrative.dataset_id, narrative.video_id, narrative.vidln_id,
                                    actor_index, key),
                source="narratives", dataset=dataset, split=split, object_name=noun.text, question=actor.caption,
                question_hash="", noun_span=first, mentions=tuple(m.span for m in mentions),
                actor_name=actor.actor_name, vidln_id=narrative.vidln_id, keyframe_name=run.keyframe_name,
                keyframe=keyframes[run.keyframe_index]))
    return objects


def question_object(question: LocationQuestion, video: VideoRef, *, config: ObjectConfig = ObjectConfig(),
                    location: Location | None = None) -> TracedObject:
    """The object a location-output question asks for, localised by its answer trace (FORMATS.md §2)."""
    location = location or Location("<questions>", record=question.question_hash)
    frame = question.trace_frame
    try:
        index = frame if isinstance(frame, int) else config.keyframes.frame_index(frame)
    except ValueError as error:
        raise FormatError(str(error), location, "trace_frame") from None
    if not 0 <= index < video.num_frames:
        raise FormatError(f"trace_frame {frame!r} is frame {index}, but {video.path} decodes to {video.num_frames} "
                          f"frames", location, "trace_frame")
    height, width = question.trace["size"]
    if (width, height) != _frame_size(video):
        raise FormatError(f"the trace is {width}x{height}, the video's frames are {video.width}x{video.height}",
                          location, "trace")
    trace = rle_decode(question.trace)
    if not trace.any():
        raise FormatError("the trace is empty", location, "trace")
    return _trace_object(video, trace, object_id=object_id("oops-qa", question.video_name, question.question_hash),
                         source="oops-qa", dataset=config.dataset or "Oops", split=config.split or "train",
                         object_name=question.object_name, question=question.question,
                         question_hash=question.question_hash, noun_span=None, mentions=(), actor_name="",
                         vidln_id=None, keyframe_name=str(frame), keyframe=index)


# --- the stage: sources → per-video object files --------------------------------------------------------------------

@dataclass
class _VideoEntry:
    """One video of the source: its name, the names its file may have, and where its records are."""

    name: str
    names: list[str]  # what its file or frame folder may be called, in the order they are tried
    records: list[tuple[Location, object]] = field(default_factory=list)  # questions: parsed records
    offsets: list[tuple[int, int]] = field(default_factory=list)  # narratives: (line number, byte offset)


def _narrative_index(path: Path) -> tuple[dict[str, _VideoEntry], list[tuple[str | None, Problem]]]:
    """Every video of a narratives JSONL by key, read once, and the lines that are no narrative of a video (with the
    key of the video they concern, None when they name none)."""
    entries: dict[str, _VideoEntry] = {}
    datasets: dict[str, str] = {}
    problems: list[tuple[str | None, Problem]] = []
    with open(path, "rb") as handle:
        offset = 0
        for number, line in enumerate(handle, start=1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            location = Location(str(path), number)
            try:
                raw = parse_json_line(line, location)
                video_id = require(raw, "video_id", str, location)
                dataset_id = require(raw, "dataset_id", str, location)
            except FormatError as error:
                problems.append((None, Problem("objects", "?", str(error))))
                continue
            if datasets.setdefault(video_id, dataset_id) != dataset_id:
                problems.append((video_key(video_id), Problem("objects", video_id, str(FormatError(
                    f"video {video_id!r} appears in datasets {datasets[video_id]!r} and {dataset_id!r}: one work "
                    f"folder per dataset", location, "dataset_id")))))
                continue
            entry = entries.setdefault(video_key(video_id),
                                       _VideoEntry(video_id, [f"{dataset_id}/{video_id}", video_id]))
            entry.offsets.append((number, start))
    return entries, problems


def _question_index(path: Path, config: ObjectConfig) -> dict[str, _VideoEntry]:
    """Every video of an Oops-QA questions file by key (a bad file raises: it is one JSON object)."""
    entries: dict[str, _VideoEntry] = {}
    for question in read_location_questions(path):
        name = question.video_name
        prefix, _, rest = name.partition("/")
        # The release's video_name may carry the split ("train/…"; video_candidates also tries it without), and
        # the videos may sit in a split folder when it does not.
        names = [name] if prefix in SPLIT_NAMES and rest else [name, f"{config.split or 'train'}/{name}"]
        entry = entries.setdefault(video_key(name), _VideoEntry(name, names))
        entry.records.append((Location(str(path), record=question.question_hash), question))
    return entries


def make_objects(source: str | os.PathLike, videos: str | os.PathLike, workdir: WorkDir, *,
                 kind: Literal["narratives", "oops-qa"] = "narratives", config: ObjectConfig = ObjectConfig(),
                 overwrite: bool = False, process_index: int = 0, num_processes: int = 1,
                 progress: bool = False) -> StageReport:
    """Stage 1: write ``videos/<key>/objects.jsonl`` for this process's share of the videos (:func:`shard_of`).

    Args:
        source: a VidLN narratives JSONL (``kind="narratives"``) or an Oops-QA location-output JSON (``"oops-qa"``).
        videos: ``<videos>/<dataset_id>/<video_id>.mp4`` or ``<videos>/<video_id>.mp4`` (or frame folders of those
            names); Oops-QA: ``<videos>/<video_name>.mp4``, with or without the split prefix.

    Returns:
        The report: videos done / already done / skipped (missing or unreadable videos, bad records: each named),
        objects written, and noun counts in ``notes``.
    """
    source = Path(source)
    if kind not in ("narratives", "oops-qa"):
        raise ValueError(f"kind must be 'narratives' or 'oops-qa', got {kind!r}")
    if not source.is_file():
        raise FormatError("no such file", Location(str(source)))
    report = StageReport("objects")
    if kind == "narratives":
        index, problems = _narrative_index(source)
        # each process reports the problems of its own videos; process 0 those of lines that name no video
        report.problems += [problem for key, problem in problems
                            if (0 if key is None else shard_of(key, num_processes)) == process_index]
    else:
        index = _question_index(source, config)
    # recorded once the inputs have been read: a bad input never leaves its settings behind to refuse the next run
    workdir.begin_stage("objects", {**describe_inputs({"source": source, "videos": videos}), "kind": kind,
                                    "config": config}, overwrite=overwrite, process_index=process_index,
                        num_processes=num_processes)
    nlp = load_spacy(config.spacy_model) if kind == "narratives" else None

    def work(key: str) -> int:
        entry = index[key]
        video = video_ref(source_video(videos, entry.names), entry.name, exact_length=True)
        objects = []
        if kind == "narratives":
            with open(source, "rb") as handle:
                for number, offset in entry.offsets:
                    handle.seek(offset)
                    location = Location(str(source), number)
                    raw = parse_json_line(handle.readline(), location)
                    narrative = parse_narrative(location, raw, frame_size=_frame_size(video))
                    objects += narrative_objects(narrative, video, config=config, nlp=nlp, report=report,
                                                 location=location.at(record=narrative.vidln_id))
        else:
            objects = [question_object(question, video, config=config, location=location)
                       for location, question in entry.records]
        duplicates = sorted(i for i, n in Counter(obj.object_id for obj in objects).items() if n > 1)
        if duplicates:
            raise FormatError(f"objects {duplicates} appear twice (a narrative or question listed twice?)",
                              Location(str(source)))
        write_traced_objects(workdir.objects_file(key), objects)
        return len(objects)

    return run_per_video(report, workdir, index, work, output=workdir.objects_file, process_index=process_index,
                         num_processes=num_processes, name_of=lambda key: index[key].name, progress=progress)
