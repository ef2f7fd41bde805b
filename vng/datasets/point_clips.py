"""Training clips for STCN / Point-STCN (Point-VOS, Sec. 4): temporally sparse clips of annotated frames with their
points, and optionally dense (pseudo-)masks.

Point-VOS objects are annotated on 10 frames only (Sec. 3.1), so a clip is made of *annotated* frames: the first
frame of a clip (the reference) is one with foreground points (and, with masks, a non-empty mask); the others follow
it in one direction, forward or backward at random (the annotation pipeline and the benchmark propagate both ways),
each at most ``max_gap`` annotated frames after the previous one (STCN's ``max_jump``, counted in annotated frames).
One object per clip: Point-VOS points belong to one object and its background points may lie on other objects, so
clips of several objects would need labels no annotation gives.

Augmentation (per clip, the same for every frame, as STCN's ``all_im_dual_transform``): a random resized crop to
``size`` x ``size`` (area ``crop_scale`` of the frame, aspect ``crop_ratio``) and a horizontal flip. Points move
with the pixels they sit on (pixel centres, :func:`transform_points`); points that leave the crop become ambiguous
(label -1: no loss). Masks are resampled nearest-neighbour. STCN's extra per-frame affine jitter is left out: the
clip's real motion is larger than it between annotated frames that lie several frames apart.

The reference is made to look like what the benchmark gives at test time (Sec. 4.1: 1 to 10 foreground points):
a random number (1 to 10) of its foreground points is kept, and a random number (0 to all) of its background
points (:attr:`PointClipConfig.reference_foreground`, ``reference_background``). The background points are kept
sometimes because at test time the "others" channel holds the other objects' points (negative evidence the model
must have learnt to read), never when single-object clips always lacked it. The points of the other frames are all
kept, as the loss's targets.

Items are objects. Item ``i`` of epoch ``e`` is drawn with the generator seeded by ``(seed, e, i)``: reproducible and
different every epoch (:meth:`PointClipDataset.set_epoch`, which the Accelerate data loader calls)::

    dataset = PointVOSClipDataset(read_pv_annotations("Oops/train.json"), "Oops/videos/train")
    clip = dataset[0]                       # PointClip: images (T, 3, S, S) uint8, xy (T, N, 2), labels (T, N)
    batch = collate_point_clips([clip, dataset[1]])

:class:`StaticPointClipDataset` turns STCN's static-image clips (:mod:`vng.datasets.static_clips`) into the same
samples, with points sampled from the masks as Point-VOS simulates them (:func:`vng.points.sample_points`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from vng.datasets.static_clips import StaticClipDataset
from vng.io.common import FormatError, Location
from vng.io.masks import read_mask_png
from vng.io.video import find_video, read_frames
from vng.points import sample_points
from vng.types import ObjectAnnotation, PointLabel, frame_id

__all__ = ["PointClip", "PointClipBatch", "PointClipConfig", "PointVOSClipDataset", "StaticPointClipDataset",
           "collate_point_clips", "transform_points", "choose_clip_frames", "point_density_ratio"]


@dataclass(frozen=True)
class PointClipConfig:
    """How clips are drawn and augmented (module docstring); defaults follow STCN's video training."""

    num_frames: int = 3  # STCN trains on 3-frame clips
    max_gap: int = 3  # at most this many annotated frames between consecutive clip frames
    size: int = 384  # STCN's 384 x 384 crops
    crop_scale: tuple[float, float] = (0.36, 1.0)  # STCN's RandomResizedCrop area range
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_probability: float = 0.5
    # The reference frame's points as the benchmark gives them (Sec. 4.1: 1, 2, 5 or 10 foreground points): a random
    # number in this range of its foreground points is kept, and a random number (0 to all) of its background points
    # with reference_background, else none. None keeps every point (the annotation as it is).
    reference_foreground: tuple[int, int] | None = (1, 10)
    reference_background: bool = True
    # StaticPointClipDataset only: points sampled from the static masks, as PV-DAVIS simulates them (Sec. 3.1)
    num_foreground: int = 7
    num_background: int = 10
    min_distance: float = 20.0  # px of the crop; the paper's d = 20 at 480p

    def __post_init__(self) -> None:
        if self.num_frames < 2 or self.max_gap < 1 or self.size < 16:
            raise ValueError("need num_frames >= 2 (a reference and a frame to segment), max_gap >= 1, size >= 16")
        if self.reference_foreground is not None and not 1 <= self.reference_foreground[0] <= \
                self.reference_foreground[1]:
            raise ValueError(f"reference_foreground must be 1 <= low <= high, got {self.reference_foreground}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must be 0 < low <= high <= 1, got {self.crop_scale}")


