"""The data model: typed, validated-on-construction records that every stage of ``vng`` exchanges.

One coordinate convention holds everywhere inside the library: ``(x, y)`` in pixels of the original frame
(x = column, y = row). Normalised coordinates (VidLN traces) are converted by the readers in :mod:`vng.io`.

Example::

    >>> import numpy as np
    >>> from vng.types import Points, PointLabel
    >>> pts = Points(xy=[[10, 20], [30, 40]], labels=[PointLabel.FOREGROUND, PointLabel.BACKGROUND])
    >>> len(pts), pts.foreground.xy.tolist()
    (2, [[10.0, 20.0]])
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
import numpy as np

__all__ = [
    "PointLabel",
    "Points",
    "FramePoints",
    "ObjectAnnotation",
    "VideoRef",
    "WordTiming",
    "TraceSegment",
    "ActorNarrative",
    "Narrative",
    "TraceRun",
    "NounObject",
    "frame_id",
    "parse_frame_id",
    "VNGActor",
    "VNGExpression",
    "VNGVideo",
    "MaskTrack",
    "VISVideo",
    "PNGSegment",
    "PNGNarrative",
    "CandidateKind",
    "Candidate",
    "TaskFrame",
    "VerificationTask",
    "VerdictAction",
    "VerdictEvent",
    "OBJECT_SOURCES",
    "LocationQuestion",
    "TracedObject",
    "TraceMask",
    "ObjectProbabilities",
]


class PointLabel(enum.IntEnum):
    """Label of an annotated point. Values are what ``Points.labels`` stores (int8)."""

    AMBIGUOUS = -1  # verified as neither: kept for statistics, ignored by losses and benchmarks
    BACKGROUND = 0
    FOREGROUND = 1


def frame_id(index: int) -> str:
    """The Point-VOS release frame id: a 6-digit zero-padded 0-based index of OpenCV-decoded frames."""
    if index < 0:
        raise ValueError(f"frame index must be >= 0, got {index}")
    return f"{index:06d}"


def parse_frame_id(value: str) -> int:
    """Inverse of :func:`frame_id`; raises ``ValueError`` on anything that is not a 6-digit string of digits."""
    if not isinstance(value, str) or len(value) != 6 or not value.isdigit():
        raise ValueError(f"frame_id must be a 6-digit zero-padded string, got {value!r}")
    return int(value)


def _as_array(value, dtype, shape_tail: tuple[int, ...], name: str) -> np.ndarray:
    source = np.asarray(value)
    target = np.dtype(dtype)
    if source.size and target != bool and source.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got {source.dtype} values")
    if source.size and target.kind in "iu":
        # A plain cast would read 1.7 as 1, NaN as an arbitrary integer and 257 as 1 in int8: only whole numbers in
        # the type's range are accepted.
        if source.dtype.kind == "f" and not (np.isfinite(source).all() and (source == np.round(source)).all()):
            raise ValueError(f"{name} must hold whole numbers, got {source[source != np.round(source)][:3]}")
        info = np.iinfo(target)
        if source.min() < info.min or source.max() > info.max:
            raise ValueError(f"{name} must lie in [{info.min}, {info.max}], got [{source.min()}, {source.max()}]")
    with np.errstate(over="ignore"):  # a number too large for float32 becomes inf, refused below
        array = source.astype(target)
    if array.size == 0:
        array = array.reshape((0, *shape_tail))
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape_tail))}), got {array.shape}"
                         if shape_tail else f"{name} must have shape (N,), got {array.shape}")
    if target.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} contains non-finite values")
    array.setflags(write=False)
    return array


def _arrays_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))


@dataclass(frozen=True, eq=False)
class Points:
    """Points of one frame with labels.

    Attributes:
        xy: (N, 2) float32, (x, y) pixels of the original frame.
        labels: (N,) int8, 1 foreground, 0 background, -1 ambiguous (:class:`PointLabel`).
        is_fg_candidate: (N,) bool or None; whether the annotation pipeline proposed the point as a foreground
            candidate (the Point-VOS release keeps this next to the verdict).
    """

    xy: np.ndarray
    labels: np.ndarray
    is_fg_candidate: np.ndarray | None = None

    def __post_init__(self) -> None:
        xy = _as_array(self.xy, np.float32, (2,), "xy")
        labels = _as_array(self.labels, np.int8, (), "labels")
        if len(labels) != len(xy):
            raise ValueError(f"xy has {len(xy)} points but labels has {len(labels)}")
        if not np.isin(labels, (-1, 0, 1)).all():
            raise ValueError(f"labels must be -1 (ambiguous), 0 (background) or 1 (foreground), got "
                             f"{np.unique(labels)}")
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "labels", labels)
        if self.is_fg_candidate is not None:
            candidate = _as_array(self.is_fg_candidate, bool, (), "is_fg_candidate")
            if len(candidate) != len(xy):
                raise ValueError(f"xy has {len(xy)} points but is_fg_candidate has {len(candidate)}")
            object.__setattr__(self, "is_fg_candidate", candidate)

    @classmethod
    def empty(cls) -> Points:
        return cls(xy=np.zeros((0, 2), np.float32), labels=np.zeros((0,), np.int8))

    def __len__(self) -> int:
        return len(self.labels)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Points):
            return NotImplemented
        return (_arrays_equal(self.xy, other.xy) and _arrays_equal(self.labels, other.labels)
                and _arrays_equal(self.is_fg_candidate, other.is_fg_candidate))

    __hash__ = None  # mutable-looking contents: not hashable

    def select(self, keep: np.ndarray) -> Points:
        """The subset where the boolean (N,) ``keep`` is true."""
        keep = np.asarray(keep, bool)
        candidate = None if self.is_fg_candidate is None else self.is_fg_candidate[keep]
        return Points(self.xy[keep], self.labels[keep], candidate)

    def with_label(self, label: PointLabel) -> Points:
        return self.select(self.labels == label)

    @property
    def foreground(self) -> Points:
        return self.with_label(PointLabel.FOREGROUND)

    @property
    def background(self) -> Points:
        return self.with_label(PointLabel.BACKGROUND)

    def outside(self, width: int, height: int) -> np.ndarray:
        """(N,) bool: points whose pixel falls outside a ``width`` x ``height`` frame. A point lies in pixel
        ``floor(x), floor(y)`` (pixel i covers [i, i + 1)), so x = 159.9 is inside a 160-pixel-wide frame."""
        x, y = self.xy[:, 0], self.xy[:, 1]
        return (x < 0) | (y < 0) | (x >= width) | (y >= height)


@dataclass(frozen=True, eq=False)
class FramePoints:
    """The points annotated on one frame (``frame_index``: 0-based index of OpenCV-decoded frames)."""

    frame_index: int
    points: Points

    def __post_init__(self) -> None:
        if not isinstance(self.frame_index, (int, np.integer)) or self.frame_index < 0:
            raise ValueError(f"frame_index must be an int >= 0, got {self.frame_index!r}")
        object.__setattr__(self, "frame_index", int(self.frame_index))
        if not isinstance(self.points, Points):
            raise TypeError(f"points must be Points, got {type(self.points).__name__}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FramePoints):
            return NotImplemented
        return self.frame_index == other.frame_index and self.points == other.points

    __hash__ = None


@dataclass(frozen=True)
class ObjectAnnotation:
    """One object's point annotation across frames (a record of the Point-VOS release).

    Attributes:
        object_id: 32-hex id in the release; any non-empty string is accepted.
        video_name: the video's stem (``<root>/<Dataset>/videos/<split>/<video_name>.mp4``); None in the release
            means the record cannot be used.
        object_name: the noun phrase naming the object ("baby girl"): the noun link.
        question: the sentence the noun comes from (PV-Oops: a location-output question; VNG: the caption).
        question_hash: links the question to VidLN Oops-QA records; "" when unknown.
        frames: annotated frames, strictly increasing ``frame_index``.
        noun_span: optional (start, end) character span of ``object_name`` inside ``question``.
    """

    object_id: str
    video_name: str | None
    object_name: str
    question: str
    question_hash: str
    frames: tuple[FramePoints, ...]
    noun_span: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.object_id, str) or not self.object_id:
            raise ValueError(f"object_id must be a non-empty string, got {self.object_id!r}")
        for name in ("object_name", "question", "question_hash"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        if self.video_name is not None and not isinstance(self.video_name, str):
            raise TypeError(f"video_name must be a string or None, got {type(self.video_name).__name__}")
        frames = tuple(self.frames)
        indices = [f.frame_index for f in frames]
        if any(b <= a for a, b in zip(indices, indices[1:])):
            raise ValueError(f"frames must have strictly increasing frame_index, got {indices}")
        object.__setattr__(self, "frames", frames)
        if self.noun_span is not None:
            start, end = (int(v) for v in self.noun_span)
            if not 0 <= start < end <= len(self.question):
                raise ValueError(f"noun_span {self.noun_span} is outside the question of length {len(self.question)}")
            object.__setattr__(self, "noun_span", (start, end))

    @property
    def frame_indices(self) -> list[int]:
        return [f.frame_index for f in self.frames]

    def points_on(self, frame_index: int) -> Points:
        for frame in self.frames:
            if frame.frame_index == frame_index:
                return frame.points
        raise KeyError(f"object {self.object_id} has no points on frame {frame_index}")


@dataclass(frozen=True)
class VideoRef:
    """Where a video lives: a video file or a folder of frames, with what is known about it."""

    name: str
    path: str | None = None
    dataset: str | None = None
    split: str | None = None
    num_frames: int | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("VideoRef.name must be non-empty")
        for key in ("num_frames", "width", "height"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
                raise ValueError(f"VideoRef.{key} must be a positive int or None, got {value!r}")


@dataclass(frozen=True)
class WordTiming:
    """One entry of a VidLN ``time_alignment``: ``caption[start_index:end_index] == word``; ms since recording start."""

    word: str
    start_index: int
    end_index: int
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_index <= self.end_index:
            raise ValueError(f"word {self.word!r}: bad character span [{self.start_index}, {self.end_index})")
        if self.end_ms < self.start_ms:
            raise ValueError(f"word {self.word!r}: end_ms {self.end_ms} before start_ms {self.start_ms}")


@dataclass(frozen=True, eq=False)
class TraceSegment:
    """One continuous mouse-trace segment (a list in VidLN ``traces``).

    Attributes:
        xy: (N, 2) float64, (x, y) pixels of the keyframe (float64 so that normalised coordinates survive the
            round trip to pixels and back exactly).
        times_ms: (N,) int64, absolute time (ms since epoch).
        keyframe_indices: (N,) int64, index into ``Narrative.keyframe_names``.
    """

    xy: np.ndarray
    times_ms: np.ndarray
    keyframe_indices: np.ndarray

    def __post_init__(self) -> None:
        xy = _as_array(self.xy, np.float64, (2,), "trace xy")
        times = _as_array(self.times_ms, np.int64, (), "trace times_ms")
        keyframes = _as_array(self.keyframe_indices, np.int64, (), "trace keyframe_indices")
        if not len(xy) == len(times) == len(keyframes):
            raise ValueError(f"trace arrays disagree in length: {len(xy)}, {len(times)}, {len(keyframes)}")
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "times_ms", times)
        object.__setattr__(self, "keyframe_indices", keyframes)

    def __len__(self) -> int:
        return len(self.times_ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TraceSegment):
            return NotImplemented
        return (_arrays_equal(self.xy, other.xy) and _arrays_equal(self.times_ms, other.times_ms)
                and _arrays_equal(self.keyframe_indices, other.keyframe_indices))

    __hash__ = None


@dataclass(frozen=True)
class ActorNarrative:
    """What one actor's part of a VidLN narrative holds (caption, word timings, mouse traces)."""

    actor_name: str
    caption: str
    keyframe_selection_indices: tuple[int, ...]
    recording_start_time_ms: int
    traces_start_time_ms: int
    recording_filename: str
    noun_segments: tuple[tuple[int, int], ...]
    time_alignment: tuple[WordTiming, ...]
    traces: tuple[TraceSegment, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyframe_selection_indices", tuple(int(i) for i in self.keyframe_selection_indices))
        object.__setattr__(self, "noun_segments", tuple((int(s), int(e)) for s, e in self.noun_segments))
        object.__setattr__(self, "time_alignment", tuple(self.time_alignment))
        object.__setattr__(self, "traces", tuple(self.traces))
        for start, end in self.noun_segments:
            if not 0 <= start < end <= len(self.caption):
                raise ValueError(f"noun segment [{start}, {end}) is outside the caption of length {len(self.caption)}")
        for timing in self.time_alignment:
            if self.caption[timing.start_index:timing.end_index] != timing.word:
                raise ValueError(f"time_alignment word {timing.word!r} does not match "
                                 f"caption[{timing.start_index}:{timing.end_index}] = "
                                 f"{self.caption[timing.start_index:timing.end_index]!r}")

    @property
    def is_background(self) -> bool:
        return self.actor_name.strip().lower() == "background"


@dataclass(frozen=True)
class Narrative:
    """One VidLN narrative: one video described by one annotator, split into actor narratives.

    ``frame_size`` is the (width, height) of the keyframes, needed to hold traces in pixels.
    """

    vidln_id: int
    dataset_id: str
    video_id: str
    annotator_id: int
    keyframe_names: tuple[str, ...]
    frame_size: tuple[int, int]
    actor_narratives: tuple[ActorNarrative, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyframe_names", tuple(self.keyframe_names))
        object.__setattr__(self, "actor_narratives", tuple(self.actor_narratives))
        width, height = (int(v) for v in self.frame_size)
        if width <= 0 or height <= 0:
            raise ValueError(f"frame_size must be positive, got {self.frame_size}")
        object.__setattr__(self, "frame_size", (width, height))
        num_keyframes = len(self.keyframe_names)
        for actor_index, actor in enumerate(self.actor_narratives):
            for index in actor.keyframe_selection_indices:
                if not 0 <= index < num_keyframes:
                    raise ValueError(f"actor {actor_index}: keyframe_selection_indices has {index}, "
                                     f"outside the {num_keyframes} keyframes")
            for segment in actor.traces:
                bad = (segment.keyframe_indices < 0) | (segment.keyframe_indices >= num_keyframes)
                if bad.any():
                    raise ValueError(f"actor {actor_index}: trace kf_idx {int(segment.keyframe_indices[bad][0])} is "
                                     f"outside the {num_keyframes} keyframes")


@dataclass(frozen=True, eq=False)
class TraceRun:
    """A maximal run of consecutive trace points of one noun on one keyframe.

    Attributes:
        keyframe_index: index into ``Narrative.keyframe_names``.
        keyframe_name: that keyframe's frame stem.
        xy: (N, 2) float64, (x, y) pixels.
        times_ms: (N,) int64, absolute times.
    """

    keyframe_index: int
    keyframe_name: str
    xy: np.ndarray
    times_ms: np.ndarray

    def __post_init__(self) -> None:
        xy = _as_array(self.xy, np.float64, (2,), "run xy")
        times = _as_array(self.times_ms, np.int64, (), "run times_ms")
        if len(xy) != len(times) or len(xy) == 0:
            raise ValueError(f"a trace run needs as many times as points and at least one point, got {len(xy)}, "
                             f"{len(times)}")
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "times_ms", times)

    def __len__(self) -> int:
        return len(self.times_ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TraceRun):
            return NotImplemented
        return (self.keyframe_index == other.keyframe_index and self.keyframe_name == other.keyframe_name
                and _arrays_equal(self.xy, other.xy) and _arrays_equal(self.times_ms, other.times_ms))

    __hash__ = None


@dataclass(frozen=True)
class NounObject:
    """A noun of an actor narrative, linked to its mouse-trace runs (Sec. 3.2 of the paper).

    Attributes:
        span: (start, end) character span of ``text`` in ``caption``.
        source: where the span comes from: "spacy" or "noun_segments".
        runs: the noun's trace runs, in time order; several per keyframe are possible.
    """

    vidln_id: int
    dataset_id: str
    video_id: str
    actor_index: int
    actor_name: str
    caption: str
    span: tuple[int, int]
    source: str
    frame_size: tuple[int, int]
    runs: tuple[TraceRun, ...] = field(default=())

    def __post_init__(self) -> None:
        start, end = (int(v) for v in self.span)
        if not 0 <= start < end <= len(self.caption):
            raise ValueError(f"noun span {self.span} is outside the caption of length {len(self.caption)}")
        object.__setattr__(self, "span", (start, end))
        object.__setattr__(self, "runs", tuple(self.runs))
        if self.source not in ("spacy", "noun_segments"):
            raise ValueError(f"source must be 'spacy' or 'noun_segments', got {self.source!r}")

    @property
    def text(self) -> str:
        return self.caption[self.span[0]:self.span[1]]


# --- Video Narrative Grounding (OVIS-VNG, UVO-VNG; FORMATS.md §3) -------------------------------------------------

def _check_int(value, name: str, *, minimum: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_strings(values, name: str) -> tuple[str, ...]:
    values = tuple(values)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"{name}[{index}] must be a string, got {type(value).__name__}")
    return values


@dataclass(frozen=True)
class VNGActor:
    """One actor narrative of a VNG video: ``actor_index`` is its position in the video's ``actor_narratives``."""

    actor_index: int
    actor_name: str
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "actor_index", _check_int(self.actor_index, "actor_index", minimum=0))
        for name in ("actor_name", "description"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")


@dataclass(frozen=True)
class VNGExpression:
    """A noun to ground: ``description[start:end]`` of actor ``actor_index``, whose masks are track ``obj_id``."""

    expression_id: str
    actor_index: int
    start: int
    end: int
    obj_id: int

    def __post_init__(self) -> None:
        if not isinstance(self.expression_id, str) or not self.expression_id:
            raise ValueError(f"expression_id must be a non-empty string, got {self.expression_id!r}")
        for name in ("actor_index", "start", "end", "obj_id"):
            object.__setattr__(self, name, _check_int(getattr(self, name), name, minimum=0))
        if self.end <= self.start:
            raise ValueError(f"expression {self.expression_id}: empty noun span [{self.start}, {self.end})")


@dataclass(frozen=True)
class VNGVideo:
    """A VNG video: its frame stems, actor narratives and expressions (a ``meta_expressions.json`` entry).

    ``actors[i].actor_index == i`` is required: the reference tools look an expression's actor up by list position.
    """

    name: str
    frames: tuple[str, ...]
    actors: tuple[VNGActor, ...]
    expressions: tuple[VNGExpression, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"video name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "frames", _check_strings(self.frames, "frames"))
        object.__setattr__(self, "actors", tuple(self.actors))
        object.__setattr__(self, "expressions", tuple(self.expressions))
        for position, actor in enumerate(self.actors):
            if actor.actor_index != position:
                raise ValueError(f"actor at position {position} has actor_index {actor.actor_index}")
        ids = [e.expression_id for e in self.expressions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate expression ids in {ids}")
        for expression in self.expressions:
            if expression.actor_index >= len(self.actors):
                raise ValueError(f"expression {expression.expression_id}: actor_index {expression.actor_index} does "
                                 f"not exist ({len(self.actors)} actors)")
            description = self.actors[expression.actor_index].description
            if expression.end > len(description):
                raise ValueError(f"expression {expression.expression_id}: noun span [{expression.start}, "
                                 f"{expression.end}) is outside the description of length {len(description)}")

    def actor(self, expression: VNGExpression) -> VNGActor:
        return self.actors[expression.actor_index]

    def noun_text(self, expression: VNGExpression) -> str:
        """The noun phrase an expression marks: ``description[start:end]`` of its actor."""
        return self.actor(expression).description[expression.start:expression.end]


def _rle_size(rle) -> list | None:
    return rle.get("size") if isinstance(rle, dict) else None


@dataclass(frozen=True)
class MaskTrack:
    """An object's masks over a video: one COCO RLE ``{"size": [h, w], "counts": str | list}`` or None per frame.

    ``obj_id`` is the annotation ``id`` of the VIS-style mask file (OVIS/UVO original or ``extra_masks.json``).
    RLEs are kept as read (compressed or uncompressed), decoded on demand by :func:`vng.io.masks.rle_decode`.
    """

    obj_id: int
    video_id: int
    video_name: str
    height: int
    width: int
    segmentations: tuple[dict | None, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "obj_id", _check_int(self.obj_id, "obj_id"))
        object.__setattr__(self, "video_id", _check_int(self.video_id, "video_id"))
        object.__setattr__(self, "height", _check_int(self.height, "height", minimum=1))
        object.__setattr__(self, "width", _check_int(self.width, "width", minimum=1))
        object.__setattr__(self, "segmentations", tuple(self.segmentations))
        for index, rle in enumerate(self.segmentations):
            if rle is not None and list(_rle_size(rle) or ()) != [self.height, self.width]:
                raise ValueError(f"segmentations[{index}] has size {_rle_size(rle)}, the track is "
                                 f"[{self.height}, {self.width}]")

    __hash__ = None  # holds dicts

    @property
    def annotated_frames(self) -> list[int]:
        """Indices of the frames with a mask."""
        return [index for index, rle in enumerate(self.segmentations) if rle is not None]


@dataclass(frozen=True)
class VISVideo:
    """A video entry of a YouTube-VIS style file (OVIS, UVO, ``extra_masks.json``).

    ``file_names`` are ``<video>/<frame>.<ext>`` paths of the frames the file annotates (all frames for OVIS; the
    sparsely annotated ones for UVO, whose videos carry a YouTube id ``ytid``).
    """

    id: int
    width: int
    height: int
    length: int
    file_names: tuple[str, ...]
    ytid: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", _check_int(self.id, "id"))
        for name in ("width", "height", "length"):
            object.__setattr__(self, name, _check_int(getattr(self, name), name, minimum=1))
        object.__setattr__(self, "file_names", _check_strings(self.file_names, "file_names"))
        if self.ytid is not None and not isinstance(self.ytid, str):
            raise TypeError(f"ytid must be a string or None, got {type(self.ytid).__name__}")


# --- COCO Panoptic Narrative Grounding (FORMATS.md §4) ------------------------------------------------------------

@dataclass(frozen=True)
class PNGSegment:
    """A piece of a PNG caption; a noun (``is_noun``) grounded to COCO panoptic ``segment_ids`` (several = plural).

    ``plural`` is the release's own flag when the file has it (None otherwise).
    """

    utterance: str
    is_noun: bool
    segment_ids: tuple[int, ...]
    plural: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.utterance, str):
            raise TypeError(f"utterance must be a string, got {type(self.utterance).__name__}")
        for name in ("is_noun", "plural"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (name == "plural" and value is None):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        object.__setattr__(self, "segment_ids",
                           tuple(_check_int(v, "segment_ids[]", minimum=0) for v in self.segment_ids))


@dataclass(frozen=True)
class PNGNarrative:
    """A COCO-PNG narrative: an image's caption cut into segments (``annotator_id`` when the file has it)."""

    image_id: int
    caption: str
    segments: tuple[PNGSegment, ...]
    annotator_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_id", _check_int(self.image_id, "image_id", minimum=0))
        if not isinstance(self.caption, str):
            raise TypeError(f"caption must be a string, got {type(self.caption).__name__}")
        object.__setattr__(self, "segments", tuple(self.segments))
        if self.annotator_id is not None:
            object.__setattr__(self, "annotator_id", _check_int(self.annotator_id, "annotator_id"))

    @property
    def nouns(self) -> list[PNGSegment]:
        """The noun segments that are grounded to at least one panoptic segment."""
        return [segment for segment in self.segments if segment.is_noun and segment.segment_ids]


# --- Point verification (Sec. 3.2, Fig. 4): candidates proposed by the pipeline, verdicts given by annotators ------

class CandidateKind(enum.Enum):
    """Where the pipeline proposed a candidate: its propagated probability was high, low, or in between.

    A kind is a proposal, never a verdict: a candidate becomes a release point (:class:`PointLabel`) only through an
    annotator's verdict. The values are how task files spell them; the order is the paper's verification order.
    """

    FOREGROUND = "foreground"  # p >= high threshold: shown to the annotator as "is this the object?"
    BACKGROUND = "background"  # p <= low threshold
    UNCERTAIN = "uncertain"  # in between: hard for the propagator, valuable once verified


_KIND_ORDER = {CandidateKind.FOREGROUND: 0, CandidateKind.BACKGROUND: 1, CandidateKind.UNCERTAIN: 2}


@dataclass(frozen=True)
class Candidate:
    """One point candidate: integer (x, y) pixels of the original frame ``frame_index``, and its proposed kind."""

    frame_index: int
    x: int
    y: int
    kind: CandidateKind

    def __post_init__(self) -> None:
        for name in ("frame_index", "x", "y"):
            object.__setattr__(self, name, _check_int(getattr(self, name), name, minimum=0))
        if not isinstance(self.kind, CandidateKind):
            raise TypeError(f"kind must be a CandidateKind, got {self.kind!r}")

    @property
    def verification_order(self) -> tuple[int, int]:
        """Sort key of the paper's order: every foreground candidate over the frames, then background, then
        uncertain; frames in time order within a kind."""
        return _KIND_ORDER[self.kind], self.frame_index


def _check_inner_path(value, name: str, folder: str) -> None:
    """A non-empty relative path that stays inside ``folder`` (no leading slash, no ``..``)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty relative path, got {value!r}")
    if value.startswith(("/", "\\")) or ".." in value.replace("\\", "/").split("/"):
        raise ValueError(f"{name} must be a path inside {folder}, got {value!r}")


@dataclass(frozen=True)
class TaskFrame:
    """A frame of a verification task: its index and the files the tool shows, as paths relative to the task
    folder (``mask``: the propagated rough mask, a 0/1 PNG; None where there is none)."""

    frame_index: int
    image: str
    mask: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame_index", _check_int(self.frame_index, "frame_index", minimum=0))
        for name in ("image", "mask"):
            value = getattr(self, name)
            if value is None and name == "mask":
                continue
            _check_inner_path(value, name, "the task folder")


@dataclass(frozen=True)
class VerificationTask:
    """One object to verify (the unit an annotator is given): what it is, where it was traced, and its candidates.

    Attributes:
        object_id: the object's stable 32-hex id (it becomes the release's object id).
        video_name: the release's ``video_name``; ``dataset`` / ``split``: where the release puts it.
        object_name, question, question_hash, noun_span: the language link, as in :class:`ObjectAnnotation`.
        frame_size: (width, height) of the video's frames.
        keyframe: the frame the trace was drawn on, with ``mask`` = the trace rasterised (a 0/1 PNG).
        frames: the frames the candidates lie on (10 evenly spaced ones, Sec. 3.2), in time order, each with its
            rough mask.
        candidates: in verification order (:attr:`Candidate.verification_order`); a verdict names a candidate by
            its position in this tuple.
    """

    object_id: str
    video_name: str
    dataset: str
    split: str
    object_name: str
    question: str
    question_hash: str
    noun_span: tuple[int, int] | None
    frame_size: tuple[int, int]
    keyframe: TaskFrame
    frames: tuple[TaskFrame, ...]
    candidates: tuple[Candidate, ...]

    def __post_init__(self) -> None:
        for name in ("object_id", "video_name", "dataset", "split"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("object_name", "question", "question_hash"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        width, height = (_check_int(v, "frame_size", minimum=1) for v in self.frame_size)
        object.__setattr__(self, "frame_size", (width, height))
        if self.noun_span is not None:
            start, end = (_check_int(v, "noun_span", minimum=0) for v in self.noun_span)
            if not start < end <= len(self.question):
                raise ValueError(f"noun_span {self.noun_span} is outside the question of length {len(self.question)}")
            object.__setattr__(self, "noun_span", (start, end))
        frames = tuple(self.frames)
        indices = [frame.frame_index for frame in frames]
        if any(b <= a for a, b in zip(indices, indices[1:])):
            raise ValueError(f"frames must have strictly increasing frame_index, got {indices}")
        candidates = tuple(self.candidates)
        known = set(indices)
        for position, candidate in enumerate(candidates):
            if candidate.frame_index not in known:
                raise ValueError(f"candidate {position} lies on frame {candidate.frame_index}, not one of the task's "
                                 f"frames {indices}")
            if candidate.x >= width or candidate.y >= height:
                raise ValueError(f"candidate {position} at ({candidate.x}, {candidate.y}) is outside the "
                                 f"{width}x{height} frame")
        orders = [candidate.verification_order for candidate in candidates]
        if orders != sorted(orders):
            raise ValueError("candidates must be in verification order: foreground, background, then uncertain, "
                             "frames in time order within a kind")
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "candidates", candidates)


class VerdictAction(enum.Enum):
    """What an annotator did: judged a candidate, took their last judgement back, or skipped the whole object."""

    VERDICT = "verdict"
    UNDO = "undo"
    SKIP = "skip"


@dataclass(frozen=True)
class VerdictEvent:
    """One entry of the append-only verdict log that the verification tool writes (and the simulated annotator).

    Undo is an event, not a deletion: it takes back the annotator's latest verdict on the object that is not yet
    taken back (``candidate`` names it, for the record). A retried request carries the same ``event_id`` and
    counts once.

    Attributes:
        event_id: unique per event (the client makes it, so a retry is recognised).
        object_id: the task's object.
        annotator: who (a name, not a secret).
        action: :class:`VerdictAction`.
        candidate: position in the task's ``candidates`` (VERDICT, UNDO); None for SKIP.
        label: the verdict (VERDICT only): FOREGROUND = ACCEPTED (the object), BACKGROUND = REJECTED,
            AMBIGUOUS.
        time_ms: when the server stored it (ms since the epoch).
        duration_ms: how long the annotator looked at the candidate before answering (VERDICT), or None.
    """

    event_id: str
    object_id: str
    annotator: str
    action: VerdictAction
    candidate: int | None
    label: PointLabel | None
    time_ms: int
    duration_ms: int | None = None

    def __post_init__(self) -> None:
        for name in ("event_id", "object_id", "annotator"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if not isinstance(self.action, VerdictAction):
            raise TypeError(f"action must be a VerdictAction, got {self.action!r}")
        object.__setattr__(self, "time_ms", _check_int(self.time_ms, "time_ms", minimum=0))
        if self.duration_ms is not None:
            object.__setattr__(self, "duration_ms", _check_int(self.duration_ms, "duration_ms", minimum=0))
        if self.action is VerdictAction.SKIP:
            if self.candidate is not None or self.label is not None:
                raise ValueError("a skip names no candidate and no label")
            return
        object.__setattr__(self, "candidate", _check_int(self.candidate, "candidate", minimum=0))
        if self.action is VerdictAction.VERDICT:
            if self.label is None:
                raise ValueError("a verdict needs a label")
            object.__setattr__(self, "label", PointLabel(self.label))
        elif self.label is not None:
            raise ValueError("an undo carries no label")


# --- The annotation pipeline (Sec. 3.2, Fig. 4): the records its stages hand each other ---------------------------

OBJECT_SOURCES = ("narratives", "oops-qa")


def _check_rle(rle, name: str, frame_size: tuple[int, int] | None = None) -> dict:
    """A COCO RLE ``{"size": [h, w], "counts"}``, of a ``frame_size`` (width, height) frame when given."""
    size = _rle_size(rle)
    if not (isinstance(rle, dict) and "counts" in rle and isinstance(size, list) and len(size) == 2
            and all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError(f"{name} must be a COCO RLE {{'size': [h, w], 'counts': ...}}, got {rle!r:.60}")
    if frame_size is not None and size != [frame_size[1], frame_size[0]]:
        raise ValueError(f"{name} is {size[1]}x{size[0]}, the frame is {frame_size[0]}x{frame_size[1]}")
    return rle


def _check_span(span, name: str, text: str) -> tuple[int, int]:
    start, end = (_check_int(v, name, minimum=0) for v in span)
    if not start < end <= len(text):
        raise ValueError(f"{name} {tuple(span)} is outside the text of length {len(text)}")
    return start, end


@dataclass(frozen=True)
class LocationQuestion:
    """An Oops-QA location-output question (FORMATS.md §2): its answer is an object, traced on one frame.

    Attributes:
        video_name: the Oops video, as the file names it (may carry a split prefix).
        question_hash, question: link the object to the VidLN Oops-QA records, as the PV-Oops release keeps them.
        trace_frame: the traced frame: an int (0-based decoded frame index) or a frame name (resolved like VidLN
            keyframe names).
        trace: COCO RLE ``{"size": [h, w], "counts"}`` of the rasterised answer trace on that frame.
        object_name: what the answer names, when the file gives it ("" otherwise).
    """

    video_name: str
    question_hash: str
    question: str
    trace_frame: int | str
    trace: dict
    object_name: str = ""

    def __post_init__(self) -> None:
        for name in ("video_name", "question_hash", "question"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if isinstance(self.trace_frame, bool) or not isinstance(self.trace_frame, (int, str)):
            raise TypeError(f"trace_frame must be a frame index or a frame name, got {self.trace_frame!r}")
        _check_rle(self.trace, "trace")

    __hash__ = None  # holds a dict


@dataclass(frozen=True)
class TracedObject:
    """An object the annotation pipeline annotates (stage 1's record): what names it, its video, where it was traced.

    Attributes:
        object_id: stable 32-hex id, derived from its source (narrative, actor and noun; or video and question),
            so reruns give the same ids; it becomes the release's object id.
        source: ``"narratives"`` (a noun of a VidLN caption) or ``"oops-qa"`` (a location-output question).
        video_name: the release's ``video_name``; ``video_path``: the video file or frame folder it was read from.
        dataset, split: where the release puts it ("Oops", "train").
        num_frames, frame_size: the frames OpenCV decodes from the video and their (width, height).
        object_name, question, question_hash, noun_span: the language link, as in :class:`ObjectAnnotation`
            (``question``: the caption for narratives).
        mentions: every (start, end) span of ``question`` that names this object (repeated mentions merged);
            empty for oops-qa.
        actor_name, vidln_id: the actor narrative and the narrative (narratives; "" and None for oops-qa).
        keyframe_name: the traced frame as the source names it; ``keyframe``: its 0-based decoded frame index.
        trace: COCO RLE ``{"size": [h, w], "counts"}`` of the trace rasterised on the keyframe.
        trace_area: the pixels the rasterised trace covers.
    """

    object_id: str
    source: str
    video_name: str
    video_path: str
    dataset: str
    split: str
    num_frames: int
    frame_size: tuple[int, int]
    object_name: str
    question: str
    question_hash: str
    noun_span: tuple[int, int] | None
    mentions: tuple[tuple[int, int], ...]
    actor_name: str
    vidln_id: int | None
    keyframe_name: str
    keyframe: int
    trace: dict
    trace_area: int

    def __post_init__(self) -> None:
        if (not isinstance(self.object_id, str) or len(self.object_id) != 32
                or any(c not in "0123456789abcdef" for c in self.object_id)):
            raise ValueError(f"object_id must be 32 lower-case hex digits, got {self.object_id!r}")
        if self.source not in OBJECT_SOURCES:
            raise ValueError(f"source must be one of {OBJECT_SOURCES}, got {self.source!r}")
        for name in ("video_name", "video_path", "dataset", "split", "keyframe_name"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("object_name", "question", "question_hash", "actor_name"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        object.__setattr__(self, "num_frames", _check_int(self.num_frames, "num_frames", minimum=1))
        size = tuple(_check_int(v, "frame_size", minimum=1) for v in self.frame_size)
        if len(size) != 2:
            raise ValueError(f"frame_size must be (width, height), got {self.frame_size}")
        object.__setattr__(self, "frame_size", size)
        object.__setattr__(self, "keyframe", _check_int(self.keyframe, "keyframe", minimum=0))
        if self.keyframe >= self.num_frames:
            raise ValueError(f"keyframe {self.keyframe} is outside the {self.num_frames} frames of the video")
        if self.noun_span is not None:
            object.__setattr__(self, "noun_span", _check_span(self.noun_span, "noun_span", self.question))
        object.__setattr__(self, "mentions", tuple(_check_span(span, "mentions[]", self.question)
                                                   for span in self.mentions))
        if self.vidln_id is not None:
            object.__setattr__(self, "vidln_id", _check_int(self.vidln_id, "vidln_id"))
        object.__setattr__(self, "trace", _check_rle(self.trace, "trace", self.frame_size))
        object.__setattr__(self, "trace_area", _check_int(self.trace_area, "trace_area", minimum=1))

    __hash__ = None  # holds a dict


@dataclass(frozen=True)
class TraceMask:
    """Stage 2's record: an object's pseudo-mask on its keyframe, made from its trace by a promptable segmenter.

    ``mask``: the 0/1 PNG, a path relative to the video's work folder; ``score``: the segmenter's predicted IoU
    (None from segmenters that predict none, such as GrabCut); ``area``: the mask's pixels (0: the segmenter found
    nothing, and the object is not propagated).
    """

    object_id: str
    mask: str
    score: float | None
    area: int

    def __post_init__(self) -> None:
        if not isinstance(self.object_id, str) or not self.object_id:
            raise ValueError(f"object_id must be a non-empty string, got {self.object_id!r}")
        _check_inner_path(self.mask, "mask", "the video's work folder")
        if self.score is not None:
            if isinstance(self.score, bool) or not isinstance(self.score, (int, float)):
                raise TypeError(f"score must be a number or None, got {self.score!r}")
            if not np.isfinite(self.score):
                raise ValueError(f"score must be finite (None when there is none), got {self.score!r}")
            object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "area", _check_int(self.area, "area", minimum=0))


@dataclass(frozen=True, eq=False)
class ObjectProbabilities:
    """Stage 3's record: an object's propagated foreground probability on the frames candidates are sampled from
    (only those: Sec. 3.2 samples 10 evenly spaced frames, so the other frames' maps are never kept).

    Attributes:
        object_id: the object.
        frames: (F,) the 0-based frame indices, strictly increasing.
        maps: (F, H, W) uint8, probability × 255 rounded (1/255 steps are far finer than the 0.2 / 0.8 thresholds,
            and a quarter of float32's memory).
    """

    object_id: str
    frames: tuple[int, ...]
    maps: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.object_id, str) or not self.object_id:
            raise ValueError(f"object_id must be a non-empty string, got {self.object_id!r}")
        frames = tuple(_check_int(v, "frames[]", minimum=0) for v in self.frames)
        if any(b <= a for a, b in zip(frames, frames[1:])):
            raise ValueError(f"frames must be strictly increasing, got {frames}")
        maps = np.asarray(self.maps)
        if maps.dtype != np.uint8 or maps.ndim != 3 or len(maps) != len(frames):
            raise ValueError(f"maps must be (F={len(frames)}, H, W) uint8, got {maps.shape} {maps.dtype}")
        maps.setflags(write=False)
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "maps", maps)

    def probability(self, frame_index: int) -> np.ndarray:
        """(H, W) float32 in [0, 1] on ``frame_index`` (one of :attr:`frames`)."""
        return self.maps[self.frames.index(frame_index)].astype(np.float32) / 255.0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectProbabilities):
            return NotImplemented
        return (self.object_id, self.frames) == (other.object_id, other.frames) and _arrays_equal(self.maps,
                                                                                                    other.maps)

    __hash__ = None
