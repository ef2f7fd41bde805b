"""Stage 3 of the annotation pipeline: each object's keyframe pseudo-mask propagated forward to the last frame and
backward to the first (Sec. 3.2: STCN; here any method of :mod:`vng.methods`, through its probabilities).

The frames stage 4 samples candidates on (``num_frames`` evenly spaced ones, :func:`~vng.points.evenly_spaced_frames`)
are known before propagation starts, so only their maps are kept: :func:`vng.inference.propagate_video` (the one
"forward, then backward" loop) yields just those frames and stops each pass past them, and each map is kept as
uint8 (:class:`~vng.types.ObjectProbabilities`) — no (T, H, W) stack per object. Objects are referents of captions
and may overlap (a tiger and its stripes; one tiger named by two narratives), so none may take pixels from another:
all objects of a video run in one session when the method can keep them independent
(:meth:`~vng.inference.PromptedSession.allow_overlap`: sam-propagator, flow, the oracle), so a method that encodes
frames encodes each once; otherwise (STCN, whose objects share one soft aggregation) each object runs in its own
session. A session holds at most 255 objects (ids are palette indices), so a video with more runs several.

Frames are streamed. A video file is decoded once into a raw frame file for the run (the backward pass reads frames
in reverse, and ``Video`` never seeks; :func:`~vng.io.video.decode_to_disk`), deleted when the video is done.
Per video: ``videos/<key>/probabilities.npz``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vng.inference import Method, propagate_video
from vng.io.common import FormatError, Location
from vng.io.masks import read_mask_png
from vng.io.pipeline import read_trace_masks, read_traced_objects, write_probabilities
from vng.io.video import Video, decode_to_disk
from vng.pipeline.workdir import StageReport, WorkDir, run_per_video
from vng.points import CandidateConfig, evenly_spaced_frames
from vng.types import ObjectProbabilities

__all__ = ["MAX_SESSION_OBJECTS", "KeyframePrompt", "propagate_objects", "make_propagation"]

MAX_SESSION_OBJECTS = 255  # a session's object ids are palette indices 1..255 (vng.inference)


@dataclass(frozen=True, eq=False)
class KeyframePrompt:
    """An object to propagate: its (H, W) bool pseudo-mask on frame ``frame_index``."""

    object_id: str
    frame_index: int
    mask: np.ndarray


def propagate_objects(video: Video, prompts: Sequence[KeyframePrompt], method: Method, frames: Sequence[int], *,
                      max_objects_per_session: int = MAX_SESSION_OBJECTS) -> list[ObjectProbabilities]:
    """Propagate every object from its keyframe through the whole video and keep its maps on ``frames`` only.

    Args:
        video: read frame by frame, in both directions (give a frame folder or :func:`decode_to_disk`'s video).
        prompts: one per object, each on its own keyframe; ids must be distinct.
        method: any method of :mod:`vng.methods` (binary ones give soft maps: ``mask_to_probability``).
        frames: the frames whose maps are kept (stage 4's sampling frames).
        max_objects_per_session: objects per session (255: the palette limit) of a method that keeps them
            independent (one per session otherwise).

    Returns:
        One :class:`ObjectProbabilities` per prompt, in prompt order, over the sorted ``frames``.
    """
    ids = [prompt.object_id for prompt in prompts]
    if len(set(ids)) != len(ids):
        raise ValueError("each object is prompted once")
    if not 1 <= max_objects_per_session <= MAX_SESSION_OBJECTS:
        raise ValueError(f"max_objects_per_session must be in [1, {MAX_SESSION_OBJECTS}]")
    frames = sorted(set(frames))
    kept: dict[str, dict[int, np.ndarray]] = {object_id: {} for object_id in ids}
    start = 0
    while start < len(prompts):
        session = method.start(video)
        group = prompts[start:start + (max_objects_per_session if session.allow_overlap() else 1)]
        start += len(group)
        for number, prompt in enumerate(group, start=1):
            session.add_mask(prompt.frame_index, number, prompt.mask)
        for frame_index, maps in propagate_video(session, probabilities=True, frames=frames):
            for number, probability in maps.items():
                kept[group[number - 1].object_id][frame_index] = np.rint(probability * 255).astype(np.uint8)
    width, height = video.size
    nothing = np.zeros((height, width), np.uint8)  # a frame no pass reached: nothing known, p = 0
    return [ObjectProbabilities(object_id, tuple(frames),
                                np.stack([kept[object_id].get(frame, nothing) for frame in frames]))
            for object_id in ids]


def make_propagation(workdir: WorkDir, method: Method, *, num_frames: int = CandidateConfig().num_frames,
                     overwrite: bool = False, process_index: int = 0, num_processes: int = 1,
                     progress: bool = False) -> StageReport:
    """Stage 3 for this process's share of the videos stage 2 finished (module docstring).

    Args:
        num_frames: evenly spaced frames per video whose maps are kept (Sec. 3.2: 10).
    """
    workdir.begin_stage("propagate", {"method": method, "num_frames": num_frames}, overwrite=overwrite,
                        process_index=process_index, num_processes=num_processes)
    report = StageReport("propagate")

    def work(key: str) -> int:
        objects = {obj.object_id: obj for obj in read_traced_objects(workdir.objects_file(key))}
        masks = [record for record in read_trace_masks(workdir.trace_masks_file(key)) if record.area > 0]
        if not masks:
            write_probabilities(workdir.probabilities_file(key), [])
            return 0
        first = objects[masks[0].object_id]
        prompts = [KeyframePrompt(record.object_id, objects[record.object_id].keyframe,
                                  read_mask_png(workdir.video_dir(key) / record.mask).astype(bool))
                   for record in masks]
        try:
            video = decode_to_disk(first.video_path, workdir.frame_cache(key))
            if len(video) != first.num_frames:
                raise FormatError(f"the video decodes to {len(video)} frames, stage 1 counted {first.num_frames}",
                                  Location(first.video_path))
            frames = evenly_spaced_frames(first.num_frames, num_frames)
            results = propagate_objects(video, prompts, method, frames)
        finally:
            shutil.rmtree(workdir.frame_cache(key), ignore_errors=True)
        write_probabilities(workdir.probabilities_file(key), results)
        return len(results)

    return run_per_video(report, workdir, workdir.keys(), work, output=workdir.probabilities_file,
                         needs=workdir.trace_masks_file, process_index=process_index, num_processes=num_processes,
                         progress=progress)
