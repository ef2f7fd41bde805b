"""A training-free segmenter: OpenCV GrabCut seeded from the prompt's points (:func:`vng.baselines.grabcut_from_points`).

No model files, so it runs anywhere — the sample-data recipes make their pseudo-masks with it, and it is a floor
for the learned backends. Foreground points are required; boxes and mask prompts are not used (GrabCut lays out its
own box from the points), and the score is NaN (GrabCut has no quality estimate)::

    segmenter = GrabCutSegmenter()
    mask, _ = segmenter.segment(image, [[120, 80], [130, 95]], [1, 1])
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vng.segmenters.base import ImageEmbedding, Prediction, Prompt, Segmenter, _check_image
from vng.types import Points

__all__ = ["GrabCutSegmenter"]


class GrabCutSegmenter(Segmenter):
    """GrabCut from points with the flow baseline's seeding (:class:`vng.baselines.FlowConfig`)."""

    def __init__(self, config=None) -> None:
        super().__init__()
        from vng.baselines import FlowConfig

        self.config = config or FlowConfig()

    def settings(self) -> dict:
        return {"grabcut": dataclasses.asdict(self.config)}

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        image = _check_image(image)
        return ImageEmbedding(image, image.shape[:2], image.shape[:2])

    def predict(self, embedding: ImageEmbedding, prompt: Prompt) -> Prediction:
        from vng.baselines import grabcut_from_points

        if not (prompt.labels == 1).any():
            raise ValueError("the grabcut segmenter needs at least one foreground point")
        mask = grabcut_from_points(embedding.features, Points(prompt.points, prompt.labels), self.config)
        return Prediction(mask, float("nan"), np.zeros((0, 0), np.float32))
