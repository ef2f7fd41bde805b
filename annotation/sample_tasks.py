"""Task folders to try the tool on, until ``vng annotate prepare`` writes real ones.

- :func:`synthetic_tasks`: textured frames of any size with one moving ellipse per object (the tests and the
  benchmark use it; 1280×720 by default).
- :func:`sample_data_tasks`: the objects of ``vng sample-data``'s PV-Oops / PV-Kinetics sets, on their annotated
  frames, with their pseudo-masks as the rough masks and their own object ids.

Both stand in for the pipeline's propagation with a soft map made from a rough mask (the logistic of the signed
distance to its edge: sure inside, sure outside, unsure along the edge) and for the narrative's trace with a stroke
across the object on the middle frame. The candidates come from :func:`vng.points.sample_candidates`, as the
pipeline's do. Layout written under ``out``::

    tasks.jsonl
    frames/<video_name>/<frame_id>.jpg
    masks/<object_id>/<frame_id>.png      rough masks, 0/1
    traces/<object_id>.png                the trace on the keyframe, 0/1
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from vng.io.common import FormatError, Location, read_json
from vng.io.masks import read_mask_png, write_mask_png
from vng.io.pointvos import pseudo_mask_path, pv_annotation_path, read_pv_annotations
from vng.io.tasks import write_tasks
from vng.points import CandidateConfig, sample_candidates
from vng.traces import rasterise_trace
from vng.types import TaskFrame, VerificationTask, frame_id

__all__ = ["soft_probability", "synthetic_tasks", "sample_data_tasks"]

_COLOURS = {"red": (210, 40, 40), "blue": (40, 90, 220), "green": (40, 170, 60), "orange": (240, 140, 20),
            "purple": (140, 60, 190)}


def soft_probability(mask: np.ndarray, *, softness: float) -> np.ndarray:
    """(H, W) float32 in (0, 1): the logistic of the signed distance (px, positive inside) to the edge of the (H, W)
    bool ``mask``, divided by ``softness``."""
    mask = np.asarray(mask, bool)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)
    return (0.5 + 0.5 * np.tanh((inside - outside) / (2 * softness))).astype(np.float32)  # = logistic, no overflow


def _scaled_config(height: int, config: CandidateConfig | None) -> CandidateConfig:
    # The paper's d = 20 px is for 480p frames (Sec. 3.1): keep it proportional to the frame height.
    return config or CandidateConfig(min_distance=20.0 * height / 480)


def _trace(mask: np.ndarray) -> np.ndarray:
    """A zig-zag stroke across the middle of the object (a stand-in for the narrative's mouse trace)."""
    ys, xs = np.nonzero(mask)
    centre = np.array([xs.mean(), ys.mean()])
    half = np.array([np.ptp(xs), np.ptp(ys)]) / 2
    stroke = centre + half * np.array([[-0.6, 0.0], [-0.2, -0.35], [0.2, 0.35], [0.6, 0.0]])
    height, width = mask.shape
    return rasterise_trace(stroke, (width, height))


def _make_task(out: Path, *, object_id: str, video_name: str, dataset: str, split: str, object_name: str,
               question: str, question_hash: str, noun_span: tuple[int, int] | None, images: dict[int, str],
               masks: dict[int, np.ndarray],
               config: CandidateConfig, rng: np.random.Generator) -> VerificationTask:
    """Write the rough masks and the trace of one object and sample its candidates; ``images`` are the frames'
    paths relative to ``out``, written already."""
    height, width = next(iter(masks.values())).shape
    frames = []
    candidates = []
    for index in sorted(masks):
        mask_path = f"masks/{object_id}/{frame_id(index)}.png"
        write_mask_png(out / mask_path, masks[index])
        frames.append(TaskFrame(index, images[index], mask_path))
        probability = soft_probability(masks[index], softness=max(1.0, 2.0 * height / 480))
        candidates += sample_candidates(probability, index, config=config, rng=rng)
    keyframe = sorted(masks)[len(masks) // 2]
    trace_path = f"traces/{object_id}.png"
    write_mask_png(out / trace_path, _trace(masks[keyframe]))
    return VerificationTask(
        object_id=object_id, video_name=video_name, dataset=dataset, split=split, object_name=object_name,
        question=question, question_hash=question_hash,
        noun_span=noun_span, frame_size=(width, height),
        keyframe=TaskFrame(keyframe, images[keyframe], trace_path), frames=tuple(frames),
        candidates=tuple(sorted(candidates, key=lambda candidate: candidate.verification_order)))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Smooth grey texture (smooth so that the JPEGs have realistic sizes, unlike pixel noise)."""
    coarse = rng.uniform(70, 185, (height // 40 + 2, width // 40 + 2, 1)).astype(np.float32)
    tint = rng.uniform(-12, 12, (1, 1, 3)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)[..., None] + tint, 0, 255)


def synthetic_tasks(out: str | Path, *, num_objects: int = 3, frame_size: tuple[int, int] = (1280, 720),
                    captions: Sequence[str] | None = None, candidate_config: CandidateConfig | None = None,
                    seed: int = 0) -> list[VerificationTask]:
    """Write a task folder of ``num_objects`` synthetic objects, each its own video of ``candidate_config.num_frames``
    frames, and return its tasks. Object ``i``'s caption is ``captions[i % len(captions)]`` (default: "The <colour>
    ellipse drifts across the frame."), its noun the first "<colour> ellipse" in it (no noun span when absent)."""
    out = Path(out)
    width, height = frame_size
    config = _scaled_config(height, candidate_config)
    rng = np.random.default_rng(seed)
    tasks = []
    for number in range(num_objects):
        colour = list(_COLOURS)[number % len(_COLOURS)]
        object_name = f"{colour} ellipse"
        question = captions[number % len(captions)] if captions else f"The {object_name} drifts across the frame."
        video_name = f"synthetic_{number:03d}"
        start = np.array([rng.uniform(0.25, 0.4) * width, rng.uniform(0.3, 0.7) * height])
        velocity = np.array([rng.uniform(0.2, 0.35) * width, rng.uniform(-0.15, 0.15) * height])
        axes = (int(rng.uniform(0.08, 0.14) * width), int(rng.uniform(0.12, 0.2) * height))
        images, masks = {}, {}
        background = _background(rng, width, height)
        for step in range(config.num_frames):
            centre = start + velocity * step / max(1, config.num_frames - 1)
            true_mask = np.zeros((height, width), np.uint8)
            cv2.ellipse(true_mask, (int(centre[0]), int(centre[1])), axes, 15.0 * step, 0, 360, 1, -1)
            frame = background.copy()
            frame[true_mask > 0] = _COLOURS[colour]
            path = f"frames/{video_name}/{frame_id(step)}.jpg"
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame.astype(np.uint8)).save(out / path, quality=90)
            images[step] = path
            # The rough mask: the object grown or shrunk a little, as a propagated mask is.
            radius = int(rng.integers(1, 4)) * max(1, height // 240)
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            rough = cv2.dilate(true_mask, kernel) if step % 2 else cv2.erode(true_mask, kernel)
            masks[step] = rough > 0
        object_id = hashlib.md5(f"annotation-sample/{seed}/{number}".encode()).hexdigest()
        noun = question.find(object_name)
        tasks.append(_make_task(out, object_id=object_id, video_name=video_name, dataset="Oops", split="train",
                                object_name=object_name, question=question, question_hash="",
                                noun_span=None if noun < 0 else (noun, noun + len(object_name)), images=images,
                                masks=masks, config=config, rng=rng))
    write_tasks(out / "tasks.jsonl", tasks)
    return tasks


def sample_data_tasks(sample_root: str | Path, out: str | Path, *, dataset: str = "Oops", split: str = "train",
                      candidate_config: CandidateConfig | None = None, seed: int = 0) -> list[VerificationTask]:
    """Write a task folder of the objects of ``<sample_root>/<dataset>/<split>`` (the output of ``vng sample-data``)
    and return its tasks: each object's annotated frames (copied), its pseudo-masks as rough masks."""
    root, out = Path(sample_root), Path(out)
    index = root / "index.json"
    dataset_ids = read_json(index).get("dataset_ids") if index.is_file() else None
    key = split if dataset == "Oops" else f"{dataset.lower()}_{split}"
    if not isinstance(dataset_ids, dict) or key not in dataset_ids:
        known = ", ".join(dataset_ids) if isinstance(dataset_ids, dict) else "none"
        raise FormatError(f"no frames of {dataset} {split} in this sample data (dataset ids: {known}); is it the "
                          "output of `vng sample-data`?", Location(str(index)), "dataset_ids")
    dataset_id = dataset_ids[key]
    rng = np.random.default_rng(seed)
    tasks = []
    for obj in read_pv_annotations(pv_annotation_path(root, dataset, split)):
        images, masks = {}, {}
        for index in obj.frame_indices:
            path = f"frames/{obj.video_name}/{frame_id(index)}.jpg"
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / "frames" / dataset_id / obj.video_name / f"{frame_id(index)}.jpg", out / path)
            images[index] = path
            masks[index] = read_mask_png(pseudo_mask_path(root, dataset, split, obj.object_id, index)) > 0
        if not masks:
            raise FormatError(f"object {obj.object_id} has no annotated frame", Location(str(pv_annotation_path(
                root, dataset, split))), "frames")
        config = _scaled_config(next(iter(masks.values())).shape[0], candidate_config)
        tasks.append(_make_task(out, object_id=obj.object_id, video_name=obj.video_name, dataset=dataset, split=split,
                                object_name=obj.object_name, question=obj.question,
                                question_hash=obj.question_hash, noun_span=obj.noun_span, images=images,
                                masks=masks, config=config, rng=rng))
    write_tasks(out / "tasks.jsonl", tasks)
    return tasks
