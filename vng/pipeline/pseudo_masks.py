"""The pseudo-mask baseline: released points → masks with a promptable segmenter.

- :func:`make_pseudo_masks` — Point-VOS point annotations → one pseudo-mask per annotated frame and object (Sec. 4.2:
  training sets use the fg + bg points of every annotated frame, validation sets the fg reference points only).
  Frames come from ``frames_root`` (:func:`find_frames`): the release root holding ``<Dataset>/videos/<split>/
  <video>.mp4`` (:func:`~vng.io.pointvos.pv_video_path`) or the release's extracted frames ``<Dataset>/<split>/
  JPEGImages/<object_id>/``, or — when neither exists — a folder of videos or per-video frame folders
  ``<frames_root>/<video_name>/<frame>.jpg`` such as DAVIS ``JPEGImages/480p`` (frame i = the folder's i-th image).
  Layouts of the output (palette PNGs, 0 = background):

  - ``"pointvos"``: one 0/1 PNG per object and frame at :func:`~vng.io.pointvos.pseudo_mask_path`
    (``<out>/<Dataset>/pseudo_masks/<split>/<object_id>/<frame_id>.png``), what :func:`vng.datasets.hf.convert_vng`
    reads; index at ``<out>/<Dataset>/pseudo_masks/<split>/index.json``.
  - ``"davis"``: one id PNG per video frame, ``<out>/Annotations/<video_name>/<frame_name>.png``, object ids
    1, 2, … in the order the video's objects appear in the annotation file; where masks overlap, the object with the
    higher predicted IoU wins. An object not annotated on a frame is absent from that frame's PNG (the index lists
    which objects each PNG holds). Index at ``<out>/index.json``.

  Work is split by video over ``num_processes`` (Accelerate: ``accelerate launch --multi_gpu --num_processes N
  -m vng.cli pseudo-masks ...``; with the onnx-sam backend this works on CPU-only machines too),
  each frame is encoded once for all its objects, and the run is resumable: each process appends a record per
  finished frame to ``<index folder>/.parts/*.jsonl``; a frame whose records and PNGs exist is skipped.
  :func:`merge_index` joins the parts into the index JSON. :func:`start_run` and :func:`finish_run_index` keep one
  run per folder: a manifest beside the index records the inputs and settings, so that a rerun with others is
  refused (or, asked to overwrite, redone) instead of mixing its masks with the earlier ones.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np
from tqdm.auto import tqdm

from vng.io.common import FormatError, Location, write_json
from vng.io.masks import write_mask_png
from vng.io.outputs import RunState, finish_run, read_manifest, start_folder_run
from vng.io.pointvos import pseudo_mask_path, pv_frames_candidates
from vng.io.video import Video, first_existing, video_candidates
from vng.segmenters.base import Prediction, Prompt, Segmenter
from vng.segmenters.prompts import PointPromptConfig, points_prompt
from vng.types import ObjectAnnotation, Points, frame_id

__all__ = ["Layout", "PseudoMaskConfig", "FrameTask", "frame_tasks", "find_frames", "open_video", "index_path",
           "start_run", "finish_run_index", "make_pseudo_masks", "merge_index"]

Layout = Literal["pointvos", "davis"]


@dataclass(frozen=True)
class PseudoMaskConfig:
    """What :func:`make_pseudo_masks` prompts with and how it writes."""

    # Which points prompt the segmenter; PointPromptConfig(use_background=False) for validation sets (Sec. 4.2).
    prompt: PointPromptConfig = field(default_factory=PointPromptConfig)
    layout: Layout = "pointvos"  # the layout Oops-VNG / Kinetics-VNG conversion reads; "davis" for STCN training


@dataclass(frozen=True)
class FrameTask:
    """One video frame to segment: the objects annotated on it (object id, index in the video's objects, points)."""

    video_name: str
    frame_index: int
    objects: tuple[tuple[str, int, Points], ...]


def frame_tasks(objects: Iterable[ObjectAnnotation]) -> list[FrameTask]:
    """Group annotations by (video, frame), sorted by video then frame (videos decode forward)."""
    by_frame: dict[tuple[str, int], list[tuple[str, int, Points]]] = defaultdict(list)
    video_objects: dict[str, list[str]] = defaultdict(list)
    for obj in objects:
        if obj.video_name is None:
            continue
        video_objects[obj.video_name].append(obj.object_id)
        position = len(video_objects[obj.video_name]) - 1
        for frame in obj.frames:
            by_frame[(obj.video_name, frame.frame_index)].append((obj.object_id, position, frame.points))
    return [FrameTask(video, index, tuple(items)) for (video, index), items in sorted(by_frame.items())]


def find_frames(frames_root: str | os.PathLike, dataset: str, split: str, video_name: str,
                object_id: str | None = None) -> Path:
    """The frames of a video under ``frames_root``: a release root (the video, or the object's extracted frames:
    :func:`~vng.io.pointvos.pv_frames_candidates`), else a folder of videos or frame folders
    (:func:`~vng.io.video.video_candidates`: ``<frames_root>/<video_name>[.mp4]``); FormatError naming every path
    tried when there is none."""
    candidates = (pv_frames_candidates(frames_root, dataset, split, video_name, object_id)
                  + video_candidates(frames_root, video_name))
    return first_existing(candidates, f"video {video_name!r}", Location(str(frames_root), record=object_id))


def open_video(frames_root: str | os.PathLike, dataset: str, split: str, video_name: str,
               object_id: str | None = None) -> Video:
    """:func:`find_frames`, opened (a video file's length from its container: no decoding pass)."""
    return Video.open(find_frames(frames_root, dataset, split, video_name, object_id), exact_length=False)


def index_path(out: str | os.PathLike, *, layout: Layout, dataset: str, split: str) -> Path:
    """Where :func:`merge_index` writes the index JSON of a run (see the module docstring)."""
    if layout == "pointvos":
        return Path(out) / dataset / "pseudo_masks" / split / "index.json"
    return Path(out) / "index.json"


def start_run(out: str | os.PathLike, *, layout: Layout, dataset: str, split: str,
              inputs: dict[str, str | os.PathLike], settings: dict, overwrite: bool = False,
              main_process: bool = True) -> RunState:
    """Check that a run may write into ``out`` and record it (:func:`vng.io.outputs.begin_run`, the manifest lying
    beside the index): the same run resumes; another run, or masks from no recorded run, are refused unless
    ``overwrite``, which first deletes the earlier masks, index and records. Leftover temporary files of killed
    runs are deleted. Only the main process writes; the others only check (call it in every process, then wait
    for all of them before :func:`make_pseudo_masks`)."""
    index = index_path(out, layout=layout, dataset=dataset, split=split)
    if overwrite and main_process:  # the masks go in start_folder_run
        shutil.rmtree(_parts_dir(out, layout, dataset, split), ignore_errors=True)
        index.unlink(missing_ok=True)
    return start_folder_run(index.parent, "pseudo-masks", inputs=inputs, settings=settings, overwrite=overwrite,
                            results="*/*.png" if layout == "pointvos" else "Annotations/*/*.png",
                            main_process=main_process)


def finish_run_index(out: str | os.PathLike, *, layout: Layout, dataset: str, split: str) -> Path:
    """After every process finished: :func:`merge_index` with what produced the masks (the run's inputs and
    settings, from its manifest), then mark the run complete. Returns the index path."""
    folder = index_path(out, layout=layout, dataset=dataset, split=split).parent
    manifest = read_manifest(folder) or {}
    index = merge_index(out, layout=layout, dataset=dataset, split=split,
                        metadata={"inputs": manifest.get("inputs"), **(manifest.get("settings") or {})})
    finish_run(folder)
    return index


def _parts_dir(out, layout: Layout, dataset: str, split: str) -> Path:
    return index_path(out, layout=layout, dataset=dataset, split=split).parent / ".parts"


def _read_parts(parts: Path) -> list[dict]:
    """Every record of every part file (a line cut short by a crash is ignored: that frame is redone)."""
    records = []
    for part in sorted(parts.glob("*.jsonl")) if parts.is_dir() else []:
        with open(part, encoding="utf-8") as handle:
            for line in handle:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return records


def _mask_path(out: Path, layout: Layout, dataset: str, split: str, task: FrameTask, object_id: str,
               frame_name: str) -> Path:
    if layout == "pointvos":
        return pseudo_mask_path(out, dataset, split, object_id, task.frame_index)
    return out / "Annotations" / task.video_name / f"{frame_name}.png"


def _segment_frame(segmenter: Segmenter, image: np.ndarray, task: FrameTask,
                   config: PseudoMaskConfig) -> list[tuple[str, int, Prompt | None, Prediction | None]]:
    """(object id, position, prompt, prediction) per object of the frame; prompt and prediction are None when the
    frame has no fg point for the object."""
    size = (image.shape[1], image.shape[0])
    prompts = [points_prompt(points, size, config=config.prompt) for _, _, points in task.objects]
    predictions = iter(segmenter.segment_objects(image, [p for p in prompts if p is not None]))
    return [(object_id, position, prompt, None if prompt is None else next(predictions))
            for (object_id, position, _), prompt in zip(task.objects, prompts)]


def _write_frame(out: Path, task: FrameTask, frame_name: str, results, config: PseudoMaskConfig, dataset: str,
                 split: str, size: tuple[int, int]) -> list[dict]:
    """Write the frame's PNG(s); one index record per object."""
    records = []
    davis_labels = np.zeros((size[1], size[0]), np.uint8) if config.layout == "davis" else None
    # Lower predicted IoU first, so that the more confident object keeps the pixels where masks overlap.
    for object_id, position, prompt, prediction in sorted(results, key=lambda r: -1.0 if r[3] is None else r[3].score):
        mask = np.zeros((size[1], size[0]), bool) if prediction is None else prediction.mask
        path = _mask_path(out, config.layout, dataset, split, task, object_id, frame_name)
        label = 1 if davis_labels is None else position + 1
        if davis_labels is None:
            write_mask_png(path, mask.astype(np.uint8))
        else:
            davis_labels[mask] = label
        records.append({"video_name": task.video_name, "frame_index": task.frame_index, "frame_name": frame_name,
                        "object_id": object_id, "label": label, "path": path.relative_to(out).as_posix(),
                        "score": None if prediction is None else round(prediction.score, 5),
                        "area": int(mask.sum()),
                        # the points the prompt used (validation prompts leave the bg points out)
                        "num_foreground": 0 if prompt is None else int((prompt.labels == 1).sum()),
                        "num_background": 0 if prompt is None else int((prompt.labels == 0).sum())})
    if davis_labels is not None:
        write_mask_png(out / records[0]["path"], davis_labels)
        for record in records:  # the area the object kept in the shared id mask
            record["area"] = int((davis_labels == record["label"]).sum())
    return records


def make_pseudo_masks(objects: Sequence[ObjectAnnotation], frames_root: str | os.PathLike, out: str | os.PathLike,
                      segmenter: Segmenter, *, dataset: str, split: str,
                      config: PseudoMaskConfig = PseudoMaskConfig(), process_index: int = 0, num_processes: int = 1,
                      progress: bool = False) -> list[dict]:
    """Segment every annotated frame of this process's share of the videos (see the module docstring).

    Args:
        objects: the annotations (``read_pv_annotations``).
        frames_root: release root with ``<dataset>/videos/<split>/<video>.mp4``, or a folder of frame folders.
        out: output root; the layout decides the paths below it.
        dataset, split: name the release videos and the ``pointvos`` output paths ("Oops", "train").
        process_index, num_processes: this process takes videos ``process_index::num_processes`` (sorted by name).

    Returns:
        The index records this call wrote (frames found finished are skipped and not returned).
    """
    out = Path(out)
    tasks = frame_tasks(objects)
    videos = set(sorted({task.video_name for task in tasks})[process_index::num_processes])
    mine = [task for task in tasks if task.video_name in videos]
    parts = _parts_dir(out, config.layout, dataset, split)
    finished = defaultdict(set)
    for record in _read_parts(parts):
        if (out / record["path"]).is_file():
            finished[(record["video_name"], record["frame_index"])].add(record["object_id"])
    todo = [task for task in mine
            if not {object_id for object_id, _, _ in task.objects} <= finished[(task.video_name, task.frame_index)]]
    written: list[dict] = []
    if not todo:
        return written
    parts.mkdir(parents=True, exist_ok=True)
    part = parts / f"process-{process_index:03d}-of-{num_processes:03d}.jsonl"
    video, video_name = None, None
    with open(part, "a", encoding="utf-8") as log:
        for task in tqdm(todo, desc=f"pseudo-masks [{process_index}]", disable=not progress):
            if task.video_name != video_name:
                video = open_video(frames_root, dataset, split, task.video_name, task.objects[0][0])
                video_name = task.video_name
            try:
                image = video[task.frame_index]
            except IndexError as error:
                raise FormatError(f"{error}; objects {[o for o, _, _ in task.objects][:3]} have points on it",
                                  Location(str(video.path)), "frame_id") from None
            results = _segment_frame(segmenter, image, task, config)
            frame_name = video.frame_names[task.frame_index] if config.layout == "davis" else frame_id(task.frame_index)
            records = _write_frame(out, task, frame_name, results, config, dataset, split, video.size)
            log.writelines(json.dumps(record) + "\n" for record in records)
            log.flush()  # a finished frame is on disk before the next one starts: what resuming relies on
            written += records
    return written


def merge_index(out: str | os.PathLike, *, layout: Layout, dataset: str, split: str,
                metadata: dict | None = None) -> Path:
    """Join the part files of all processes into the index JSON ``{"layout", "dataset", "split", ..metadata,
    "masks": [record, ...]}`` (records sorted by video, frame, object; the latest record of a mask wins)."""
    out = Path(out)
    records = {}
    for record in _read_parts(_parts_dir(out, layout, dataset, split)):
        records[(record["video_name"], record["frame_index"], record["object_id"])] = record
    target = index_path(out, layout=layout, dataset=dataset, split=split)
    write_json(target, {"layout": layout, "dataset": dataset, "split": split, **(metadata or {}),
                        "masks": [records[key] for key in sorted(records)]}, indent=1)
    return target