@dataclass(frozen=True)
class PointClip:
    """One object in a clip; frame 0 is the reference.

    Attributes:
        images: (T, 3, S, S) uint8 RGB.
        xy: (T, N, 2) float32 (x, y) pixels of the crop; padding rows have label -1.
        labels: (T, N) int8, 1 foreground, 0 background, -1 ambiguous / outside the crop / padding.
        masks: (T, S, S) uint8, 1 object, 0 background; None without masks.
        name: ``<video>/<object id>`` (or the static image's index) and ``frames`` the source frame indices.
    """

    images: Tensor
    xy: Tensor
    labels: Tensor
    masks: Tensor | None
    name: str
    frames: tuple[int, ...]


@dataclass(frozen=True)
class PointClipBatch:
    """Clips stacked, points padded to the batch's largest count (label -1)."""

    images: Tensor  # (B, T, 3, S, S) uint8
    xy: Tensor  # (B, T, N, 2) float32
    labels: Tensor  # (B, T, N) int8
    masks: Tensor | None  # (B, T, S, S) uint8, when every clip has masks
    names: tuple[str, ...]

    def to(self, device: torch.device | str) -> PointClipBatch:
        return PointClipBatch(self.images.to(device), self.xy.to(device), self.labels.to(device),
                              None if self.masks is None else self.masks.to(device), self.names)


def collate_point_clips(clips: Sequence[PointClip]) -> PointClipBatch:
    count = max(clip.labels.shape[1] for clip in clips)
    xy = torch.zeros(len(clips), clips[0].xy.shape[0], count, 2)
    labels = torch.full((len(clips), clips[0].labels.shape[0], count), PointLabel.AMBIGUOUS, dtype=torch.int8)
    for i, clip in enumerate(clips):
        xy[i, :, :clip.xy.shape[1]] = clip.xy
        labels[i, :, :clip.labels.shape[1]] = clip.labels
    masks = torch.stack([clip.masks for clip in clips]) if all(c.masks is not None for c in clips) else None
    return PointClipBatch(torch.stack([clip.images for clip in clips]), xy, labels, masks,
                          tuple(clip.name for clip in clips))


def transform_points(xy: np.ndarray, crop: tuple[int, int, int, int], size: int, flip: bool) -> np.ndarray:
    """Points through a crop ``(top, left, height, width)`` resized to ``size`` x ``size`` and an optional flip.

    A point is the centre of its pixel: it keeps its place relative to the image content, ``x' = (x + 0.5 - left)
    * size / width - 0.5`` (and the same for y), and a flip maps ``x'`` to ``size - 1 - x'``.
    """
    top, left, height, width = crop
    out = np.empty_like(np.asarray(xy, np.float32).reshape(-1, 2))
    out[:, 0] = (xy[:, 0] + 0.5 - left) * size / width - 0.5
    out[:, 1] = (xy[:, 1] + 0.5 - top) * size / height - 0.5
    if flip:
        out[:, 0] = size - 1 - out[:, 0]
    return out


def _augment(frames: list[np.ndarray], points: list[tuple[np.ndarray, np.ndarray]], masks: list[np.ndarray] | None,
             config: PointClipConfig, rng: np.random.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """One crop and flip for the whole clip (module docstring)."""
    images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2 ** 31)))
        crop = v2.RandomResizedCrop.get_params(images, list(config.crop_scale), list(config.crop_ratio))
    flip = bool(rng.random() < config.flip_probability)
    size = [config.size, config.size]
    images = TF.resized_crop(images, *crop, size, antialias=True)
    labels_out, xy_out = [], []
    for xy, labels in points:
        moved = transform_points(xy, crop, config.size, flip)
        inside = np.all((moved >= -0.5) & (moved < config.size - 0.5), axis=1)
        xy_out.append(moved)
        labels_out.append(np.where(inside, labels, PointLabel.AMBIGUOUS).astype(np.int8))
    count = max(len(labels) for labels in labels_out)
    xy = torch.zeros(len(points), count, 2)
    labels = torch.full((len(points), count), PointLabel.AMBIGUOUS, dtype=torch.int8)
    for t, (moved, kept) in enumerate(zip(xy_out, labels_out)):
        xy[t, :len(kept)] = torch.from_numpy(moved)
        labels[t, :len(kept)] = torch.from_numpy(kept)
    mask_out = None
    if masks is not None:
        mask_out = TF.resized_crop(torch.from_numpy(np.stack(masks))[:, None], *crop, size,
                                   interpolation=v2.InterpolationMode.NEAREST)[:, 0]
    if flip:
        images = images.flip(-1)
        mask_out = None if mask_out is None else mask_out.flip(-1)
    return images, xy, labels, mask_out


