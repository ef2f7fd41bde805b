"""Stage 4 of the annotation pipeline: point candidates on the sampling frames and the verification tasks.

Per object, on each frame stage 3 kept (Sec. 3.2: 10 evenly spaced ones), 7 foreground / 10 background / 3
uncertain candidates at least 20 px apart (:func:`~vng.points.sample_object_candidates`; seeded by the object id,
so a rerun draws the same ones). They are :class:`~vng.types.Candidate` s — a proposed kind, no verdict — and go
into a :class:`~vng.types.VerificationTask` with everything the verification tool shows, as files of the task
folder (:mod:`vng.io.tasks`), so that the tool never decodes a video:

    tasks/<key>/frames/<frame_id>.jpg         the sampling frames and keyframes, JPEG at the video's size
    tasks/<key>/masks/<object_id>/<frame_id>.png   the propagated rough mask (p >= 0.5), 0/1
    tasks/<key>/traces/<object_id>.png        the trace rasterised on the keyframe, 0/1

Per video the tasks go to ``videos/<key>/tasks.jsonl``; :func:`collect_tasks` joins every video's into
``tasks/tasks.jsonl``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vng.io.common import atomic_write
from vng.io.images import load_image
from vng.io.masks import read_mask_png, rle_decode, write_mask_png
from vng.io.pipeline import read_probabilities, read_traced_objects
from vng.io.tasks import TASKS_FILE, read_tasks, write_tasks
from vng.io.video import read_frames, write_frames
from vng.pipeline.workdir import StageReport, WorkDir, run_per_video
from vng.points import CandidateConfig, sample_object_candidates
from vng.types import CandidateKind, ObjectProbabilities, TaskFrame, TracedObject, VerificationTask, frame_id
from vng.visualize import draw_label, overlay_mask

__all__ = ["KIND_COLOURS", "object_task", "make_candidates", "collect_tasks", "render_task"]

KIND_COLOURS = {CandidateKind.FOREGROUND: (0, 220, 90), CandidateKind.BACKGROUND: (240, 50, 50),
                CandidateKind.UNCERTAIN: (255, 220, 0)}


def object_task(obj: TracedObject, probabilities: ObjectProbabilities, key: str, *,
                config: CandidateConfig = CandidateConfig(), seed: int = 0) -> VerificationTask:
    """The verification task of one object, naming its files in the task folder (module docstring) by ``key``."""
    rng = np.random.default_rng([seed, int(obj.object_id, 16)])
    maps = {frame: probabilities.probability(frame) for frame in probabilities.frames}
    frames = tuple(TaskFrame(frame, f"{key}/frames/{frame_id(frame)}.jpg",
                             f"{key}/masks/{obj.object_id}/{frame_id(frame)}.png") for frame in probabilities.frames)
    return VerificationTask(
        object_id=obj.object_id, video_name=obj.video_name, dataset=obj.dataset, split=obj.split,
        object_name=obj.object_name, question=obj.question, question_hash=obj.question_hash, noun_span=obj.noun_span,
        frame_size=obj.frame_size,
        keyframe=TaskFrame(obj.keyframe, f"{key}/frames/{frame_id(obj.keyframe)}.jpg",
                           f"{key}/traces/{obj.object_id}.png"),
        frames=frames, candidates=tuple(sample_object_candidates(maps, config=config, rng=rng)))


def _write_task_files(tasks_dir: Path, task: VerificationTask, obj: TracedObject,
                      probabilities: ObjectProbabilities) -> None:
    write_mask_png(tasks_dir / task.keyframe.mask, rle_decode(obj.trace).astype(np.uint8))
    for frame, rough in zip(task.frames, probabilities.maps):
        write_mask_png(tasks_dir / frame.mask, (rough >= 128).astype(np.uint8))  # p >= 0.5


def render_task(task: VerificationTask, tasks_dir: str | os.PathLike, *, tile_width: int = 320,
                columns: int = 4) -> np.ndarray:
    """One (H, W, 3) uint8 RGB sheet of a task for people to check: the keyframe with its trace (red), then each
    frame with its rough mask (blue) and candidates (foreground green, background red, uncertain yellow), read from
    the task folder as the verification tool would."""
    tasks_dir = Path(tasks_dir)
    by_frame: dict[int, list] = {}
    for candidate in task.candidates:
        by_frame.setdefault(candidate.frame_index, []).append(candidate)
    width, height = task.frame_size
    scale = tile_width / width
    tiles = []
    for frame, colour in [(task.keyframe, (255, 40, 40)), *((f, (60, 120, 255)) for f in task.frames)]:
        image = np.asarray(load_image(tasks_dir / frame.image, what="frame").convert("RGB"))
        image = overlay_mask(image, read_mask_png(tasks_dir / frame.mask).astype(bool), colour,
                             alpha=1.0 if frame is task.keyframe else 0.35)
        image = cv2.resize(image, (tile_width, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        if frame is not task.keyframe:
            for candidate in by_frame.get(frame.frame_index, ()):
                centre = (round((candidate.x + 0.5) * scale), round((candidate.y + 0.5) * scale))
                cv2.circle(image, centre, 4, KIND_COLOURS[candidate.kind], thickness=-1, lineType=cv2.LINE_AA)
                cv2.circle(image, centre, 4, (0, 0, 0), thickness=1, lineType=cv2.LINE_AA)
        tiles.append(draw_label(image, f"{'keyframe ' if frame is task.keyframe else ''}{frame_id(frame.frame_index)}",
                                scale=0.4))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.concatenate([np.concatenate(tiles[row:row + columns], axis=1)
                            for row in range(0, len(tiles), columns)])
    return draw_label(np.pad(sheet, ((24, 0), (0, 0), (0, 0))), f"{task.object_name!r} in \"{task.question}\"",
                      origin=(0, 0), scale=0.45)


def make_candidates(workdir: WorkDir, *, config: CandidateConfig = CandidateConfig(), seed: int = 0,
                    overlays: str | os.PathLike | None = None, overwrite: bool = False, process_index: int = 0,
                    num_processes: int = 1, progress: bool = False) -> StageReport:
    """Stage 4 for this process's share of the videos stage 3 finished (module docstring).

    Args:
        overlays: also write ``<overlays>/<key>/<object_id>.png`` (:func:`render_task`) for people to look at.
    """
    workdir.begin_stage("candidates", {"config": config, "seed": seed}, overwrite=overwrite,
                        process_index=process_index, num_processes=num_processes)
    report = StageReport("candidates")

    def work(key: str) -> int:
        objects = {obj.object_id: obj for obj in read_traced_objects(workdir.objects_file(key))}
        propagated = read_probabilities(workdir.probabilities_file(key))
        tasks = []
        if propagated:
            first = objects[propagated[0].object_id]
            wanted = sorted({*propagated[0].frames, *(objects[p.object_id].keyframe for p in propagated)})
            images = read_frames(first.video_path, wanted)
            write_frames(workdir.video_task_dir(key) / "frames", (images[frame] for frame in wanted),
                         names=[frame_id(frame) for frame in wanted])
            for probabilities in propagated:
                obj = objects[probabilities.object_id]
                task = object_task(obj, probabilities, key, config=config, seed=seed)
                _write_task_files(workdir.tasks_dir, task, obj, probabilities)
                tasks.append(task)
                report.count("candidates", len(task.candidates))
                if overlays is not None:
                    with atomic_write(Path(overlays) / key / f"{obj.object_id}.png", "wb") as handle:
                        Image.fromarray(render_task(task, workdir.tasks_dir)).save(handle, format="PNG")
        write_tasks(workdir.tasks_part(key), tasks)
        return len(tasks)

    return run_per_video(report, workdir, workdir.keys(), work, output=workdir.tasks_part,
                         needs=workdir.probabilities_file, process_index=process_index, num_processes=num_processes,
                         progress=progress)


def collect_tasks(workdir: WorkDir) -> Path:
    """Join every finished video's tasks into ``tasks/tasks.jsonl`` (videos in key order); returns its path."""
    parts = [workdir.tasks_part(key) for key in workdir.keys() if workdir.tasks_part(key).is_file()]
    target = workdir.tasks_dir / TASKS_FILE
    write_tasks(target, [task for part in parts for task in read_tasks(part)])
    return target
