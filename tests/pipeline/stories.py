"""Hand-written narratives for the pipeline tests: captions whose words are timed one a second, with a mouse-trace
segment drawn while chosen words are spoken; and a small test video."""

from __future__ import annotations

import re

import numpy as np

from vng.io.video import write_video
from vng.types import ActorNarrative, Narrative, TraceSegment, WordTiming

FRAME_SIZE = (64, 48)  # width, height of the test videos
NUM_FRAMES = 12
KEYFRAMES = ("000002", "000005", "000009")  # plain numbers: 0-based decoded frames
START_MS = 1_000_000  # the recording's start, ms since the epoch


def actor(name: str, caption: str, traces: dict[str, list[tuple[int, list[tuple[float, float]]]]]) -> ActorNarrative:
    """An actor narrative whose i-th word is spoken from second i; ``traces`` maps a word (``"cake#2"``: its second
    occurrence) to (keyframe index, points in pixels) segments drawn while it is spoken."""
    words = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", caption)]
    timings = tuple(WordTiming(word, start, end, 1000 * i, 1000 * i + 900) for i, (word, start, end) in
                    enumerate(words))
    segments = []
    for label, drawn in traces.items():
        text, _, occurrence = label.partition("#")
        positions = [i for i, (word, _, _) in enumerate(words) if word.strip(".,") == text]
        position = positions[int(occurrence or 1) - 1]
        for keyframe, xy in drawn:
            times = START_MS + 1000 * position + 100 + 10 * np.arange(len(xy))
            segments.append(TraceSegment(np.asarray(xy, np.float64), times, [keyframe] * len(xy)))
    return ActorNarrative(actor_name=name, caption=caption, keyframe_selection_indices=(0,),
                          recording_start_time_ms=START_MS, traces_start_time_ms=START_MS, recording_filename="",
                          noun_segments=(), time_alignment=timings, traces=tuple(segments))


def narrative(*actors: ActorNarrative, video_id: str = "clip", vidln_id: int = 1,
              dataset_id: str = "toy_train", keyframes=KEYFRAMES) -> Narrative:
    return Narrative(vidln_id=vidln_id, dataset_id=dataset_id, video_id=video_id, annotator_id=0,
                     keyframe_names=tuple(keyframes), frame_size=FRAME_SIZE, actor_narratives=actors)


def line(x0: float, x1: float, y: float) -> list[tuple[float, float]]:
    """A horizontal trace from x0 to x1 at row y (one point a pixel): its rasterised area grows with its length."""
    return [(x, y) for x in np.arange(x0, x1 + 1)]


def write_clip(path, seed: int = 0) -> None:
    """A small mp4 of NUM_FRAMES frames: a bright square moving right over noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(NUM_FRAMES):
        frame = rng.integers(0, 60, (FRAME_SIZE[1], FRAME_SIZE[0], 3), dtype=np.uint8)
        frame[16:32, 8 + 2 * t:24 + 2 * t] = 230
        frames.append(frame)
    write_video(path, frames, fps=8)
