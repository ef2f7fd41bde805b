"""Narrative grounding on a new video: each noun of a caption segmented in every frame by a trained RF-VNG.

    model = RFVNG.from_pretrained("outputs/vng_kinetics/final", device="cuda")
    tokenizer = load_tokenizer("outputs/vng_kinetics/final")
    result = ground_video(model, tokenizer, "clip.mp4", "A man in a red shirt throws a ball to the dog.",
                          ["man", "ball", "dog"], clip_length=36, size=360, device="cuda", out="grounded/")
    result.mean_scores                 # (N,) one per noun

CLI: ``vng ground VIDEO --caption "..." [--nouns man,ball,dog] --checkpoint DIR --out DIR``.

Nouns are marked by their character span in the caption, as in VNG: a noun given as text is its first whole-word
occurrence (case-insensitive); without nouns, spaCy finds them (:func:`vng.language.nouns.find_nouns`). All nouns are
grounded together, one clip of the same frames per noun.

The video (a file or a frame folder) is streamed: ``clip_length`` frames are read, resized so that the shorter side
is ``size``, grounded, written, and dropped, so memory does not grow with the video's length. Each chunk is one
RF-VNG clip: for each noun, the query sequence with the highest mean score over the chunk's frames gives its masks
(:meth:`vng.models.RFVNG.predict_masks`), so a long video's chunks are decided independently.

Outputs under ``out``::

    masks/<noun index>_<noun>/<frame>.png    0/1 palette PNGs at the video's size, one per frame
    overlay.mp4                              the frames with each noun's mask in its colour, a legend below
    summary.json                             video, caption, nouns with spans, frames, per noun its mean score and
                                             its mask's area (pixels) and score per frame
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from vng.io.common import write_json
from vng.io.masks import write_mask_png
from vng.io.video import Video, write_video
from vng.language.nouns import find_nouns
from vng.language.tokens import noun_token_mask
from vng.models.rf_vng import RFVNG
from vng.pixels import normalise_imagenet
from vng.types import frame_id
from vng.visualize import PALETTE, draw_label, overlay_mask

__all__ = ["GroundedNoun", "GroundedChunk", "GroundingResult", "resolve_nouns", "resolve_device", "stream_grounding",
           "ground_video"]


@dataclass(frozen=True)
class GroundedNoun:
    """A noun of the caption: ``text`` = ``caption[span[0]:span[1]]``; ``name`` = its output folder name."""

    index: int
    text: str
    span: tuple[int, int]

    @property
    def name(self) -> str:
        return f"{self.index}_{re.sub(r'[^0-9A-Za-z]+', '_', self.text).strip('_') or 'noun'}"


@dataclass(frozen=True, eq=False)
class GroundedChunk:
    """One chunk of T frames grounded for N nouns.

    Attributes:
        frame_names: (T,) frame stems (folder file stems; ``f"{i:06d}"`` for video files).
        frames: (T, H, W, 3) uint8 RGB at the video's size.
        masks: (N, T, H, W) bool, each noun's mask per frame.
        scores: (N, T) float32, the chosen query's "is the referred object" probability per frame.
    """

    frame_names: tuple[str, ...]
    frames: np.ndarray
    masks: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True, eq=False)
class GroundingResult:
    """What :func:`ground_video` wrote.

    Attributes:
        scores: (N, F) float32 per noun and frame; areas: (N, F) int64 mask pixels per noun and frame.
    """

    video: str
    caption: str
    nouns: tuple[GroundedNoun, ...]
    frame_names: tuple[str, ...]
    scores: np.ndarray
    areas: np.ndarray
    masks_dir: Path
    overlay: Path
    summary: Path

    @property
    def mean_scores(self) -> np.ndarray:
        """(N,) float32, each noun's mean score over the frames."""
        return self.scores.mean(1)

    def to_json(self) -> dict:
        return {"video": self.video, "caption": self.caption, "frames": list(self.frame_names),
                "nouns": [{"index": noun.index, "noun": noun.text, "span": list(noun.span),
                           "masks": f"masks/{noun.name}", "mean_score": float(self.mean_scores[noun.index]),
                           "scores": [round(float(s), 4) for s in self.scores[noun.index]],
                           "areas": [int(a) for a in self.areas[noun.index]]} for noun in self.nouns]}


