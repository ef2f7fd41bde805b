"""Models: one file per model, each a config dataclass + an ``nn.Module`` built from the config alone.

``MODELS`` maps a model name (as used in recipes and checkpoints) to its class; explicit, no registry.
"""

from vng.models.rf_vng import RFVNG, RFVNGConfig, RFVNGOutput
from vng.models.stcn import STCN, STCNConfig

__all__ = ["MODELS", "RFVNG", "RFVNGConfig", "RFVNGOutput", "STCN", "STCNConfig"]

MODELS = {"rf_vng": RFVNG, "stcn": STCN}
