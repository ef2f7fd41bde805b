"""``oracle``: the ground truth as predictions — a check of the benchmark protocol end to end (it must score J&F
1.0), not a method. Each object is the annotated object under its foreground prompt, read from the ``Annotations``
folder beside the video's frames (DAVIS / YouTube-VOS layouts)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vng.inference import ObjectPrompt, PromptedSession, SegmentationSession
from vng.io.masks import read_mask_png
from vng.io.video import Video
from vng.types import Points

__all__ = ["OracleMethod", "ground_truth_folder"]


def ground_truth_folder(frames: Path) -> Path:
    """The annotation folder beside a DAVIS / YouTube-VOS frame folder: the last ``JPEGImages`` component of the
    path becomes ``Annotations`` (``<root>/JPEGImages/480p/dog`` → ``<root>/Annotations/480p/dog``)."""
    parts = list(Path(frames).parts)
    if "JPEGImages" not in parts:
        raise ValueError(f"{frames} is not inside a JPEGImages folder: no annotations to find")
    parts[len(parts) - 1 - parts[::-1].index("JPEGImages")] = "Annotations"
    return Path(*parts)


class _OracleSession(PromptedSession):
    def __init__(self, video: Video, annotations: Path):
        super().__init__(video)
        self._annotations = annotations
        self._labels: dict[int, int] = {}  # object id → its value in the annotation PNGs

    def _read(self, frame_index: int) -> np.ndarray:
        path = self._annotations / f"{self.video.frame_names[frame_index]}.png"
        if not path.is_file():  # sparsely annotated datasets: nothing known on this frame
            width, height = self.video.size
            return np.zeros((height, width), np.uint8)
        return read_mask_png(path)

    def _label_under(self, frame_index: int, prompt: ObjectPrompt) -> int:
        """The annotation value most of the prompt's foreground falls on (DAVIS-2016: 255, DAVIS-2017: the id)."""
        labels = self._read(frame_index)
        if isinstance(prompt, Points):
            xy = np.floor(prompt.foreground.xy).astype(int)  # a point lies in pixel (floor(x), floor(y))
            values = labels[np.clip(xy[:, 1], 0, labels.shape[0] - 1), np.clip(xy[:, 0], 0, labels.shape[1] - 1)]
        else:
            values = labels[prompt]
        values = values[values != 0]
        return int(np.bincount(values).argmax()) if len(values) else 0

    def allow_overlap(self) -> bool:
        return True  # each object is read from the annotations on its own

    def propagate(self, *, reverse: bool = False) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        for frame_index in self._frame_order(reverse):
            for object_id, prompt in self._prompts.get(frame_index, {}).items():
                self._labels[object_id] = self._label_under(frame_index, prompt)
            if self._labels:
                labels = self._read(frame_index)
                yield frame_index, {object_id: (labels == label) & (label != 0)
                                    for object_id, label in self._labels.items()}


@dataclass(frozen=True)
class OracleMethod:
    """Ground truth as predictions: each object is the annotated object under its foreground prompt, read from the
    ``Annotations`` folder beside the video's frames (:func:`ground_truth_folder`). Must score J&F 1.0."""

    name: str = "oracle"

    def start(self, video: Video) -> SegmentationSession:
        return _OracleSession(video, ground_truth_folder(video.path))