def _target_path(masks: Path, object_id: str, frame_index: int) -> Path:
    """Where an object's dense target on a frame lies: ``<masks>/<object_id>/<frame_id>.png``."""
    return masks / object_id / f"{frame_id(frame_index)}.png"


class PointClipDataset(Dataset):
    """Base: items are seeded per (seed, epoch, index); subclasses draw one clip in :meth:`_clip`."""

    def __init__(self, config: PointClipConfig, seed: int):
        self.config, self.seed, self.epoch = config, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> PointClip:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of {len(self)}")
        rng = self._rng(index)
        return self._select_reference(self._clip(index, rng), rng)

    def _select_reference(self, clip: PointClip, rng: np.random.Generator) -> PointClip:
        """Keep the reference points the config asks for (the others become ambiguous: no input)."""
        if self.config.reference_foreground is None:
            return clip
        labels = clip.labels.clone()
        foreground = np.flatnonzero(labels[0].numpy() == PointLabel.FOREGROUND)
        low, high = self.config.reference_foreground
        keep = rng.choice(foreground, size=min(int(rng.integers(low, high + 1)), len(foreground)), replace=False)
        dropped = np.setdiff1d(foreground, keep)
        background = np.flatnonzero(labels[0].numpy() == PointLabel.BACKGROUND)
        kept = int(rng.integers(len(background) + 1)) if self.config.reference_background else 0
        dropped = np.concatenate([dropped, rng.permutation(background)[kept:]])
        labels[0, torch.from_numpy(dropped).long()] = PointLabel.AMBIGUOUS
        return dataclasses.replace(clip, labels=labels)

    def _clip(self, index: int, rng: np.random.Generator) -> PointClip:
        raise NotImplementedError


def choose_clip_frames(references: Sequence[bool], num_frames: int, max_gap: int, rng: np.random.Generator
                       ) -> list[int] | None:
    """Positions (into an object's annotated frames) of a clip: a reference position where ``references`` is true,
    then ``num_frames - 1`` positions in one direction, consecutive ones 1..``max_gap`` apart where the frames allow
    it (closer when the clip would otherwise run out of frames). None when no reference has enough frames on
    either side."""
    count = len(references)
    options = [(r, d) for r in range(count) if references[r] for d in (1, -1)
               if (count - 1 - r if d == 1 else r) >= num_frames - 1]
    if not options:
        return None
    reference, direction = options[int(rng.integers(len(options)))]
    available = count - 1 - reference if direction == 1 else reference
    positions, offset = [reference], 0
    for k in range(num_frames - 1):
        remaining = num_frames - 2 - k  # frames still to place after this one
        step = int(rng.integers(1, min(max_gap, available - offset - remaining) + 1))
        offset += step
        positions.append(reference + direction * offset)
    return positions


@dataclass(frozen=True)
class _Object:
    annotation: ObjectAnnotation
    frames: tuple[int, ...]  # usable annotated frame indices (with a mask file in mask mode), increasing
    references: tuple[bool, ...]  # may the frame start a clip


