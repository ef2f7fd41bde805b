"""Captions, word timings and mouse traces (VidLN) that describe a scene, with the noun mentions they make."""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from vng.datasets.synthetic.config import EPOCH_MS, SampleDataConfig
from vng.datasets.synthetic.scenes import BackgroundStyle, ObjectTrack, Scene, shape_mask
from vng.types import ActorNarrative, Narrative, TraceSegment, WordTiming, frame_id


@dataclass(frozen=True)
class _Phrase:
    """A piece of a caption as the annotator speaks and traces it.

    ``target``: track id traced while saying it (0: background, None: nothing); ``wall``: a frame edge traced
    instead; ``trace_from``: substring of ``text`` at whose first word the tracing starts (default: the first word);
    ``keyframes``: keyframe indices traced, one trace segment each; ``pause_ms``: the silence after the phrase,
    during which the annotator keeps tracing (VidLN annotators pause to move the mouse).
    """

    text: str
    target: int | None = None
    wall: str | None = None
    trace_from: str | None = None
    keyframes: tuple[int, ...] = ()
    pause_ms: tuple[int, int] = (300, 600)
    mentions: tuple[tuple[str, int], ...] = ()  # (substring, track_id): noun phrases that name an object
    nouns: tuple[str, ...] = ()  # substrings tagged in noun_segments


@dataclass(frozen=True)
class Mention:
    """A noun phrase of a caption that names an object: ``caption[span[0]:span[1]]`` refers to ``track_id``.

    ``subject`` marks the phrase that opens the object's own actor narrative ("red circle" in "A red circle moves
    ..."); other mentions name another object ("..., passing behind the blue square").
    """

    actor_index: int
    span: tuple[int, int]
    track_id: int
    subject: bool


@dataclass(frozen=True)
class SceneNarrative:
    """A VidLN narrative of a scene, with which caption spans name which object (the ground truth of grounding)."""

    narrative: Narrative
    mentions: tuple[Mention, ...]
    keyframe_frames: tuple[int, ...]  # frame index of each keyframe name

    def subject(self, track_id: int) -> Mention:
        return next(m for m in self.mentions if m.track_id == track_id and m.subject)


_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")


def _join_clauses(clauses: list[str]) -> list[str]:
    """Phrase texts of an English list: ["a"] → [" a"]; ["a", "b"] → [" a", " and b"];
    ["a", "b", "c"] → [" a", ", b", " and c"]."""
    joined = []
    for index, clause in enumerate(clauses):
        if index == 0:
            joined.append(f" {clause}")
        elif index == len(clauses) - 1:
            joined.append(f" and {clause}")
        else:
            joined.append(f", {clause}")
    return joined


