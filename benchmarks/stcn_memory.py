"""Memory of STCN / Point-STCN inference on a long video: flat with a capped memory bank, growing without.

Streams a procedural video (a textured square drifting over a noisy background, rendered on the fly: nothing on disk)
through :class:`vng.methods.stcn.STCNSession` from one point on frame 0, and reports per window of frames the
memory bank's bytes, the peak resident memory of the process so far (CPU: transient buffers such as the affinity
matrix included), the peak allocated GPU memory within the window (CUDA), and the frame rate::

    .venv/bin/python benchmarks/stcn_memory.py --frames 2000                        # tiny model, CPU
    .venv/bin/python benchmarks/stcn_memory.py --frames 2000 --max-memory-frames 0  # unbounded, for contrast
    python benchmarks/stcn_memory.py --model official --width 854 --height 480 --device cuda   # on a GPU

``--model official`` is the full STCN (ResNet-50 / ResNet-18, random weights: memory and speed do not depend on
the values). Resident memory counts everything the process holds (Python, torch, the allocator's caches), so
compare windows with each other, not with the bank's bytes: flat means no window needed more than the first.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch

from vng.methods.stcn import STCNInferenceConfig, STCNSession
from vng.io.video import RenderedVideo
from vng.models.stcn import STCN, STCNConfig


class DriftingSquareVideo(RenderedVideo):
    """Frames rendered on demand: a fixed noisy background and a textured square moving along a slow circle."""

    def __init__(self, num_frames: int, width: int, height: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self._width, self._height = width, height
        self._background = rng.integers(40, 120, (height, width, 3), dtype=np.uint8)
        self._side = max(min(width, height) // 4, 4)
        self._texture = rng.integers(150, 255, (self._side, self._side, 3), dtype=np.uint8)
        super().__init__(self._render_frame, num_frames, (width, height), name="drifting-square")

    def corner(self, index: int) -> tuple[int, int]:
        angle = 2 * np.pi * index / 200
        x = (self._width - self._side) * (0.5 + 0.4 * np.cos(angle))
        y = (self._height - self._side) * (0.5 + 0.4 * np.sin(angle))
        return int(x), int(y)

    def _render_frame(self, index: int) -> np.ndarray:
        frame = self._background.copy()
        x, y = self.corner(index)
        frame[y:y + self._side, x:x + self._side] = self._texture
        return frame


def peak_resident_mib() -> float:
    """The process's peak resident set size so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--model", choices=("tiny", "official"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--max-memory-frames", type=int, default=32, help="0 = unbounded")
    parser.add_argument("--memory-every", type=int, default=5)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--window", type=int, default=250, help="frames per reported window")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = STCN(STCNConfig.tiny() if args.model == "tiny" else STCNConfig()).to(device).eval()
    video = DriftingSquareVideo(args.frames, args.width, args.height)
    config = STCNInferenceConfig(size=None, top_k=args.top_k, memory_every=args.memory_every,
                                 max_memory_frames=args.max_memory_frames or None)
    session = STCNSession(model, video, config=config)
    x, y = video.corner(0)
    session.add_points(0, 1, np.array([[x + video._side // 2, y + video._side // 2]]))

    on_cuda = device.type == "cuda"
    print(f"STCN memory: {args.model} model, {args.frames} frames of {args.width}x{args.height} on "
          f"{torch.cuda.get_device_name(device) if on_cuda else 'CPU'} ({args.threads} threads), memory every "
          f"{args.memory_every}, cap {args.max_memory_frames or 'none'}, top-k {args.top_k}")
    print(f"{'frames':>11} {'bank frames':>11} {'bank MiB':>9} {'peak RSS MiB':>12} "
          f"{'peak GPU MiB':>12} {'FPS':>7}")
    if on_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    window_start, started = 0, time.perf_counter()
    for frame_index, _ in session.propagate():
        if (frame_index + 1) % args.window == 0 or frame_index == args.frames - 1:
            if on_cuda:
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - started
            gpu = f"{torch.cuda.max_memory_allocated(device) / 2 ** 20:12.1f}" if on_cuda else f"{'-':>12}"
            print(f"{window_start:>5}-{frame_index:<5} {len(session.memory_frames[1]):>11} "
                  f"{session.memory_nbytes / 2 ** 20:9.2f} {peak_resident_mib():12.1f} {gpu} "
                  f"{(frame_index + 1 - window_start) / elapsed:7.1f}")
            if on_cuda:
                torch.cuda.reset_peak_memory_stats(device)
            window_start, started = frame_index + 1, time.perf_counter()


if __name__ == "__main__":
    main(sys.argv[1:])
