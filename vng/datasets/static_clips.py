"""Synthetic video clips from single images: STCN's static-image pre-training data (Point-VOS, Sec. 4: "we also start
from static image pre-training").

A clip is made from one image and its mask as in STCN's ``dataset/static_dataset.py``:

1. once per clip (the same for all frames): a random zoom (scale 0.8-1.5), horizontal flip, colour jitter and rare
   greyscale;
2. per frame: a random affine warp (rotation ±20°, scale 0.9-1.1, shear ±10°), resize of the shorter side to
   ``size`` and a random ``size`` x ``size`` crop, a slight colour jitter, and with probability 1/3 a random
   thin-plate-spline warp (:func:`thin_plate_grid`).

Pixels warped in from outside the image get the ImageNet mean colour and mask 0. The image/mask pairs go through
torchvision's ``v2`` transforms together (``tv_tensors.Image`` / ``tv_tensors.Mask``: masks are resampled
nearest-neighbour, so label ids survive). Randomness is seeded per clip and does not touch the caller's generator::

    clip = make_static_clip(image, mask, seed=0)       # image (H, W, 3) uint8, mask (H, W) bool or uint8 ids
    clip.images.shape, clip.masks.shape                # (3, 3, 384, 384) uint8, (3, 384, 384) uint8

Outputs stay uint8 (normalisation is the model side's job); Point-STCN samples its training points from the masks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from vng.io.images import load_image
from vng.io.video import FRAME_SUFFIXES

__all__ = ["StaticClipConfig", "StaticClip", "make_static_clip", "thin_plate_grid", "StaticClipDataset",
           "find_image_mask_pairs"]

VOID_ID = 255  # DAVIS's void label in palette masks
MEAN_COLOUR = (124, 116, 104)  # ImageNet mean in 0..255: the fill of STCN's static transforms


@dataclass(frozen=True)
class StaticClipConfig:
    """How clips are made from a still image; defaults are STCN's ``StaticTransformDataset``."""

    num_frames: int = 3  # STCN trains on 3-frame clips
    size: int = 384  # STCN's 384 x 384 training crops
    clip_scale: tuple[float, float] = (0.8, 1.5)  # per-clip zoom (all_im_dual_transform)
    flip_probability: float = 0.5  # per-clip horizontal flip
    degrees: float = 20.0  # per-frame rotation range (pair_im_dual_transform)
    frame_scale: tuple[float, float] = (0.9, 1.1)  # per-frame scale range
    shear: float = 10.0  # per-frame shear range, degrees
    clip_jitter: tuple[float, float, float, float] = (0.1, 0.05, 0.05, 0.05)  # brightness, contrast, saturation, hue
    greyscale_probability: float = 0.05  # per clip
    frame_jitter: tuple[float, float, float, float] = (0.1, 0.05, 0.05, 0.0)  # no hue change: "not realistic"
    thin_plate_probability: float = 0.33  # STCN warps a third of the frames: "too slow" to do all
    thin_plate_scale: float = 0.02  # std of the control points' displacement, fraction of the frame size
    thin_plate_grid: int = 5  # control points per side

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.size < 16 or self.thin_plate_grid < 2:
            raise ValueError("need num_frames >= 1, size >= 16 and thin_plate_grid >= 2")
        for name in ("flip_probability", "greyscale_probability", "thin_plate_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class StaticClip:
    """A synthetic clip.

    Attributes:
        images: (T, 3, size, size) uint8 RGB.
        masks: (T, size, size) uint8 label ids (0 = background; a bool input mask gives 0/1).
    """

    images: Tensor
    masks: Tensor


def thin_plate_grid(size: tuple[int, int], *, grid: int = 5, scale: float = 0.02) -> Tensor:
    """A random thin-plate-spline warp as a ``grid_sample`` grid (draws from torch's global generator).

    Control points on a ``grid`` x ``grid`` lattice over the frame move by a Gaussian of std ``scale`` x the frame
    size; the spline through them (``U(r) = r^2 log r^2`` plus an affine part) gives, for each output pixel, where
    to sample the input, so that the output at a moved control point shows the input at its original place.

    Args:
        size: (H, W) of the output.

    Returns:
        (1, H, W, 2) float32 sampling grid in [-1, 1] (``align_corners=False`` convention).
    """
    height, width = size
    lattice = torch.linspace(-1, 1, grid, dtype=torch.float64)
    source = torch.stack(torch.meshgrid(lattice, lattice, indexing="xy"), -1).reshape(-1, 2)  # (K, 2) x, y
    moved = source + torch.randn(source.shape, dtype=torch.float64) * 2 * scale  # [-1, 1] spans 2 sizes

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        squared = torch.cdist(a, b).pow(2)
        return torch.where(squared > 0, squared * torch.log(squared.clamp(min=1e-12)), torch.zeros_like(squared))

    count = len(moved)
    affine = torch.cat([torch.ones(count, 1, dtype=torch.float64), moved], 1)  # (K, 3)
    system = torch.zeros(count + 3, count + 3, dtype=torch.float64)
    system[:count, :count] = kernel(moved, moved)
    system[:count, count:] = affine
    system[count:, :count] = affine.T
    rhs = torch.cat([source, torch.zeros(3, 2, dtype=torch.float64)])
    parameters = torch.linalg.solve(system, rhs)  # (K + 3, 2): spline weights, then the affine part
    xs = (2 * torch.arange(width, dtype=torch.float64) + 1) / width - 1  # pixel centres
    ys = (2 * torch.arange(height, dtype=torch.float64) + 1) / height - 1
    pixels = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)  # (H W, 2)
    mapped = kernel(pixels, moved) @ parameters[:count] + torch.cat(
        [torch.ones(len(pixels), 1, dtype=torch.float64), pixels], 1) @ parameters[count:]
    return mapped.reshape(1, height, width, 2).float()


