"""Point-VOS point annotations of a scene (a perfect annotator) and its pseudo-masks."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from vng.datasets.synthetic.config import SampleDataConfig
from vng.datasets.synthetic.narratives import SceneNarrative
from vng.datasets.synthetic.scenes import Scene
from vng.points import evenly_spaced_frames, sample_region_candidates
from vng.types import CandidateKind, FramePoints, ObjectAnnotation, PointLabel, Points


def object_id_for(seed: int, video_id: str, track_id: int) -> str:
    """The 32-hex Point-VOS object id of a synthetic object: stable for a seed, distinct across videos and seeds."""
    return hashlib.md5(f"vng-synthetic/{seed}/{video_id}/{track_id}".encode()).hexdigest()


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


# The ground truth decides: a perfect annotator accepts what lies inside, rejects what lies outside, and finds the
# 1 px band on the boundary ambiguous.
_PERFECT_VERDICTS = {CandidateKind.FOREGROUND: PointLabel.FOREGROUND, CandidateKind.BACKGROUND: PointLabel.BACKGROUND,
                     CandidateKind.UNCERTAIN: PointLabel.AMBIGUOUS}


def sample_object_points(mask: np.ndarray, rng: np.random.Generator, config: SampleDataConfig) -> Points:
    """The verified points of one object on one frame, as the Point-VOS annotators would return them.

    Candidates come from regions of the ground truth (:func:`vng.points.sample_region_candidates`, the pipeline's
    sampler): foreground from the mask eroded by 1 px, background from outside the mask dilated by 2 px (so no point
    sits on the edge), uncertain from the 1 px band around the boundary; their verdicts are ACCEPTED, REJECTED and
    AMBIGUOUS. All points are at least ``config.candidates.min_distance`` px apart (Sec. 3.2).

    Args:
        mask: (H, W) bool, the object's visible pixels.

    Returns:
        Points with integer (x, y) pixels, labels 1 / 0 / -1 and ``is_fg_candidate`` True for the fg candidates.
    """
    mask_u8 = mask.astype(np.uint8)
    inner = cv2.erode(mask_u8, _disk(1)).astype(bool)
    outer = cv2.dilate(mask_u8, _disk(2)).astype(bool)
    band = cv2.dilate(mask_u8, _disk(1)).astype(bool) & ~inner
    candidates = sample_region_candidates(inner if inner.any() else mask, ~outer, band, 0, config=config.candidates,
                                          rng=rng)
    return Points(xy=np.array([(c.x, c.y) for c in candidates], np.float32).reshape(-1, 2),
                  labels=np.array([_PERFECT_VERDICTS[c.kind] for c in candidates], np.int8),
                  is_fg_candidate=np.array([c.kind is CandidateKind.FOREGROUND for c in candidates], bool))


def _pseudo_mask(mask: np.ndarray, rng: np.random.Generator, config: SampleDataConfig) -> np.ndarray:
    """(H, W) uint8 0/1: the ground truth eroded or dilated by 1..``pseudo_mask_max_radius`` px, so that models
    trained on pseudo-masks see imperfect boundaries as they would with DynaMITe/SAM masks."""
    radius = int(rng.integers(1, config.pseudo_mask_max_radius + 1))
    operation = cv2.erode if rng.random() < 0.5 else cv2.dilate
    degraded = operation(mask.astype(np.uint8), _disk(radius))
    return degraded if degraded.any() else mask.astype(np.uint8)  # never erase a small object entirely


def make_point_annotations(scene: Scene, story: SceneNarrative, seed: int, rng: np.random.Generator,
                           config: SampleDataConfig) -> list[ObjectAnnotation]:
    """One Point-VOS record per object: points on evenly spaced frames, linked to the object's caption noun."""
    frames = evenly_spaced_frames(len(scene.frames), config.candidates.num_frames)
    annotations = []
    for obj in scene.objects:
        subject = story.subject(obj.track_id)
        caption = story.narrative.actor_narratives[subject.actor_index].caption
        annotations.append(ObjectAnnotation(
            object_id=object_id_for(seed, scene.video_id, obj.track_id), video_name=scene.video_id,
            object_name=obj.noun, question=caption, question_hash=hashlib.md5(caption.encode()).hexdigest(),
            frames=tuple(FramePoints(t, sample_object_points(scene.mask(obj.track_id, t), rng, config))
                         for t in frames),
            noun_span=subject.span))
    return annotations


def make_pseudo_masks(scene: Scene, annotations: list[ObjectAnnotation], rng: np.random.Generator,
                      config: SampleDataConfig) -> dict[tuple[str, int], np.ndarray]:
    """``{(object_id, frame_index): (H, W) uint8 0/1}`` for every annotated frame of every object.

    ``annotations`` are :func:`make_point_annotations`' output: one per object of the scene, in the same order.
    """
    return {(annotation.object_id, frame.frame_index): _pseudo_mask(scene.mask(obj.track_id, frame.frame_index),
                                                                    rng, config)
            for annotation, obj in zip(annotations, scene.objects, strict=True) for frame in annotation.frames}
