"""PV-DAVIS / PV-YT: point annotations simulated from dense masks (Sec. 3.1, Sec. 4.1), in the Point-VOS release
format (FORMATS.md §2).

Two kinds of annotation come out, one record per object:

- **training** (``split="train"``): on ``num_frames`` evenly spaced frames of the frames where the object is visible
  (10 frames, Sec. 3.1), ``num_foreground`` ACCEPTED points inside the object (10, Sec. 3.1) followed by
  ``num_background`` REJECTED points outside it (other objects count as background; DAVIS void pixels are never
  sampled). All points of a frame keep ``min_distance`` from each other (d = 20 px, Sec. 3.1), foreground and
  background included.
- **reference** (any other split): the test-time initialisation, ``num_foreground`` ACCEPTED points on the object's
  reference frame (DAVIS: frame 0; YouTube-VOS: the object's first annotated frame). The points are drawn one after
  another by random sequential adsorption, so **the k-point setting uses the first k points**
  (:func:`vng.protocol.reference_points`) and the settings are nested (1 ⊂ 2 ⊂ 5 ⊂ 10): more points never move
  the earlier ones, so the settings differ only in the number of points. The paper does not say how its
  1/2/5/10-point sets relate; nesting is this library's choice.

Randomness: one ``numpy.random.Generator`` per object, seeded from ``(seed, sequence, mask id)`` through a SHA-256 of
the names (:func:`object_rng`), so an object's points do not depend on which other objects or sequences are
processed, nor in which order.

Naming: the object id is ``f"{sequence}_{mask_id}"`` (the per-object row name of the DAVIS toolkit's
per-sequence CSV), ``video_name`` the sequence, ``object_name`` the YouTube-VOS category or ``"object"``, the question
empty, ``is_fg_candidate`` true for the foreground points (a simulated annotator proposes exactly those). Frame
indices are positions in the sequence's sorted frame folder (what :meth:`vng.io.video.Video.open` yields on the
folder), so ``frame_id`` ``"000005"`` is the 6th image of the folder, whatever its file name. DAVIS-2016 masks (0/255)
are one object, mask id 1.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from vng.io.davis import read_davis_masks, read_davis_split
from vng.io.masks import read_mask_png
from vng.io.ytvos import read_ytvos_meta, ytvos_frame_paths
from vng.points import evenly_spaced_frames, sample_points
from vng.protocol import object_key
from vng.types import FramePoints, ObjectAnnotation, PointLabel, Points

__all__ = ["SimulationConfig", "object_rng", "davis_object_masks", "training_points", "reference_frame_points",
           "simulate_davis", "simulate_ytvos", "VOID_LABEL"]

VOID_LABEL = 255  # DAVIS-2017 "void" pixels: neither object nor background, never sampled, not scored


@dataclass(frozen=True)
class SimulationConfig:
    """How many points where; the defaults are the paper's chosen setting (Sec. 3.1, Fig. 3)."""

    num_frames: int = 10  # training frames per object, evenly spaced: STCN saturates at 10 (Sec. 3.1, Fig. 3)
    # fg points per training frame, "10 points per object on 10 frames" (Sec. 3.1); on the reference frame, the
    # largest test-time setting: the 1/2/5/10-point settings use its first k points (Sec. 4.1)
    num_foreground: int = 10
    # bg points per training frame: the paper does not say for PV-DAVIS/PV-YT; 10 matches the 10 background
    # candidates per frame of the annotation pipeline (Sec. 3.2).
    num_background: int = 10
    min_distance: float = 20.0  # px between the points of a frame, d = 20 (Sec. 3.1)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_frames", "num_foreground", "num_background", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.num_frames == 0 or self.num_foreground == 0:
            raise ValueError("num_frames and num_foreground must be >= 1")
        if self.min_distance < 0:
            raise ValueError(f"min_distance must be >= 0, got {self.min_distance}")


