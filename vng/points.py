"""Point sampling (Sec. 3.1–3.2): random points in a mask at least ``min_distance`` apart, evenly spaced frames, and
the annotation pipeline's point candidates from a probability map. Pure functions; randomness is an argument.

Sampling is random sequential adsorption: uniformly random pixels of the region are accepted in turn when they keep
the distance to every accepted point (Euclidean, ``>= min_distance``). When the region is too small or thin for the
requested number ("we retain the maximum possible number of points under the constraint", Sec. 3.1), the sampler
runs a greedy maximal packing over every pixel of the region in several orders — a random one, row-major, and
boundary-first (nearest to the region's edge first, which packs thin shapes densely) — and keeps the largest set.
Maximum packing is NP-hard; this finds the optimum on the shapes where it matters (strips, small blobs) in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np

from vng.types import Candidate, CandidateKind

__all__ = ["sample_points", "evenly_spaced_frames", "CandidateConfig", "sample_region_candidates",
           "sample_candidates", "sample_object_candidates"]

# Dense regions are sampled by throwing darts at the whole frame (no pixel list needed): worth it above this share.
_DART_MIN_FRACTION = 0.15
_CHUNK = 2048


def _far_enough(point: np.ndarray, accepted: list[np.ndarray], min_distance: float) -> bool:
    if not accepted:
        return True
    distances = np.asarray(accepted) - point
    return bool(((distances * distances).sum(1) >= min_distance * min_distance).all())


def _greedy_packing(candidates: np.ndarray, num_points: int, min_distance: float,
                    existing: np.ndarray) -> np.ndarray:
    """Scan (M, 2) candidates in order, accept each that keeps ``min_distance`` to ``existing`` and accepted ones."""
    accepted: list[np.ndarray] = []
    d2 = min_distance * min_distance
    for start in range(0, len(candidates), _CHUNK):
        chunk = candidates[start:start + _CHUNK]
        blockers = np.concatenate([existing, np.asarray(accepted, np.float64).reshape(-1, 2)])
        if len(blockers):
            # Vectorised pre-filter: drop the chunk's candidates that earlier points already block.
            diff = chunk[:, None, :] - blockers[None, :, :]
            chunk = chunk[((diff * diff).sum(-1) >= d2).all(1)]
        in_chunk: list[np.ndarray] = []
        for point in chunk:
            if _far_enough(point, in_chunk, min_distance):
                in_chunk.append(point)
                accepted.append(point)
                if len(accepted) == num_points:
                    return np.asarray(accepted)
    return np.asarray(accepted, np.float64).reshape(-1, 2)


def _boundary_first(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    distance = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.argsort(distance[ys, xs], kind="stable")


def sample_points(mask: np.ndarray, num_points: int, *, min_distance: float = 20.0,
                  rng: np.random.Generator, exclude: np.ndarray | None = None, max_darts: int | None = None
                  ) -> np.ndarray:
    """Up to ``num_points`` random pixels of ``mask``, pairwise at least ``min_distance`` apart.

    Args:
        mask: (H, W) bool region to sample from.
        num_points: how many points are wanted; fewer come back only when no more fit (see the module docstring).
        min_distance: minimum Euclidean distance in px (paper: d = 20).
        rng: the only source of randomness; the same generator state gives the same points.
        exclude: (K, 2) points (x, y) that the new points must also keep ``min_distance`` from.
        max_darts: random draws before falling back to exhaustive packing (default ``30 * num_points + 200``).

    Returns:
        (N, 2) float32, (x, y) pixel coordinates (integers), N <= num_points, in the order they were chosen.
    """
    mask = np.asarray(mask, bool)
    existing = np.zeros((0, 2)) if exclude is None else np.asarray(exclude, np.float64).reshape(-1, 2)
    if num_points <= 0:
        return np.zeros((0, 2), np.float32)
    area = int(np.count_nonzero(mask))
    if area == 0:
        return np.zeros((0, 2), np.float32)
    height, width = mask.shape
    max_darts = 30 * num_points + 200 if max_darts is None else max_darts
    use_frame_darts = area >= _DART_MIN_FRACTION * mask.size
    pixels = None if use_frame_darts else np.flatnonzero(mask)
    accepted: list[np.ndarray] = []
    blockers = list(existing)
    thrown = 0
    while thrown < max_darts and len(accepted) < num_points:
        batch = min(4 * (num_points - len(accepted)) + 16, max_darts - thrown)
        thrown += batch
        if use_frame_darts:
            flat = rng.integers(0, mask.size, batch)
            flat = flat[mask.reshape(-1)[flat]]
        else:
            flat = pixels[rng.integers(0, len(pixels), batch)]
        for y, x in zip(*np.divmod(flat, width)):
            point = np.array([x, y], np.float64)
            if _far_enough(point, blockers, min_distance):
                accepted.append(point)
                blockers.append(point)
                if len(accepted) == num_points:
                    break
    if len(accepted) == num_points:
        return np.asarray(accepted, np.float32)
    # Fallback: the largest of several greedy maximal packings over every pixel of the region.
    ys, xs = np.nonzero(mask)
    candidates = np.stack([xs, ys], 1).astype(np.float64)
    best = np.asarray(accepted, np.float64).reshape(-1, 2)
    for order in (rng.permutation(len(candidates)), np.arange(len(candidates)), _boundary_first(mask, ys, xs)):
        packed = _greedy_packing(candidates[order], num_points, min_distance, existing)
        if len(packed) > len(best):
            best = packed
        if len(best) == num_points:
            break
    return best.astype(np.float32)


def evenly_spaced_frames(num_frames: int, count: int = 10) -> list[int]:
    """``count`` frame indices spread evenly over ``range(num_frames)``, first and last included (paper: 10 frames).

    All frames when the video has fewer than ``count``.
    """
    if num_frames <= 0:
        return []
    if num_frames <= count:
        return list(range(num_frames))
    if count == 1:
        return [0]
    return [int(i) for i in np.rint(np.linspace(0, num_frames - 1, count))]


@dataclass(frozen=True)
class CandidateConfig:
    """Point candidates per frame of the annotation pipeline (Sec. 3.2)."""

    num_foreground: int = 7  # from the high-probability region (Sec. 3.2)
    num_background: int = 10  # from the low-probability region (Sec. 3.2)
    num_uncertain: int = 3  # from the uncertain region: hard for the propagator, valuable once verified (Sec. 3.2)
    min_distance: float = 20.0  # px, between all candidates of a frame, across the three kinds (Sec. 3.1)
    # The paper gives no thresholds. 0.8 / 0.2 leave the band where a propagated mask's boundary is unsure to the
    # "uncertain" kind, while foreground/background candidates stay confidently inside/outside.
    high_threshold: float = 0.8  # p >= high → foreground region
    low_threshold: float = 0.2  # p <= low → background region
    num_frames: int = 10  # evenly spaced frames per object (Sec. 3.2)

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_threshold < self.high_threshold <= 1.0:
            raise ValueError(f"need 0 <= low_threshold < high_threshold <= 1, got {self.low_threshold}, "
                             f"{self.high_threshold}")


def sample_region_candidates(foreground: np.ndarray, background: np.ndarray, uncertain: np.ndarray,
                             frame_index: int, *, config: CandidateConfig = CandidateConfig(),
                             rng: np.random.Generator) -> list[Candidate]:
    """Candidates of one frame from its three (H, W) bool regions: ``config.num_foreground`` from ``foreground``
    first, then background, then uncertain, each kind keeping ``min_distance`` to every point chosen before."""
    chosen = np.zeros((0, 2), np.float32)
    candidates: list[Candidate] = []
    for region, count, kind in ((foreground, config.num_foreground, CandidateKind.FOREGROUND),
                                (background, config.num_background, CandidateKind.BACKGROUND),
                                (uncertain, config.num_uncertain, CandidateKind.UNCERTAIN)):
        points = sample_points(region, count, min_distance=config.min_distance, rng=rng, exclude=chosen)
        chosen = np.concatenate([chosen, points])
        candidates += [Candidate(frame_index, int(x), int(y), kind) for x, y in points]
    return candidates


def sample_candidates(probability: np.ndarray, frame_index: int, *, config: CandidateConfig = CandidateConfig(),
                      rng: np.random.Generator) -> list[Candidate]:
    """Candidates of one frame from an object's (H, W) foreground probability map: foreground where
    p >= ``high_threshold``, background where p <= ``low_threshold``, uncertain in between
    (:func:`sample_region_candidates`). They are proposals: an annotator's verdict makes them points."""
    probability = np.asarray(probability, np.float32)
    return sample_region_candidates(probability >= config.high_threshold, probability <= config.low_threshold,
                                    (probability > config.low_threshold) & (probability < config.high_threshold),
                                    frame_index, config=config, rng=rng)


def sample_object_candidates(probabilities: Mapping[int, np.ndarray], *, config: CandidateConfig = CandidateConfig(),
                             rng: np.random.Generator) -> list[Candidate]:
    """Candidates for one object from its (H, W) probability maps on the frames to sample, ``{frame index: map}``
    (Sec. 3.2: ``config.num_frames`` evenly spaced frames, :func:`evenly_spaced_frames`, known before propagation so
    that only their maps are kept), in verification order (all foreground, then background, then uncertain); up to
    200 with the paper's defaults. Frames are sampled in time order from the one ``rng``."""
    candidates = [c for t in sorted(probabilities)
                  for c in sample_candidates(probabilities[t], t, config=config, rng=rng)]
    return sorted(candidates, key=lambda candidate: candidate.verification_order)
