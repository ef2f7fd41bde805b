"""Stages 1-4 of the annotation pipeline in one call: sources and videos → verification tasks (Sec. 3.2, Fig. 4).

::

    reports = prepare("vidln/train.jsonl", "videos", WorkDir("work"), segmenter=build_segmenter("onnx-sam"),
                      method=build_method(DEFAULT_METHOD))
    collect_tasks(WorkDir("work"))       # work/tasks/tasks.jsonl, what the verification tool reads

Each stage runs over this process's share of the videos and skips the videos it finished before
(:mod:`vng.pipeline.workdir`); every stage is also a function of its own (``make_objects``, ``make_trace_masks``,
``make_propagation``, ``make_candidates``) that reads the previous stage's files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from vng.inference import Method
from vng.pipeline.candidates import make_candidates
from vng.pipeline.objects import ObjectConfig, make_objects
from vng.pipeline.propagation import make_propagation
from vng.pipeline.trace_masks import make_trace_masks
from vng.pipeline.workdir import StageReport, WorkDir
from vng.points import CandidateConfig
from vng.segmenters.base import Segmenter
from vng.segmenters.prompts import TracePromptConfig

__all__ = ["prepare"]


def prepare(source: str | os.PathLike, videos: str | os.PathLike, workdir: WorkDir, *, segmenter: Segmenter,
            method: Method, kind: Literal["narratives", "oops-qa"] = "narratives",
            objects: ObjectConfig = ObjectConfig(), prompt: TracePromptConfig = TracePromptConfig(),
            candidates: CandidateConfig = CandidateConfig(), seed: int = 0,
            overlays: str | os.PathLike | None = None, overwrite: bool = False, process_index: int = 0,
            num_processes: int = 1, progress: bool = False) -> list[StageReport]:
    """Run stages 1-4 for this process's share of the videos; one report per stage.

    Args:
        source, videos, kind, objects: stage 1 (:func:`~vng.pipeline.objects.make_objects`).
        segmenter, prompt: stage 2, keyframe masks from the traces.
        method: stage 3, propagation (:func:`vng.methods.build_method`).
        candidates: stage 4 (also how many frames stage 3 keeps).
        seed: seeds the points drawn along traces and the candidates, with each object's id.
        overlays: also write ``<overlays>/trace_masks/<key>/<id>.png`` and ``<overlays>/candidates/<key>/<id>.png``.
        overwrite: redo every stage of this process's videos, whatever earlier runs left in ``workdir``
            (:meth:`WorkDir.begin_stage`); without it a run with other settings is refused.
    """
    shard = {"process_index": process_index, "num_processes": num_processes, "progress": progress,
             "overwrite": overwrite}
    overlays = None if overlays is None else Path(overlays)
    return [
        make_objects(source, videos, workdir, kind=kind, config=objects, **shard),
        make_trace_masks(workdir, segmenter, config=prompt, seed=seed,
                         overlays=None if overlays is None else overlays / "trace_masks", **shard),
        make_propagation(workdir, method, num_frames=candidates.num_frames, **shard),
        make_candidates(workdir, config=candidates, seed=seed,
                        overlays=None if overlays is None else overlays / "candidates", **shard),
    ]
