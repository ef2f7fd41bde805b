"""The Point-VOS benchmark on DAVIS (Sec. 4.1, Tab. 3): segment from 1 / 2 / 5 / 10 reference points, score J&F.

    method = METHODS["flow"]()
    annotations = read_pv_annotations("pv_davis17_val.json")     # from `vng simulate-points --split val`
    result = run_point_benchmark(method, annotations, root="DAVIS", out="bench/flow")
    print(result.format_table())                                   # Tab. 3 layout: mean, 1-point, ..., 10-point

For each setting k and each sequence, one session of the method is started on the sequence's frames; every object
gets the first k foreground points of its reference frame (:func:`vng.protocol.reference_points`; the settings are
nested). The session runs over the video with :func:`vng.inference.propagate_video` (forward from the reference
frames, backward before them), so that every frame has a prediction. Objects are merged into one palette PNG per
frame, ``<out>/<k>-points/<sequence>/<frame>.png`` (values = mask ids of the object ids ``<sequence>_<mask id>``);
where objects overlap, the smallest mask on that frame wins (:func:`vng.inference.label_map`).

Scoring is the semi-supervised DAVIS protocol (:func:`vng.benchmark.davis.evaluate_davis`, first and last frames
excluded), with its CSVs in each setting's folder. An object whose reference frame r is not 0 is scored, as in the
semi-supervised protocol, only on the frames after r (r itself is the given frame, like frame 0 otherwise); on
PV-DAVIS all reference frames are 0 and this changes nothing. ``<out>/summary.csv`` holds J&F, J and F per setting
and their mean over the settings (the paper's "Mean" column), ``<out>/jf_vs_points.png`` plots J&F against the
number of points (as the paper's Fig. 2).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vng.benchmark.davis import DavisResults, evaluate_davis, write_davis_csvs
from vng.benchmark.frames import MeanScores, ObjectScores, run_jobs
from vng.inference import Method, write_segmentation
from vng.io.common import atomic_write
from vng.io.video import Video
from vng.protocol import SETTINGS, parse_object_key, reference_points
from vng.types import ObjectAnnotation

__all__ = ["SettingResult", "PointBenchmarkResult", "segment_sequence", "run_point_benchmark", "write_summary",
           "plot_j_and_f"]


@dataclass(frozen=True)
class SettingResult:
    """The scores of one setting: ``num_points`` reference points per object; per-object scores in ``scores``
    (DAVIS, or PV-Oops: :mod:`vng.benchmark.oops`). Both figures are means over objects of their mean J and F."""

    num_points: int
    scores: DavisResults | MeanScores

    @property
    def j(self) -> float:
        return float(np.mean([o.j_mean for o in self.scores.objects]))

    @property
    def f(self) -> float:
        return float(np.mean([o.f_mean for o in self.scores.objects]))

    @property
    def j_and_f(self) -> float:
        return (self.j + self.f) / 2


@dataclass(frozen=True)
class PointBenchmarkResult:
    """All settings of one run; figures are fractions in [0, 1] (the paper prints percent)."""

    method: str
    settings: tuple[SettingResult, ...]
    out: Path

    @property
    def j_and_f(self) -> float:
        """Mean J&F over the settings: the paper's "Mean" column."""
        return float(np.mean([s.j_and_f for s in self.settings]))

    @property
    def j(self) -> float:
        return float(np.mean([s.j for s in self.settings]))

    @property
    def f(self) -> float:
        return float(np.mean([s.f for s in self.settings]))

    @property
    def summary_csv(self) -> Path:
        return self.out / "summary.csv"

    @property
    def plot(self) -> Path:
        return self.out / "jf_vs_points.png"

    def format_table(self) -> str:
        """J&F in percent in the layout of Tab. 3 / 5: method, mean, then one column per setting."""
        header = ["Method", "Mean"] + [f"{s.num_points}-point" for s in self.settings]
        row = [self.method, f"{100 * self.j_and_f:.1f}"] + [f"{100 * s.j_and_f:.1f}" for s in self.settings]
        widths = [max(len(a), len(b)) for a, b in zip(header, row)]
        return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in (header, row))


def segment_sequence(method: Method, frames: str | os.PathLike, objects: Sequence[ObjectAnnotation],
                     num_points: int, out: str | os.PathLike) -> int:
    """Segment one sequence from the first ``num_points`` reference points of each object and write one palette
    PNG per frame, ``<out>/<frame name>.png`` (values: the mask ids of the objects ``<sequence>_<mask id>``).

    Returns:
        The number of frames written.
    """
    session = method.start(Video.open(frames))
    for obj in objects:
        frame_index, points = reference_points(obj, num_points)
        session.add_points(frame_index, parse_object_key(obj.object_id)[1], points)
    return write_segmentation(session, out)


@dataclass(frozen=True)
class _Job:
    method: Method
    frames: Path
    objects: tuple[ObjectAnnotation, ...]
    num_points: int
    out: Path


def _run(job: _Job) -> int:
    return segment_sequence(job.method, job.frames, job.objects, job.num_points, job.out)


