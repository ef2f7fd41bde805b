"""Mouse traces: the VidLN word → trace rule, rasterisation, and the localisation of a noun (Sec. 3.2).

The word → trace rule follows the VidLN reference tools (FORMATS.md §1):

1. sort ``time_alignment`` by ``start_ms`` and keep the words whose character span overlaps the noun's span;
2. the window runs from the first kept word's ``start_ms`` to the ``start_ms`` of the word after the last kept word
   (open-ended when the last kept word is the last word of the caption);
3. shifted by ``recording_start_time_ms`` to absolute time, the window keeps the trace points inside it (inclusive);
   runs split wherever that predicate changes, at segment boundaries and where ``kf_idx`` changes, so every run lies
   on one keyframe.

A noun is localised by the run on the keyframe where it covers the largest rasterised area (ties: the earliest
keyframe, then the earliest run).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vng.types import ActorNarrative, Narrative, NounObject, TraceRun, WordTiming

__all__ = ["word_window", "noun_trace_runs", "make_noun_object", "rasterise_trace", "Localisation", "localise_noun"]

DEFAULT_LINE_WIDTH = 3  # px, as the VidLN tools draw traces


def word_window(time_alignment: tuple[WordTiming, ...], span: tuple[int, int]) -> tuple[int, float] | None:
    """(start_ms, end_ms) relative to the recording start for a character span; ``end_ms`` is ``inf`` when the
    span reaches the last word. None when no timed word overlaps the span."""
    words = sorted(time_alignment, key=lambda w: w.start_ms)
    kept = [i for i, w in enumerate(words) if w.start_index < span[1] and span[0] < w.end_index]
    if not kept:
        return None
    after = kept[-1] + 1
    end = words[after].start_ms if after < len(words) else float("inf")
    return words[kept[0]].start_ms, end


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of a 1-D bool array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def noun_trace_runs(narrative: Narrative, actor: ActorNarrative, span: tuple[int, int]) -> list[TraceRun]:
    """The trace runs of the noun at ``span`` of ``actor.caption``, in time order (see the module docstring)."""
    window = word_window(actor.time_alignment, span)
    if window is None:
        return []
    start = actor.recording_start_time_ms + window[0]
    end = actor.recording_start_time_ms + window[1]
    runs = []
    for segment in actor.traces:
        inside = (segment.times_ms >= start) & (segment.times_ms <= end)
        # A change of keyframe inside a segment also ends a run: a run is drawn on one keyframe.
        keyframe_change = np.concatenate(([False], np.diff(segment.keyframe_indices) != 0))
        for run_start, run_stop in _runs(inside):
            cuts = [run_start, *(np.flatnonzero(keyframe_change[run_start + 1:run_stop]) + run_start + 1), run_stop]
            for a, b in zip(cuts, cuts[1:]):
                keyframe = int(segment.keyframe_indices[a])
                runs.append(TraceRun(keyframe, narrative.keyframe_names[keyframe], segment.xy[a:b],
                                     segment.times_ms[a:b]))
    return runs


def make_noun_object(narrative: Narrative, actor_index: int, span: tuple[int, int], source: str) -> NounObject:
    """A :class:`NounObject` for one noun span of one actor narrative, with its trace runs."""
    actor = narrative.actor_narratives[actor_index]
    return NounObject(vidln_id=narrative.vidln_id, dataset_id=narrative.dataset_id, video_id=narrative.video_id,
                      actor_index=actor_index, actor_name=actor.actor_name, caption=actor.caption, span=span,
                      source=source, frame_size=narrative.frame_size,
                      runs=tuple(noun_trace_runs(narrative, actor, span)))


def rasterise_trace(xy: np.ndarray, frame_size: tuple[int, int], *, line_width: int = DEFAULT_LINE_WIDTH) -> np.ndarray:
    """Draw a polyline through ``xy`` as a (H, W) bool mask, without antialiasing.

    Args:
        xy: (N, 2) float, (x, y) pixels; a point lies in pixel ``floor(x), floor(y)`` (pixel i covers [i, i + 1)),
            clipped to the frame.
        frame_size: (width, height).
        line_width: brush width in px. The centre line (8-connected, Bresenham) is stamped with a square brush
            covering offsets ``-(w // 2) .. (w - 1) // 2``: odd widths are symmetric, even widths extend one pixel
            more to the left/up, as in the VidLN tools.
    """
    width, height = frame_size
    if line_width < 1:
        raise ValueError(f"line_width must be >= 1, got {line_width}")
    canvas = np.zeros((height, width), np.uint8)
    if len(xy) == 0:
        return canvas.astype(bool)
    pixels = np.floor(np.asarray(xy, np.float64)).astype(np.int32)
    pixels[:, 0] = np.clip(pixels[:, 0], 0, width - 1)
    pixels[:, 1] = np.clip(pixels[:, 1], 0, height - 1)
    if len(pixels) == 1:
        canvas[pixels[0, 1], pixels[0, 0]] = 1
    else:
        cv2.polylines(canvas, [pixels.reshape(-1, 1, 2)], isClosed=False, color=1, thickness=1, lineType=cv2.LINE_8)
    if line_width > 1:
        # cv2.dilate lights dst(p) for src(p - k + anchor), k over the kernel: offsets anchor - (w - 1) .. anchor.
        anchor = (line_width - 1) // 2
        kernel = np.ones((line_width, line_width), np.uint8)
        canvas = cv2.dilate(canvas, kernel, anchor=(anchor, anchor), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return canvas.astype(bool)


@dataclass(frozen=True)
class Localisation:
    """Where a noun is: one trace run on one keyframe, and the area (pixels) it covers when rasterised."""

    noun: NounObject
    run: TraceRun | None
    area: int

    @property
    def keyframe_index(self) -> int | None:
        return None if self.run is None else self.run.keyframe_index


def localise_noun(noun: NounObject, *, line_width: int = DEFAULT_LINE_WIDTH) -> Localisation:
    """The noun's run with the largest rasterised area; ties go to the earliest keyframe, then the earliest run.

    A noun without trace points gets ``run=None`` and area 0.
    """
    best, best_key = None, None
    for order, run in enumerate(noun.runs):
        area = int(rasterise_trace(run.xy, noun.frame_size, line_width=line_width).sum())
        key = (-area, run.keyframe_index, order)
        if best_key is None or key < best_key:
            best, best_key = run, key
    return Localisation(noun, best, 0 if best_key is None else -best_key[0])