class _ClipTransforms:
    """The v2 pipelines of a config (module docstring)."""

    def __init__(self, config: StaticClipConfig):
        fill = {tv_tensors.Image: MEAN_COLOUR, tv_tensors.Mask: 0}
        self.clip = v2.Compose([
            v2.RandomAffine(degrees=0, scale=config.clip_scale, fill=fill),
            v2.RandomHorizontalFlip(config.flip_probability),
            v2.ColorJitter(*config.clip_jitter),
            v2.RandomGrayscale(config.greyscale_probability),
        ])
        self.frame = v2.Compose([
            # Bilinear: tensor affine warps have no bicubic mode (STCN's PIL pipeline used bicubic).
            v2.RandomAffine(degrees=config.degrees, scale=config.frame_scale, shear=config.shear,
                            interpolation=v2.InterpolationMode.BILINEAR, fill=fill),
            v2.Resize(config.size, interpolation=v2.InterpolationMode.BICUBIC),
            v2.RandomCrop(config.size, pad_if_needed=True, fill=fill),
            v2.ColorJitter(*config.frame_jitter),
        ])


def _thin_plate_warp(image: Tensor, mask: Tensor, config: StaticClipConfig) -> tuple[Tensor, Tensor]:
    grid = thin_plate_grid(tuple(image.shape[-2:]), grid=config.thin_plate_grid, scale=config.thin_plate_scale)
    # Outside the frame: the mean colour (zero padding of the mean-subtracted image) and mask 0.
    mean = torch.tensor(MEAN_COLOUR, dtype=torch.float32).view(1, 3, 1, 1)
    warped = F.grid_sample(image[None].float() - mean, grid, mode="bilinear", align_corners=False) + mean
    labels = F.grid_sample(mask[None, None].float(), grid, mode="nearest", align_corners=False)
    return warped[0].round().clamp(0, 255).to(torch.uint8), labels[0, 0].to(torch.uint8)