def object_rng(seed: int, sequence: str, mask_id: int) -> np.random.Generator:
    """The object's own generator: SeedSequence of ``seed`` and a SHA-256 of ``sequence`` and ``mask_id``.

    Stable across runs, platforms and Python versions (unlike ``hash()``, which is salted per process).
    """
    digest = hashlib.sha256(f"{sequence}\0{mask_id}".encode("utf-8")).digest()
    words = np.frombuffer(digest[:16], dtype="<u4").tolist()
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


def davis_object_masks(labels: np.ndarray, *, year: str) -> np.ndarray:
    """Annotation PNG values → object ids: DAVIS-2016 0/255 masks become 0/1 (one object), DAVIS-2017 ids are kept
    (255 there is void, see :data:`VOID_LABEL`). (..., H, W) uint8 in, same shape uint8 out."""
    labels = np.asarray(labels, np.uint8)
    if str(year) == "2016":
        return (labels != 0).astype(np.uint8)
    return labels


def training_points(masks: Sequence[tuple[int, np.ndarray, np.ndarray]], *, config: SimulationConfig,
                    rng: np.random.Generator) -> tuple[FramePoints, ...]:
    """Training points of one object.

    Args:
        masks: ``(frame_index, object, background)`` for every frame where the object is visible, in frame order;
            ``object`` and ``background`` are (H, W) bool (background: where REJECTED points may go, i.e. not the
            object and not void).
        rng: consumed frame by frame in the given order.

    Returns:
        One :class:`FramePoints` per chosen frame (``config.num_frames`` evenly spaced among ``masks``): the
        foreground points (label 1) first, then the background points (label 0), all ≥ ``min_distance`` apart.
    """
    frames = []
    for position in evenly_spaced_frames(len(masks), config.num_frames):
        frame_index, inside, outside = masks[position]
        foreground = sample_points(inside, config.num_foreground, min_distance=config.min_distance, rng=rng)
        background = sample_points(outside, config.num_background, min_distance=config.min_distance, rng=rng,
                                   exclude=foreground)
        labels = np.repeat(np.array([PointLabel.FOREGROUND, PointLabel.BACKGROUND], np.int8),
                           [len(foreground), len(background)])
        points = Points(np.concatenate([foreground, background]), labels, labels == PointLabel.FOREGROUND)
        frames.append(FramePoints(frame_index, points))
    return tuple(frames)


def reference_frame_points(frame_index: int, mask: np.ndarray, *, config: SimulationConfig,
                           rng: np.random.Generator) -> tuple[FramePoints, ...]:
    """The reference points of one object: ``config.num_foreground`` foreground points of the (H, W) bool ``mask``
    on ``frame_index``, in the order they were drawn (the k-point setting uses the first k)."""
    xy = sample_points(mask, config.num_foreground, min_distance=config.min_distance, rng=rng)
    labels = np.full(len(xy), PointLabel.FOREGROUND, np.int8)
    return (FramePoints(frame_index, Points(xy, labels, np.ones(len(xy), bool))),)


def _record(sequence: str, mask_id: int, frames: tuple[FramePoints, ...], object_name: str) -> ObjectAnnotation:
    return ObjectAnnotation(object_id=object_key(sequence, mask_id), video_name=sequence, object_name=object_name,
                            question="", question_hash="", frames=frames)


def _davis_sequence(root, sequence: str, *, year: str, training: bool, config: SimulationConfig,
                    resolution: str) -> list[ObjectAnnotation]:
    labels = read_davis_masks(root, sequence, resolution=resolution)  # (T, H, W) uint8
    void = labels == VOID_LABEL if str(year) != "2016" else np.zeros(labels.shape, bool)
    ids = davis_object_masks(labels, year=year)
    # Training: every object of the sequence. Reference: the objects of frame 0, as the semi-supervised task (and the
    # toolkit, which counts objects on the first frame) has it.
    present = np.unique(ids if training else ids[0])
    objects = []
    for mask_id in (int(v) for v in present if v not in (0, VOID_LABEL)):
        rng = object_rng(config.seed, sequence, mask_id)
        if training:
            visible = [t for t in range(len(ids)) if (ids[t] == mask_id).any()]
            frames = training_points([(t, ids[t] == mask_id, (ids[t] != mask_id) & ~void[t]) for t in visible],
                                     config=config, rng=rng)
        else:
            frames = reference_frame_points(0, ids[0] == mask_id, config=config, rng=rng)
        objects.append(_record(sequence, mask_id, frames, "object"))
    return objects


