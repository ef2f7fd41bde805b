"""The segmenter propagator (``vng.methods.sam_propagator``) on DAVIS: J&F from 1 / 2 / 5 / 10 reference points (the
Point-VOS protocol), from the first frame's ground-truth mask (the classic semi-supervised setting), seconds per
frame, and overlays of the worst sequences to look at.

    vng simulate-points --dataset davis --root ../shared/data/davis2016-val --year 2016 --split val --out pv.json
    VNG_MODELS_DIR=... python benchmarks/sam_propagator_davis.py --davis ../shared/data/davis2016-val \\
        --points pv.json --out outputs/sam_propagator --embedding-cache outputs/embeddings --speed blackswan

Writes ``<out>/points/`` (``run_point_benchmark``: predictions, CSVs, ``summary.csv``), ``<out>/mask-init/``
(predictions and DAVIS CSVs), ``<out>/report.md`` (the tables below, per sequence) and
``<out>/overlays/<setting>/<sequence>/<frame>.png`` for the worst ``--overlays`` sequences of the 10-point and the
mask settings (prediction in orange, ground truth in blue, both: green). ``--embedding-cache`` keeps the encoder's
output on disk (float16, ~2 MiB a frame; 2.7 GiB for DAVIS-2016 val), so that the settings, the workers and reruns
encode each frame once. ``--speed SEQUENCE`` times one session on that sequence, first with no embedding cached
(encoder + everything else), then again with every embedding in memory (decoder, flow and memory only).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vng.benchmark.davis import evaluate_davis, object_ids, write_davis_csvs
from vng.benchmark.frames import run_jobs
from vng.benchmark.protocol import run_point_benchmark
from vng.inference import write_segmentation
from vng.io.davis import read_davis_split
from vng.io.masks import read_mask_png
from vng.io.pointvos import read_pv_annotations
from vng.io.video import Video
from vng.metrics import jaccard
from vng.methods.sam_propagator import SamPropagator, SamPropagatorConfig
from vng.visualize import draw_label, overlay_mask

PREDICTION, TRUTH, BOTH = (230, 159, 0), (86, 180, 233), (0, 158, 115)


@dataclass(frozen=True)
class MaskJob:
    method: SamPropagator
    frames: Path
    first_mask: Path
    out: Path


def first_frame_objects(path: Path) -> dict[int, np.ndarray]:
    """Object id -> (H, W) bool mask of a DAVIS first-frame annotation (the evaluation's own reading: 2016's 0/255
    is object 1, 2017's ids below the void value)."""
    labels = read_mask_png(path)
    ids, binary = object_ids(labels, path.parent.name, path)
    return {1: labels == 255} if binary else {object_id: labels == object_id for object_id in ids}


def segment_from_mask(job: MaskJob) -> int:
    """The semi-supervised setting: every object of the first annotated frame given as a mask; one palette PNG per
    frame. Returns the frames written."""
    session = job.method.start(Video.open(job.frames))
    for object_id, mask in first_frame_objects(job.first_mask).items():
        session.add_mask(0, object_id, mask)
    return write_segmentation(session, job.out)


def write_overlays(davis: Path, predictions: Path, sequence: str, out: Path, *, count: int = 5) -> None:
    """``count`` evenly spaced frames of a sequence with its prediction and ground truth drawn over them."""
    video = Video.open(davis / "JPEGImages" / "480p" / sequence)
    names = video.frame_names
    for index in np.linspace(0, len(video) - 1, count).round().astype(int):
        predicted = read_mask_png(predictions / sequence / f"{names[index]}.png") != 0
        truth = read_mask_png(davis / "Annotations" / "480p" / sequence / f"{names[index]}.png") != 0
        image = video[int(index)]
        image = overlay_mask(image, predicted & ~truth, PREDICTION)
        image = overlay_mask(image, truth & ~predicted, TRUTH)
        image = overlay_mask(image, truth & predicted, BOTH, alpha=0.4)
        iou = float(jaccard(truth, predicted)[0])
        image = draw_label(image, f"{sequence} frame {index}  IoU {iou:.2f}")
        path = out / sequence / f"{names[index]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)


def time_session(method: SamPropagator, davis: Path, sequence: str) -> float:
    """Seconds per frame of one forward pass from the first frame's ground-truth mask (frame reading included)."""
    video = Video.open(davis / "JPEGImages" / "480p" / sequence)
    session = method.start(video)
    annotation = davis / "Annotations" / "480p" / sequence / f"{video.frame_names[0]}.png"
    for object_id, mask in first_frame_objects(annotation).items():
        session.add_mask(0, object_id, mask)
    start = time.perf_counter()
    count = sum(1 for _ in session.propagate())
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", type=Path, required=True, help="DAVIS root (JPEGImages/480p, Annotations/480p)")
    parser.add_argument("--points", type=Path, required=True, help="reference points (vng simulate-points)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--year", default="2016")
    parser.add_argument("--sequences", help="comma-separated; default: the val split")
    parser.add_argument("--settings", default="1,2,5,10", help="point counts; empty: masks only")
    parser.add_argument("--no-mask-init", action="store_true", help="skip the first-frame mask setting")
    parser.add_argument("--embedding-cache", type=Path, help="folder for encoder outputs shared by runs and workers")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--num-threads", type=int, default=None, help="onnxruntime threads per process")
    parser.add_argument("--overlays", type=int, default=3, help="worst sequences to draw per setting")
    parser.add_argument("--speed", help="a sequence to time (seconds per frame, cached vs not)")
    args = parser.parse_args()

    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty: give a new folder (a run never mixes two runs' outputs)")
    sequences = (args.sequences.split(",") if args.sequences
                 else read_davis_split(args.davis, year=args.year, split="val"))
    config = SamPropagatorConfig(embedding_cache_dir=None if args.embedding_cache is None
                                 else str(args.embedding_cache))
    method = SamPropagator(config=config, num_threads=args.num_threads)
    lines = [f"# sam_propagator on DAVIS-{args.year} val ({len(sequences)} sequences)", ""]
    per_sequence: dict[str, dict[str, float]] = {s: {} for s in sequences}
    worst: dict[str, list[str]] = {}

    settings = [int(k) for k in args.settings.split(",") if k]
    if settings:
        annotations = read_pv_annotations(args.points)
        result = run_point_benchmark(method, annotations, root=args.davis, out=args.out / "points", settings=settings,
                                     sequences=sequences, processes=args.processes)
        lines += ["| points | J&F | J | F |", "|---|---|---|---|"]
        lines += [f"| {s.num_points} | {100 * s.j_and_f:.1f} | {100 * s.j:.1f} | {100 * s.f:.1f} |"
                  for s in result.settings]
        lines += [f"| mean | {100 * result.j_and_f:.1f} | {100 * result.j:.1f} | {100 * result.f:.1f} |", ""]
        for setting in result.settings:
            for obj in setting.scores.objects:
                per_sequence[obj.sequence][f"{setting.num_points} pt"] = (obj.j_mean + obj.f_mean) / 2
        last = result.settings[-1]
        ranked = sorted(last.scores.objects, key=lambda o: o.j_mean + o.f_mean)
        worst[f"{last.num_points}-points"] = [o.sequence for o in ranked[:args.overlays]]

    if not args.no_mask_init:
        out = args.out / "mask-init"
        jobs = [MaskJob(method, args.davis / "JPEGImages" / "480p" / s,
                        sorted((args.davis / "Annotations" / "480p" / s).glob("*.png"))[0], out / s) for s in sequences]
        run_jobs(segment_from_mask, jobs, processes=args.processes, costs=[len(Video.open(j.frames)) for j in jobs],
                 progress="segmenting", unit="frame")
        scores = evaluate_davis(args.davis, out, sequences=sequences, processes=args.processes)
        write_davis_csvs(scores, out, "val")
        lines += [f"First frame's ground-truth mask: J&F {100 * scores.j_and_f_mean:.1f} "
                  f"(J {100 * scores.j_mean:.1f}, F {100 * scores.f_mean:.1f})", ""]
        for obj in scores.objects:
            per_sequence[obj.sequence]["mask"] = (obj.j_mean + obj.f_mean) / 2
        ranked = sorted(scores.objects, key=lambda o: o.j_mean + o.f_mean)
        worst["mask-init"] = [o.sequence for o in ranked[:args.overlays]]

    columns = list(next(iter(per_sequence.values())))
    if columns:  # no table for a speed-only run
        lines += ["| sequence | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        lines += [f"| {s} | " + " | ".join(f"{100 * per_sequence[s][c]:.1f}" for c in columns) + " |"
                  for s in sequences]
        lines.append("")

    for setting, names in worst.items():
        folder = args.out / ("points" if setting != "mask-init" else "") / setting
        for sequence in names:
            write_overlays(args.davis, folder, sequence, args.out / "overlays" / setting)
        lines.append(f"Worst sequences, {setting}: {', '.join(names)} (overlays in overlays/{setting}/)")

    if args.speed:
        cold = time_session(SamPropagator(config=SamPropagatorConfig(embedding_cache_bytes=0),
                                          num_threads=args.num_threads), args.davis, args.speed)  # nothing cached
        warm_method = SamPropagator(config=SamPropagatorConfig(embedding_cache_bytes=2**31),
                                    num_threads=args.num_threads)
        time_session(warm_method, args.davis, args.speed)
        warm = time_session(warm_method, args.davis, args.speed)
        lines += ["", f"Seconds per frame on {args.speed} (one object, forward pass): {cold:.3f} with the encoder, "
                  f"{warm:.3f} with every embedding cached"]

    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    print(report.read_text())


if __name__ == "__main__":
    main()