def make_static_clip(image: np.ndarray, mask: np.ndarray, *, config: StaticClipConfig = StaticClipConfig(),
                     seed: int) -> StaticClip:
    """A clip of ``config.num_frames`` warped copies of one image and its mask (module docstring).

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) bool, or uint8 label ids.
        seed: the same seed gives the same clip; the caller's torch generator is left untouched.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask is {mask.shape}, the image {image.shape[:2]}")
    transforms = _ClipTransforms(config)
    source = tv_tensors.Image(torch.from_numpy(np.require(image, requirements=["C_CONTIGUOUS", "WRITEABLE"]))
                              .permute(2, 0, 1))
    labels = tv_tensors.Mask(torch.from_numpy(mask.astype(np.uint8)))
    images, masks = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        source, labels = transforms.clip(source, labels)
        for _ in range(config.num_frames):
            frame, frame_mask = transforms.frame(source, labels)
            frame, frame_mask = frame.as_subclass(Tensor), frame_mask.as_subclass(Tensor)
            if torch.rand(()) < config.thin_plate_probability:
                frame, frame_mask = _thin_plate_warp(frame, frame_mask, config)
            images.append(frame)
            masks.append(frame_mask)
    return StaticClip(torch.stack(images), torch.stack(masks))


class StaticClipDataset(Dataset):
    """Clips from image/mask file pairs (e.g. the static segmentation sets STCN pre-trains on).

    Greyscale masks are binarised at 128 (STCN's saliency data); palette PNGs (DAVIS, YouTube-VOS) hold object
    ids, and a clip takes one of them (one object per clip, as STCN's static data; 255 is void and never chosen).
    Item ``i`` of epoch ``e`` is seeded with ``(seed, e, i)``: reproducible, and different each epoch
    (:meth:`set_epoch`).
    """

    def __init__(self, pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]], *,
                 config: StaticClipConfig = StaticClipConfig(), seed: int = 0):
        self.pairs = list(pairs)
        self.config = config
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> StaticClip:
        image_path, mask_path = self.pairs[index]
        image = np.asarray(load_image(image_path, what="frame").convert("RGB"))
        file = load_image(mask_path, what="mask")
        # palette PNGs (DAVIS, YouTube-VOS, pseudo-masks) hold object ids; greyscale saliency masks 0..255
        ids = np.asarray(file) if file.mode == "P" else (np.asarray(file.convert("L")) >= 128).astype(np.uint8)
        seed = int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])
        objects = np.unique(ids[(ids > 0) & (ids != VOID_ID)])
        chosen = objects[np.random.default_rng(seed).integers(len(objects))] if len(objects) else 1
        return make_static_clip(image, ids == chosen, config=self.config, seed=seed)


def find_image_mask_pairs(images: str | os.PathLike, masks: str | os.PathLike, *,
                          subset: str | os.PathLike | None = None, every: int = 1) -> list[tuple[Path, Path]]:
    """(image, mask) files of a static image set: every ``<masks>/<relative>/<name>.png`` with its image
    ``<images>/<relative>/<name>.{jpg,jpeg,png}`` (STCN's static sets, or a DAVIS / YouTube-VOS tree).

    Args:
        subset: a text file naming the top-level folders to keep (whitespace-separated), e.g. a DAVIS ImageSets
            list; default every folder.
        every: keep every ``every``-th mask of each folder (sorted).

    Raises:
        FileNotFoundError: a mask without its image, or no masks at all.
    """
    images, masks = Path(images), Path(masks)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    folders = None if subset is None else set(Path(subset).read_text(encoding="utf-8").split())
    pairs = []
    for folder in sorted({path.parent for path in masks.rglob("*.png")}):
        relative = folder.relative_to(masks)
        if folders is not None and (not relative.parts or relative.parts[0] not in folders):
            continue
        for mask in sorted(folder.glob("*.png"))[::every]:
            image = next((images / relative / (mask.stem + suffix) for suffix in FRAME_SUFFIXES
                          if (images / relative / (mask.stem + suffix)).is_file()), None)
            if image is None:
                raise FileNotFoundError(f"no image for mask {mask} under {images / relative}")
            pairs.append((image, mask))
    if not pairs:
        raise FileNotFoundError(f"no masks found under {masks}")
    return pairs
