"""The annotation pipeline (Sec. 3.2, Fig. 4), one module per stage, exchanging typed records through files:

- :mod:`~vng.pipeline.objects` — narratives (or Oops-QA questions) + videos → objects, each localised by one trace;
- :mod:`~vng.pipeline.trace_masks` — each trace → a pseudo-mask on its keyframe (promptable segmenter);
- :mod:`~vng.pipeline.propagation` — keyframe masks propagated both ways, the sampling frames' maps kept;
- :mod:`~vng.pipeline.candidates` — point candidates → verification tasks (the task folder of :mod:`vng.io.tasks`);
- :mod:`~vng.pipeline.simulation` — the simulated annotator against dense masks, and the candidates' precision;
- :mod:`~vng.pipeline.release` — verdicts → the Point-VOS release;
- :mod:`~vng.pipeline.prepare` runs stages 1-4; :mod:`~vng.pipeline.workdir` is what they share (the work folder,
  sharding, resuming, reports).

:mod:`~vng.pipeline.noun_objects` and :mod:`~vng.pipeline.pseudo_masks` hold ``vng parse-narratives``
and ``vng pseudo-masks`` (every noun as its own object, from keyframes alone; pseudo-masks from released points).
"""