def simulate_davis(root: str | os.PathLike, *, year: str = "2017", split: str = "train",
                   config: SimulationConfig = SimulationConfig(), sequences: Iterable[str] | None = None,
                   resolution: str = "480p", progress: bool = False) -> list[ObjectAnnotation]:
    """PV-DAVIS: training points for ``split="train"``, reference points otherwise (see the module docstring).

    Args:
        root: a DAVIS folder (``JPEGImages``, ``Annotations``, ``ImageSets/<year>/<split>.txt``).
        sequences: a subset of the split's sequences (default: all, in ``ImageSets`` order).

    Returns:
        One record per object, sequences in split order, objects by mask id.
    """
    names = read_davis_split(root, year=str(year), split=split)
    if sequences is not None:
        wanted = list(sequences)
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise ValueError(f"sequences {unknown} are not in ImageSets/{year}/{split}.txt")
        names = [name for name in names if name in set(wanted)]
    objects = []
    for sequence in tqdm(names, desc=f"PV-DAVIS {year} {split}", unit="seq", disable=not progress):
        objects += _davis_sequence(root, sequence, year=str(year), training=split == "train", config=config,
                                   resolution=resolution)
    return objects


def _ytvos_video(root: Path, split: str, video: str, objects: dict, *, training: bool,
                 config: SimulationConfig) -> list[ObjectAnnotation]:
    index_of = {path.stem: index for index, path in enumerate(ytvos_frame_paths(root, split, video))}
    annotations = root / split / "Annotations" / video
    cache: dict[str, np.ndarray] = {}

    def labels(stem: str) -> np.ndarray | None:
        if stem not in cache:
            path = annotations / f"{stem}.png"
            cache[stem] = read_mask_png(path) if path.is_file() else None
        return cache[stem]

    records = []
    for key in sorted(objects, key=int):
        mask_id = int(key)
        # Frames of meta.json where the object's mask exists and is non-empty, in frame order.
        visible = [(index_of[stem], stem) for stem in objects[key].frames
                   if stem in index_of and labels(stem) is not None and (labels(stem) == mask_id).any()]
        visible.sort()
        if not visible:
            continue
        rng = object_rng(config.seed, video, mask_id)
        if training:
            frames = training_points([(t, labels(stem) == mask_id, labels(stem) != mask_id) for t, stem in visible],
                                     config=config, rng=rng)
        else:  # the object's first annotated frame is its reference frame (YouTube-VOS valid)
            t, stem = visible[0]
            frames = reference_frame_points(t, labels(stem) == mask_id, config=config, rng=rng)
        records.append(_record(video, mask_id, frames, objects[key].category or "object"))
    return records


def simulate_ytvos(root: str | os.PathLike, *, split: str = "train", config: SimulationConfig = SimulationConfig(),
                   videos: Iterable[str] | None = None, progress: bool = False) -> list[ObjectAnnotation]:
    """PV-YT: training points for ``split="train"``, reference points otherwise (``"val"`` reads the ``valid``
    folder).

    Args:
        root: a YouTube-VOS folder with ``<split>/{JPEGImages,Annotations}/<video>/`` and ``<split>/meta.json``.
        videos: a subset of the videos (default: all of ``meta.json``, sorted by name).
    """
    root = Path(root)
    folder = "valid" if split == "val" else split
    meta = read_ytvos_meta(root / folder / "meta.json")
    names = sorted(meta) if videos is None else list(videos)
    unknown = sorted(set(names) - set(meta))
    if unknown:
        raise ValueError(f"videos {unknown} are not in {root / folder / 'meta.json'}")
    records = []
    for video in tqdm(names, desc=f"PV-YT {split}", unit="video", disable=not progress):
        records += _ytvos_video(root, folder, video, meta[video], training=split == "train", config=config)
    return records

