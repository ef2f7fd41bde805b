"""Speed of the annotation pipeline's candidate sampling for one object (goal: <= 20 ms on one CPU core).

One object = 10 evenly spaced frames of 854x480 probability maps, 7 fg / 10 bg / 3 uncertain candidates per frame,
d = 20 px (Sec. 3.2). Run single-threaded:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 python benchmarks/point_sampling_speed.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vng.points import evenly_spaced_frames, sample_object_candidates


def object_probabilities(num_frames: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """(480, 854) float32 maps of a moving ellipse with a soft edge, like a propagated mask's probabilities, on the
    10 evenly spaced frames of a ``num_frames`` video that the pipeline keeps."""
    yy, xx = np.mgrid[:480, :854].astype(np.float32)
    maps = {}
    for t in evenly_spaced_frames(num_frames, 10):
        cx, cy = 200 + 10 * t, 240 + 40 * np.sin(t / 5)
        rx, ry = rng.uniform(60, 160), rng.uniform(40, 120)
        distance = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        maps[t] = np.clip((1.15 - distance) / 0.3, 0, 1)
    return maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50, help="objects to time (each: fresh maps)")
    parser.add_argument("--video-frames", type=int, default=30, help="frames per object video")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    videos = [object_probabilities(args.video_frames, rng) for _ in range(args.objects)]
    sample_object_candidates(videos[0], rng=rng)  # warm-up
    times = []
    for maps in videos:
        start = time.perf_counter()
        candidates = sample_object_candidates(maps, rng=rng)
        times.append(time.perf_counter() - start)
        assert len(candidates) == 200
    times_ms = 1000 * np.asarray(times)
    print(f"candidates for one object (10 frames of 854x480, 7/10/3, d=20): median {np.median(times_ms):.1f} ms, "
          f"p90 {np.percentile(times_ms, 90):.1f} ms over {args.objects} objects (goal <= 20 ms)")


if __name__ == "__main__":
    main()
