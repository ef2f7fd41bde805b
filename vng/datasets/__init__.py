"""Dataset sources (DAVIS, YouTube-VOS, Point-VOS, VNG, synthetic) and their Hugging Face ``datasets`` conversion.

The loaders are importable from here::

    from vng.datasets import load_oops_vng, PointVOSVNGDataset

They are looked up on first use (PEP 562), so ``import vng.datasets`` stays light: ``datasets`` takes about 2 s to
import and the torch datasets about 8 s, which commands that need neither should not pay.
"""

from __future__ import annotations

import importlib

# name → the module that defines it
_EXPORTS = {
    **{name: "vng.datasets.hf" for name in ("convert_point_vos", "convert_vng", "load_oops_vng", "load_point_vos",
                                            "to_object_annotation")},
    **{name: "vng.datasets.vng_data" for name in ("COCOPNGDataset", "PointVOSVNGDataset", "VISVNGDataset")},
    **{name: "vng.datasets.point_clips" for name in ("PointVOSClipDataset", "StaticPointClipDataset")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
