"""Benchmark protocols on top of :mod:`vng.metrics`: DAVIS (semi-supervised, CSVs as the davis2017-evaluation
toolkit writes them), YouTube-VOS overall G, Video Narrative Grounding J&F and PV-Oops.

- :mod:`vng.benchmark.frames` — :func:`evaluate_frames` (one object's J and F on chosen frames), the shared piece;
- :mod:`vng.benchmark.davis` — :func:`evaluate_davis`, :func:`write_davis_csvs`;
- :mod:`vng.benchmark.ytvos` — :func:`overall_g`, :func:`ytvos_scores`;
- :mod:`vng.benchmark.grounding` — :func:`evaluate_vng`;
- :mod:`vng.benchmark.oops` — :func:`evaluate_pv_oops`.

Submodules are imported on use; nothing here runs at import.
"""