def _object_phrases(obj: ObjectTrack, keyframes: tuple[int, ...], rng: np.random.Generator, *,
                    occluder: tuple[ObjectTrack, str, int] | None) -> list[_Phrase]:
    """The phrases of one object's caption: subject, motion, bounce, scale change, occlusion."""
    verb = str(rng.choice(["moves", "slides", "drifts", "glides"]))
    direction = {"left": "to the left", "right": "to the right", "up": "upwards", "down": "downwards"}[obj.direction]
    own = obj.track_id
    motion_keyframe = (keyframes[len(keyframes) // 2],)
    clauses: list[tuple[str, dict]] = [(f"{verb} {direction}", dict(target=own, keyframes=motion_keyframe,
                                                                   pause_ms=(700, 1400)))]
    if obj.bounce is not None:
        clauses.append((f"bounces off the {obj.bounce} wall",
                        dict(wall=obj.bounce, trace_from=f"{obj.bounce} wall", keyframes=(keyframes[-1],),
                             pause_ms=(700, 1200), nouns=("wall",))))
    if obj.scale_change is not None:
        text = "grows bigger" if obj.scale_change == "grows" else "shrinks"
        clauses.append((text, dict(target=own, keyframes=(keyframes[0],), pause_ms=(600, 1200))))
    texts = _join_clauses([text for text, _ in clauses])
    article = "An" if obj.noun[0] in "aeiou" else "A"
    # The subject is traced on all the actor's keyframes, with a long pause after it: VidLN annotators trace the
    # actor thoroughly when they name it.
    phrases = [_Phrase(f"{article} {obj.noun}", target=own, trace_from=obj.noun, keyframes=keyframes,
                       pause_ms=(1800, 3000), mentions=((obj.noun, own),), nouns=(obj.noun,))]
    phrases += [_Phrase(text, **options) for text, (_, options) in zip(texts, clauses)]
    if occluder is not None:
        other, relation, keyframe = occluder
        phrases.append(_Phrase(f", passing {relation} the {other.noun}", target=other.track_id, trace_from=other.noun,
                               keyframes=(keyframe,), pause_ms=(1500, 2500), mentions=((other.noun, other.track_id),),
                               nouns=(other.noun,)))
    phrases.append(_Phrase("."))
    return phrases


def _background_phrases(style: BackgroundStyle, keyframe: int) -> list[_Phrase]:
    return [_Phrase("In the background", target=0, trace_from="background", keyframes=(keyframe,),
                    pause_ms=(1200, 2200), nouns=("background",)),
            _Phrase(f", there is {style.description}", target=0, trace_from=style.description, keyframes=(keyframe,),
                    pause_ms=(1500, 2500), nouns=style.nouns),
            _Phrase(".")]


def _speak(phrases: list[_Phrase], rng: np.random.Generator
           ) -> tuple[str, list[WordTiming], list[int], list[tuple[int, int] | None]]:
    """Assemble the caption and time its words like a spoken recording.

    Returns the caption, its word timings, each phrase's character offset, and each phrase's trace interval
    (start ms, end ms) or None for a phrase without words; times are relative to the recording start. Words of a
    phrase follow each other without gaps; a pause follows each phrase. Times are multiples of 10 ms, as in VidLN's
    forced alignment.
    """
    caption, words, offsets, spans, clock = "", [], [], [], int(rng.integers(120, 260)) * 10
    for phrase in phrases:
        offset = len(caption)
        offsets.append(offset)
        caption += phrase.text
        phrase_words = []
        for match in _WORD.finditer(phrase.text):
            duration = (110 + 45 * len(match.group()) + int(rng.integers(0, 80))) // 10 * 10
            phrase_words.append(WordTiming(word=match.group(), start_index=offset + match.start(),
                                           end_index=offset + match.end(), start_ms=clock, end_ms=clock + duration))
            clock += duration
        words += phrase_words
        if not phrase_words:
            spans.append(None)
            continue
        pause = int(rng.integers(*phrase.pause_ms)) // 10 * 10
        start_char = offset + (phrase.text.index(phrase.trace_from) if phrase.trace_from else 0)
        first = next(w for w in phrase_words if w.end_index > start_char)
        # Trace from just after the traced word starts to just before the next phrase starts, so every point lies
        # inside the FORMATS.md §1 window of that word (which ends at the next word's start).
        spans.append((first.start_ms + 20, clock + pause - 60))
        clock += pause
    return caption, words, offsets, spans


def _interior_point(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The mask pixel farthest from the boundary (x, y) and that distance in px."""
    distance = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return np.array([col + 0.5, row + 0.5]), float(distance[row, col])


def _trace_path(scene: Scene, frame_index: int, target: int | None, wall: str | None, count: int,
                rng: np.random.Generator) -> np.ndarray:
    """(count, 2) float64 (x, y) pixels of one trace segment: loops over an object, a line along a wall, or a
    wander over the background."""
    width, height = scene.size
    progress = np.linspace(0, 1, count)
    if wall is not None:
        inset = 3.0
        along = 0.2 + 0.6 * progress
        xy = {"left": np.stack([np.full(count, inset), along * height], 1),
              "right": np.stack([np.full(count, width - 1 - inset), along * height], 1),
              "top": np.stack([along * width, np.full(count, inset)], 1),
              "bottom": np.stack([along * width, np.full(count, height - 1 - inset)], 1)}[wall]
    elif target:
        # Annotators circle the object: a loop around its most interior point, inside its visible part.
        centre, depth = _interior_point(scene.mask(target, frame_index))
        loops = rng.uniform(1.0, 2.0)
        phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * loops * progress
        radius = 0.6 * depth * (0.7 + 0.3 * np.sin(3 * phase))
        xy = centre + np.stack([radius * np.cos(phase), radius * np.sin(phase)], 1)
    else:
        # Background: a wander through a few background pixels.
        rows, cols = np.nonzero(scene.labels[frame_index] == 0)
        picks = rng.choice(len(rows), 5, replace=False)
        waypoints = np.stack([cols[picks], rows[picks]], 1).astype(np.float64) + 0.5
        knots = np.linspace(0, 1, len(waypoints))
        xy = np.stack([np.interp(progress, knots, waypoints[:, 0]), np.interp(progress, knots, waypoints[:, 1])], 1)
    xy = xy + rng.normal(0, 0.4, xy.shape)
    xy[:, 0] = np.clip(xy[:, 0], 0, width - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, height - 1)
    return np.round(xy, 2)


def _trace_phrase(scene: Scene, phrase: _Phrase, start_ms: int, end_ms: int, keyframe_frames: list[int],
                  rng: np.random.Generator) -> list[TraceSegment]:
    """One trace segment per keyframe of the phrase, splitting [start_ms, end_ms] (absolute) with short gaps."""
    if phrase.target is None and phrase.wall is None:
        return []
    count = len(phrase.keyframes)
    gap = int(rng.integers(150, 300))
    length = (end_ms - start_ms - gap * (count - 1)) / count
    segments = []
    for index, keyframe in enumerate(phrase.keyframes):
        begin = start_ms + round(index * (length + gap))
        times = [begin]
        while times[-1] + 40 <= begin + length:
            times.append(times[-1] + int(rng.integers(15, 40)))  # the VidLN tool samples every ~17-33 ms
        xy = _trace_path(scene, keyframe_frames[keyframe], phrase.target, phrase.wall, len(times), rng)
        segments.append(TraceSegment(xy, times, [keyframe] * len(times)))
    return segments


def _spans_of(phrases: list[_Phrase], offsets: list[int], texts_of) -> list[tuple[int, int]]:
    """Caption spans of the substrings ``texts_of(phrase)`` names in each phrase."""
    spans = []
    for phrase, offset in zip(phrases, offsets):
        for text in texts_of(phrase):
            start = offset + phrase.text.index(text)
            spans.append((start, start + len(text)))
    return spans


def _actor(scene: Scene, name: str, phrases: list[_Phrase], selection: tuple[int, ...], keyframe_frames: list[int],
           recording_start: int, recording_filename: str, rng: np.random.Generator, *,
           wrong_noun: str | None = None) -> tuple[ActorNarrative, list[tuple[int, int, int]], int]:
    """An ActorNarrative, its mentions (start, end, track id) and how long its recording took (ms)."""
    caption, words, offsets, intervals = _speak(phrases, rng)
    segments = []
    for phrase, interval in zip(phrases, intervals):
        if interval is not None:
            segments += _trace_phrase(scene, phrase, recording_start + interval[0], recording_start + interval[1],
                                      keyframe_frames, rng)
    noun_segments = _spans_of(phrases, offsets, lambda phrase: phrase.nouns)
    if wrong_noun is not None:
        # Automatic tagging errs sometimes (VidLN's noun_segments do): tag the verb as a noun.
        start = caption.index(wrong_noun)
        noun_segments = sorted(noun_segments + [(start, start + len(wrong_noun))])
    spans = _spans_of(phrases, offsets, lambda phrase: [text for text, _ in phrase.mentions])
    tracks = [track for phrase in phrases for _, track in phrase.mentions]
    mentions = [(start, end, track) for (start, end), track in zip(spans, tracks)]
    actor = ActorNarrative(
        actor_name=name, caption=caption, keyframe_selection_indices=selection,
        recording_start_time_ms=recording_start,
        traces_start_time_ms=recording_start - int(rng.integers(200, 500)),
        recording_filename=recording_filename, noun_segments=tuple(noun_segments), time_alignment=tuple(words),
        traces=tuple(segments))
    return actor, mentions, words[-1].end_ms + 1500


def _keyframe_frames(num_frames: int, num_keyframes: int) -> list[int]:
    """Evenly spaced keyframes, first and last frame left out (VidLN keyframes avoid the clip's ends)."""
    return sorted({int(round(v)) for v in np.linspace(0, num_frames - 1, num_keyframes + 2)[1:-1]})


def _spread_selection(areas: np.ndarray, count: int) -> tuple[int, ...]:
    """``count`` keyframe indices, one per consecutive chunk, each the chunk's keyframe with the largest area."""
    chunks = np.array_split(np.arange(len(areas)), min(count, len(areas)))
    return tuple(int(chunk[np.argmax(areas[chunk])]) for chunk in chunks)


def _occlusion(scene: Scene, obj: ObjectTrack, selection: tuple[int, ...], keyframe_frames: list[int],
               min_area: int):
    """(other object, "behind"/"in front of", keyframe) for the first object whose shape overlaps this one's in
    some frame and that is visible on one of the actor's keyframes; None when none does."""
    size = scene.size
    for other in scene.objects:
        if other is obj:
            continue
        overlaps = any((shape_mask(obj.shape, obj.centres[t], obj.radii[t], obj.angles[t], size)
                        & shape_mask(other.shape, other.centres[t], other.radii[t], other.angles[t], size)).any()
                       for t in range(len(scene.frames)))
        if not overlaps:
            continue
        areas = [int(scene.mask(other.track_id, keyframe_frames[k]).sum()) for k in selection]
        if max(areas) >= min_area:
            relation = "behind" if obj.track_id < other.track_id else "in front of"
            return other, relation, selection[int(np.argmax(areas))]
    return None


def make_narrative(scene: Scene, *, vidln_id: int, dataset_id: str, rng: np.random.Generator,
                   config: SampleDataConfig) -> SceneNarrative:
    """The VidLN narrative of a scene: one actor narrative per object ("Red circle") plus "background".

    Word timings and traces are made so that the FORMATS.md §1 window of every noun that names an object contains
    trace points over that object on the actor's keyframes.
    """
    keyframe_frames = _keyframe_frames(len(scene.frames), config.num_keyframes)
    areas = scene.visible_areas()[:, keyframe_frames]
    actors, mentions = [], []
    clock = EPOCH_MS + int(rng.integers(0, 10**10))
    wrong = int(rng.integers(len(scene.objects)))  # which actor gets the deliberately wrong noun segment
    for index, obj in enumerate(scene.objects):
        selection = _spread_selection(areas[index], config.keyframes_per_actor)
        occluder = _occlusion(scene, obj, selection, keyframe_frames, config.min_visible_area)
        phrases = _object_phrases(obj, selection, rng, occluder=occluder)
        verb = phrases[1].text.split()[0]
        actor, spans, duration = _actor(scene, obj.noun.capitalize(), phrases, selection, keyframe_frames, clock,
                                        f"recordings/{dataset_id}/{vidln_id}_{index}.webm", rng,
                                        wrong_noun=verb if index == wrong else None)
        actors.append(actor)
        # The first mention of an object actor is its subject ("A red circle ...").
        mentions += [Mention(index, (start, end), track, subject=order == 0)
                     for order, (start, end, track) in enumerate(spans)]
        clock += duration + int(rng.integers(4000, 15000))
    background_keyframe = int(rng.integers(len(keyframe_frames)))
    actor, _, _ = _actor(scene, "background", _background_phrases(scene.background, background_keyframe),
                         (background_keyframe,), keyframe_frames, clock,
                         f"recordings/{dataset_id}/{vidln_id}_{len(scene.objects)}.webm", rng)
    actors.append(actor)
    narrative = Narrative(vidln_id=vidln_id, dataset_id=dataset_id, video_id=scene.video_id,
                          annotator_id=int(rng.integers(1, 200)),
                          keyframe_names=tuple(frame_id(i) for i in keyframe_frames), frame_size=scene.size,
                          actor_narratives=tuple(actors))
    return SceneNarrative(narrative, tuple(mentions), tuple(keyframe_frames))
