"""Check how VidLN keyframe names map to decoded video frames: each keyframe image against the frame its name resolves
to (``vng.pipeline.objects.KeyframeNaming``) and every other decoded frame.

A keyframe matches when the frame it resolves to is the decoded frame closest to its image (mean absolute difference
in grey levels); the script prints, per keyframe, the resolved frame, the best frame and both differences. On the
OVIS sample every ``img_N`` is decoded frame N - 1 (1.8-2.6 against 11-23 for the neighbours), which is why OVIS
names count from 1. Run it on a new source before trusting its names:

    python benchmarks/keyframe_numbering.py ../shared/data/vidln/vidlns/OVIS_train_sample.jsonl \\
        --frames ../shared/data/vidln/frames --videos ../shared/data/vidln/videos
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from vng.io.common import FormatError, iter_jsonl
from vng.io.video import Video
from vng.io.vidln import find_keyframe
from vng.pipeline.objects import KeyframeNaming, source_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("narratives", type=Path)
    parser.add_argument("--frames", type=Path, required=True, help="keyframe images (<frames>/<dataset_id>/<video>/)")
    parser.add_argument("--videos", type=Path, required=True, help="videos as `vng annotate objects` finds them")
    parser.add_argument("--first", type=int, choices=(0, 1), default=None,
                        help="check this numbering instead of the default rules")
    args = parser.parse_args()
    naming = KeyframeNaming() if args.first is None else KeyframeNaming.counted_from(args.first)
    matched = total = 0
    for _, raw in iter_jsonl(args.narratives):
        dataset_id, video_id = raw["dataset_id"], raw["video_id"]
        try:
            path = source_video(args.videos, [f"{dataset_id}/{video_id}", video_id])
        except FormatError as error:
            print(f"{video_id}: skipped ({error})")
            continue
        frames = [frame.astype(np.float32) for frame in Video.open(path)]
        for name in raw["keyframe_names"]:
            image_path = find_keyframe(args.frames, dataset_id, video_id, name)
            if image_path is None:
                continue
            image = np.asarray(Image.open(image_path).convert("RGB"), np.float32)
            differences = [float(np.abs(image - frame).mean()) if frame.shape == image.shape else float("inf")
                           for frame in frames]
            resolved, best = naming.frame_index(name), int(np.argmin(differences))
            total += 1
            matched += resolved == best
            print(json.dumps({"video": video_id, "keyframe": name, "resolved": resolved, "best": best,
                              "difference": round(differences[resolved], 2) if resolved < len(frames) else None,
                              "best_difference": round(differences[best], 2)}))
    print(f"{matched} of {total} keyframes resolve to their closest decoded frame")


if __name__ == "__main__":
    main()