class PointVOSClipDataset(PointClipDataset):
    """Clips of Point-VOS objects (PV-Oops, PV-Kinetics, PV-DAVIS, PV-YT training annotations).

    Args:
        objects: the annotations (:func:`vng.io.pointvos.read_pv_annotations`).
        videos: folder of ``<video_name>.mp4`` or ``<video_name>/`` frame folders, or the release's extracted
            frames ``<Dataset>/<split>/JPEGImages`` (``<object_id>/`` frame folders) (:func:`find_video`).
        masks: folder of dense targets ``<masks>/<object_id>/<frame_id>.png`` (0 background, > 0 object; the layout
            of :func:`vng.io.pointvos.pseudo_mask_path` under ``<Dataset>/pseudo_masks/<split>``), or None for
            points only. With masks, only frames that have one are used, and a reference needs a non-empty mask.

    Objects with fewer usable frames than a clip needs are left out (``skipped`` counts them).
    """

    def __init__(self, objects: Sequence[ObjectAnnotation], videos: str | os.PathLike, *,
                 masks: str | os.PathLike | None = None, config: PointClipConfig = PointClipConfig(), seed: int = 0):
        super().__init__(config, seed)
        self.videos, self.masks = Path(videos), None if masks is None else Path(masks)
        self.objects: list[_Object] = []
        for obj in objects:
            if obj.video_name is None:
                continue
            frames = [f for f in obj.frames
                      if self.masks is None or _target_path(self.masks, obj.object_id, f.frame_index).is_file()]
            references = tuple(bool((f.points.labels == PointLabel.FOREGROUND).any()) for f in frames)
            if choose_clip_frames(references, config.num_frames, config.max_gap, np.random.default_rng(0)):
                self.objects.append(_Object(obj, tuple(f.frame_index for f in frames), references))
        self.skipped = len(objects) - len(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def _clip(self, index: int, rng: np.random.Generator) -> PointClip:
        item = self.objects[index]
        obj = item.annotation
        by_frame = {f.frame_index: f.points for f in obj.frames}
        chosen = [item.frames[p] for p in choose_clip_frames(item.references, self.config.num_frames,
                                                              self.config.max_gap, rng)]
        video = find_video(self.videos, obj.video_name, object_id=obj.object_id)
        location = Location(str(video), record=obj.object_id)
        decoded = read_frames(video, chosen, location)
        frames = [decoded[i] for i in chosen]
        masks = None
        if self.masks is not None:
            masks = []
            for i in chosen:
                path = _target_path(self.masks, obj.object_id, i)
                mask = read_mask_png(path)
                if mask.shape != frames[0].shape[:2]:
                    raise FormatError(f"mask is {mask.shape}, the frame {frames[0].shape[:2]}", Location(str(path)))
                masks.append((mask > 0).astype(np.uint8))
        points = [(by_frame[i].xy, by_frame[i].labels) for i in chosen]
        images, xy, labels, mask_out = _augment(frames, points, masks, self.config, rng)
        return PointClip(images, xy, labels, mask_out, f"{obj.video_name}/{obj.object_id}", tuple(chosen))


class StaticPointClipDataset(PointClipDataset):
    """Static-image pre-training clips (:class:`~vng.datasets.static_clips.StaticClipDataset`, STCN's stage 0) with
    points: ``num_foreground`` points inside and ``num_background`` outside each frame's mask, ``min_distance``
    apart (as PV-DAVIS simulates them, Sec. 3.1); the masks come along for mask-supervised training."""

    def __init__(self, static: StaticClipDataset, *, config: PointClipConfig = PointClipConfig(), seed: int = 0):
        super().__init__(config, seed)
        self.static = static

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.static.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.static)

    def _clip(self, index: int, rng: np.random.Generator) -> PointClip:
        clip = self.static[index]
        config = self.config
        count = config.num_foreground + config.num_background
        xy = torch.zeros(len(clip.masks), count, 2)
        labels = torch.full((len(clip.masks), count), PointLabel.AMBIGUOUS, dtype=torch.int8)
        for t, mask in enumerate(clip.masks.numpy() > 0):
            fg = sample_points(mask, config.num_foreground, min_distance=config.min_distance, rng=rng)
            bg = sample_points(~mask, config.num_background, min_distance=config.min_distance, rng=rng, exclude=fg)
            xy[t, :len(fg) + len(bg)] = torch.from_numpy(np.concatenate([fg, bg]))
            labels[t, :len(fg)], labels[t, len(fg):len(fg) + len(bg)] = PointLabel.FOREGROUND, PointLabel.BACKGROUND
        return PointClip(clip.images, xy, labels, (clip.masks > 0).to(torch.uint8), f"static/{index}",
                         tuple(range(len(clip.masks))))


def point_density_ratio(objects: Sequence[ObjectAnnotation], masks: str | os.PathLike) -> float:
    """How much more densely the foreground is pointed at than the background, per pixel: the geometric mean over
    annotated frames of ``(n_fg / area_fg) / (n_bg / area_bg)``, the areas read from (pseudo-)masks.

    It is the ``background_weight`` that makes :func:`vng.losses.point_cross_entropy` unbiased (see there). Point
    supervision itself gives no areas; pseudo-masks (``vng pseudo-masks``) estimate them well enough for one scalar.

    Args:
        objects: the annotations.
        masks: ``<masks>/<object_id>/<frame_id>.png`` (the layout of :class:`PointVOSClipDataset`).

    Raises:
        ValueError: no frame has a mask with both classes and both foreground and background points.
    """
    masks = Path(masks)
    logs = []
    for obj in objects:
        for frame in obj.frames:
            path = _target_path(masks, obj.object_id, frame.frame_index)
            labels = frame.points.labels
            n_fg, n_bg = int((labels == PointLabel.FOREGROUND).sum()), int((labels == PointLabel.BACKGROUND).sum())
            if not (n_fg and n_bg and path.is_file()):
                continue
            area = float((read_mask_png(path) > 0).mean())
            if 0 < area < 1:
                logs.append(np.log(n_fg / area) - np.log(n_bg / (1 - area)))
    if not logs:
        raise ValueError(f"no annotated frame with foreground and background points has a two-class mask under {masks}")
    return float(np.exp(np.mean(logs)))