def resolve_nouns(caption: str, nouns: Sequence[str] | None, *, nlp=None) -> tuple[GroundedNoun, ...]:
    """The nouns to ground with their spans: the first whole-word, case-insensitive occurrence of each given noun,
    or spaCy's nouns (:func:`vng.language.nouns.find_nouns`, ``nlp`` as there) when ``nouns`` is None.

    Raises:
        ValueError: a given noun does not occur in the caption (the message names it), or there are no nouns.
    """
    if nouns is None:
        spans = find_nouns(caption, nlp=nlp)
    else:
        spans = []
        for noun in nouns:
            word = noun.strip()
            match = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", caption, re.IGNORECASE) if word else None
            if match is None:
                raise ValueError(f"noun {noun!r} does not occur in the caption {caption!r}")
            spans.append(match.span())
    if not spans:
        raise ValueError(f"no nouns to ground in the caption {caption!r}: give them explicitly")
    return tuple(GroundedNoun(index, caption[start:end], (start, end)) for index, (start, end) in enumerate(spans))


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` → the GPU when there is one, else the CPU; anything else as ``torch.device``."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _frame_chunks(video: Video, clip_length: int) -> Iterator[tuple[tuple[str, ...], np.ndarray]]:
    """Consecutive chunks of at most ``clip_length`` frames, decoded one at a time: (names, (T, H, W, 3) uint8)."""
    folder_names = video.frame_names if video.path.is_dir() else None
    names, frames = [], []
    for index, frame in enumerate(video):
        names.append(folder_names[index] if folder_names is not None else frame_id(index))
        frames.append(frame)
        if len(frames) == clip_length:
            yield tuple(names), np.stack(frames)
            names, frames = [], []
    if frames:
        yield tuple(names), np.stack(frames)


@torch.no_grad()
def stream_grounding(model: RFVNG, tokenizer, video: Video, caption: str, nouns: Sequence[GroundedNoun], *,
                     clip_length: int, size: int, device: torch.device, max_length: int = 256
                     ) -> Iterator[GroundedChunk]:
    """Ground every noun in each chunk of ``clip_length`` frames, chunk after chunk (see the module docstring).

    Args:
        model: a trained RF-VNG, already on ``device``.
        tokenizer: its fast tokenizer (offset mappings mark the nouns).
        size: shorter side of the frames given to the model, in pixels.
        max_length: tokens kept of the caption; a noun beyond them raises ValueError.
    """
    model.eval()
    tokens = tokenizer(caption, truncation=True, max_length=max_length, return_offsets_mapping=True,
                       return_tensors="np")
    count = len(nouns)
    input_ids = torch.from_numpy(tokens["input_ids"]).long().expand(count, -1).to(device)
    attention_mask = torch.from_numpy(tokens["attention_mask"]).long().expand(count, -1).to(device)
    noun_mask = torch.from_numpy(np.stack([noun_token_mask(tokens["offset_mapping"][0], noun.span)
                                           for noun in nouns])).to(device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
                if device.type == "cuda" else contextlib.nullcontext())
    for names, frames in _frame_chunks(video, clip_length):
        height, width = frames.shape[1:3]
        pixels = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
        pixels = normalise_imagenet(TF.resize(pixels, [size], antialias=True).float().div(255))
        pixel_values = pixels[None].expand(count, -1, -1, -1, -1)
        pixel_mask = torch.ones(count, *pixels.shape[-2:], dtype=torch.bool, device=device)
        with autocast:
            output = model(pixel_values, pixel_mask, input_ids, attention_mask, noun_mask)
        probabilities = model.predict_masks(output).float()  # (N, T, h, w) at the model's input size
        best = output.pred_logits.sigmoid().mean(1).argmax(-1)  # the query predict_masks chose
        scores = output.pred_logits.sigmoid()[torch.arange(count, device=device), :, best].float()
        masks = np.stack([(F.interpolate(probabilities[:, t:t + 1], size=(height, width), mode="bilinear",
                                         align_corners=False)[:, 0] > 0.5).cpu().numpy()
                          for t in range(len(names))], 1)
        yield GroundedChunk(names, frames, masks, scores.cpu().numpy())


def _overlay(frame: np.ndarray, masks: np.ndarray, nouns: Sequence[GroundedNoun]) -> np.ndarray:
    """The frame with each noun's (H, W) mask filled and outlined in its palette colour, over a legend bar (so that
    no label hides the video); padded to an even size for mp4."""
    image = frame
    colours = [tuple(int(c) for c in PALETTE[noun.index % len(PALETTE)]) for noun in nouns]
    for mask, colour in zip(masks, colours):
        image = overlay_mask(image, mask, colour, alpha=0.5)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(image, contours, -1, colour, 1)
    scale = max(0.35, frame.shape[0] / 720)  # draw_label's own scale for this frame height
    line = round(36 * scale) + 4  # a label's box height at that scale, plus a gap
    legend = np.zeros((line * len(nouns), frame.shape[1], 3), np.uint8)
    for row, (noun, colour) in enumerate(zip(nouns, colours)):
        legend = draw_label(legend, noun.text, origin=(4, row * line), color=colour, scale=scale)
    image = np.concatenate([image, legend])
    return np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)), mode="edge")


def ground_video(model: RFVNG, tokenizer, video: str | os.PathLike | Video, caption: str,
                 nouns: Sequence[str] | None, *, clip_length: int, size: int, device: str | torch.device,
                 out: str | os.PathLike, max_length: int = 256, nlp=None) -> GroundingResult:
    """Ground ``nouns`` of ``caption`` in every frame of ``video`` and write masks, overlay and summary to ``out``.

    Args:
        model: a trained RF-VNG (moved to ``device`` here).
        tokenizer: its fast tokenizer (``load_tokenizer(checkpoint)``).
        video: a video file, a frame folder, or an opened :class:`~vng.io.video.Video`.
        nouns: nouns as they are written in the caption (first occurrence), or None for spaCy's.
        clip_length: frames per chunk: the model sees them together; memory grows with it, not with the video.
        size: shorter side of the frames given to the model (the size it was trained at, e.g. 360).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (autocast on CUDA).
        nlp: spaCy pipeline for finding nouns (default :func:`vng.language.nouns.load_spacy`).

    Raises:
        FormatError: the video cannot be opened or decoded (:mod:`vng.io.video`).
        ValueError: a noun is not in the caption, or is cut off by ``max_length``.
    """
    if clip_length < 1 or size < 1:
        raise ValueError(f"clip_length and size must be >= 1, got {clip_length}, {size}")
    video = video if isinstance(video, Video) else Video.open(video)
    grounded = resolve_nouns(caption, nouns, nlp=nlp)
    device = resolve_device(device)
    out = Path(out)
    masks_dir = out / "masks"
    names, scores, areas = [], [], []

    def overlay_frames() -> Iterator[np.ndarray]:
        chunks = stream_grounding(model.to(device), tokenizer, video, caption, grounded, clip_length=clip_length,
                                  size=size, device=device, max_length=max_length)
        for chunk in chunks:
            names.extend(chunk.frame_names)
            scores.append(chunk.scores)
            areas.append(chunk.masks.sum((2, 3)))
            for t, name in enumerate(chunk.frame_names):
                for noun in grounded:
                    write_mask_png(masks_dir / noun.name / f"{name}.png", chunk.masks[noun.index, t])
                yield _overlay(chunk.frames[t], chunk.masks[:, t], grounded)

    overlay = out / "overlay.mp4"
    write_video(overlay, overlay_frames(), fps=video.fps or 10.0)
    result = GroundingResult(str(video.path), caption, grounded, tuple(names), np.concatenate(scores, 1),
                             np.concatenate(areas, 1).astype(np.int64), masks_dir, overlay, out / "summary.json")
    write_json(result.summary, result.to_json(), indent=2)
    return result