def _from_reference(scores: DavisResults, reference_frames: dict[str, int]) -> DavisResults:
    """Keep, per object, only the frames after its reference frame (a no-op when all reference frames are 0)."""
    kept = []
    for obj in scores.objects:
        frames = np.asarray(obj.frames)
        keep = frames > reference_frames[obj.name]
        kept.append(obj if keep.all() else ObjectScores(obj.sequence, obj.object_id, tuple(frames[keep].tolist()),
                                                        obj.j[keep], obj.f[keep]))
    return DavisResults(tuple(kept))


def write_summary(result: PointBenchmarkResult) -> Path:
    """``summary.csv``: ``points, J&F, J, F`` per setting, then a ``mean`` row over the settings (fractions)."""
    with atomic_write(result.summary_csv, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["points", "J&F", "J", "F"])
        for setting in result.settings:
            writer.writerow([setting.num_points] + [f"{v:.6f}" for v in (setting.j_and_f, setting.j, setting.f)])
        writer.writerow(["mean"] + [f"{v:.6f}" for v in (result.j_and_f, result.j, result.f)])
    return result.summary_csv


def plot_j_and_f(result: PointBenchmarkResult) -> Path:
    """``jf_vs_points.png``: J&F (%) against the number of reference points, log-scaled x (as the paper's Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    points = [s.num_points for s in result.settings]
    figure, axes = pyplot.subplots(figsize=(4.5, 3.2), dpi=150)
    try:
        axes.plot(points, [100 * s.j_and_f for s in result.settings], "o-", label=result.method)
        axes.axhline(100 * result.j_and_f, linestyle="--", linewidth=1, color="grey",
                     label=f"mean {100 * result.j_and_f:.1f}")
        axes.set_xscale("log")
        axes.set_xticks(points, [str(p) for p in points])
        axes.minorticks_off()
        axes.set_xlabel("reference points per object")
        axes.set_ylabel("J&F (%)")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        with atomic_write(result.plot, "wb") as handle:
            figure.savefig(handle, format="png")
    finally:
        pyplot.close(figure)
    return result.plot


def run_point_benchmark(method: Method, annotations: Iterable[ObjectAnnotation], *, root: str | os.PathLike,
                        out: str | os.PathLike, settings: Sequence[int] = SETTINGS,
                        sequences: Sequence[str] | None = None, resolution: str = "480p", set_name: str = "val",
                        processes: int | None = None, progress: bool = True) -> PointBenchmarkResult:
    """Run the Point-VOS DAVIS benchmark (module docstring) and write predictions, CSVs, summary and plot.

    Args:
        method: e.g. ``build_method("flow")`` (:mod:`vng.methods`); pickled to worker processes.
        annotations: reference points, objects named ``<sequence>_<mask id>`` (``vng simulate-points --split val``).
        root: the DAVIS root (frames ``JPEGImages/<resolution>``, ground truth ``Annotations/<resolution>``).
        out: output folder; ``<out>/<k>-points/`` per setting.
        sequences: the sequences to run (default: those of ``annotations``, in file order).
        processes: worker processes over (sequence, setting) pairs; None → one per core; 1 → inline.

    Raises:
        ValueError: a sequence without annotations, a setting < 1, or ground-truth objects without reference points.
    """
    root, out = Path(root), Path(out)
    by_sequence: dict[str, list[ObjectAnnotation]] = {}
    for obj in annotations:
        by_sequence.setdefault(parse_object_key(obj.object_id)[0], []).append(obj)
    sequences = list(by_sequence) if sequences is None else list(sequences)
    missing = [s for s in sequences if s not in by_sequence]
    if missing:
        raise ValueError(f"no reference points for sequences {missing}")
    if not settings or min(settings) < 1:
        raise ValueError(f"settings must be point counts >= 1, got {list(settings)}")
    frames = {s: root / "JPEGImages" / resolution / s for s in sequences}
    jobs = [_Job(method, frames[s], tuple(by_sequence[s]), k, out / f"{k}-points" / s)
            for k in settings for s in sequences]
    costs = [len(Video.open(job.frames)) for job in jobs]
    run_jobs(_run, jobs, processes=processes, costs=costs, progress="segmenting" if progress else None, unit="frame")

    reference_frames = {obj.object_id: reference_points(obj, 1)[0] for s in sequences for obj in by_sequence[s]}
    results = []
    for k in settings:
        scores = evaluate_davis(root, out / f"{k}-points", sequences=sequences, processes=processes,
                                resolution=resolution)
        unprompted = sorted(o.name for o in scores.objects if o.name not in reference_frames)
        if unprompted:
            raise ValueError(f"ground-truth objects {unprompted} have no reference points")
        scores = _from_reference(scores, reference_frames)
        write_davis_csvs(scores, out / f"{k}-points", set_name)
        results.append(SettingResult(k, scores))
    result = PointBenchmarkResult(method.name, tuple(results), out)
    write_summary(result)
    plot_j_and_f(result)
    return result
