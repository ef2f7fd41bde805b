"""Memory and speed of the segmenter propagator (``sam-propagator``) on a long real video: flat by construction (a
bounded memory per object, frames streamed), measured here.

A DAVIS sequence looped forward and back (ping-pong, so that motion stays smooth) to ``--frames`` frames, rendered on
demand (nothing decoded ahead), segmented from the first frame's true mask. Reports per window of frames the
process's resident memory and its peak so far, and the seconds per frame. With ``--embedding-cache`` (the folder of
``benchmarks/sam_propagator_davis.py``) the encoder's outputs come from disk, so the figure is the rest of the
method: flow, memory readout, decoder::

    VNG_MODELS_DIR=... python benchmarks/sam_propagator_memory.py --davis ../shared/data/davis2016-val \\
        --sequence blackswan --frames 2000 --embedding-cache outputs/embeddings

Resident memory counts everything the process holds (onnxruntime's arenas, the embedding cache up to its byte
bound), so compare windows with each other: flat means no later window needed more than the early ones.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np

from vng.io.davis import davis_mask_paths
from vng.io.masks import read_mask_png
from vng.io.video import RenderedVideo, Video
from vng.methods.sam_propagator import SamPropagator, SamPropagatorConfig


def resident_mib() -> float:
    """The process's current resident set size (Linux: /proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def ping_pong(length: int, index: int) -> int:
    """Frame ``index`` of a video of ``length`` frames played forward, backward, forward, ...: 0, 1, .., n-1, n-2, .."""
    if length == 1:
        return 0
    period = 2 * (length - 1)
    position = index % period
    return position if position < length else period - position


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, required=True, help="DAVIS root (JPEGImages/480p, Annotations/480p)")
    parser.add_argument("--sequence", default="blackswan")
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--window", type=int, default=250, help="frames per reported window")
    parser.add_argument("--embedding-cache", type=Path, help="encoder outputs on disk (shared with other runs)")
    parser.add_argument("--num-threads", type=int, default=None, help="onnxruntime threads")
    args = parser.parse_args()
    base = Video.open(args.davis / "JPEGImages" / "480p" / args.sequence)
    video = RenderedVideo(lambda index: base[ping_pong(len(base), index)], args.frames, base.size,
                          name=f"{args.sequence}-looped")
    config = SamPropagatorConfig(embedding_cache_dir=None if args.embedding_cache is None
                                 else str(args.embedding_cache))
    session = SamPropagator(config=config, num_threads=args.num_threads).start(video)
    session.add_mask(0, 1, read_mask_png(davis_mask_paths(args.davis, args.sequence)[0]) > 0)
    print(f"{args.sequence} looped to {args.frames} frames ({base.size[0]}x{base.size[1]}), one object\n")
    print("| frames | resident MiB | peak MiB so far | memory frames | s / frame |")
    print("|---|---|---|---|---|")
    start = time.perf_counter()
    area = []
    for done, (frame_index, masks) in enumerate(session.propagate(), start=1):
        area.append(float(np.mean(masks[1])))
        if done % args.window == 0 or done == args.frames:
            now = time.perf_counter()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"| {done - args.window + 1}-{done} | {resident_mib():.0f} | {peak:.0f} | "
                  f"{len(session.memory_frames[1])} | {(now - start) / args.window:.3f} |", flush=True)
            start = now
    print(f"\nmask area: mean {np.mean(area):.4f} of the frame, frames with an empty mask: "
          f"{sum(a == 0 for a in area)}")


if __name__ == "__main__":
    main()
