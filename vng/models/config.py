"""What every model shares: a config JSON round trip that refuses unknown fields (a config of another model or
version fails loudly instead of being half-applied), and the checkpoint folder of ``save_pretrained``:
``config.json`` + ``model.safetensors``."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, TypeVar

from vng.io.common import atomic_write, write_json

__all__ = ["JSONConfig", "CONFIG_NAME", "WEIGHTS_NAME", "write_checkpoint", "read_checkpoint"]

C = TypeVar("C", bound="JSONConfig")


class JSONConfig:
    """Mixin for config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dictionary of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Inverse of :meth:`to_dict`; unknown keys raise."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**data)


CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def write_checkpoint(directory: str | os.PathLike, config: JSONConfig, state_dict: dict) -> Path:
    """``config.json`` + ``model.safetensors`` in ``directory``, each written atomically."""
    from safetensors.torch import save

    directory = Path(directory)
    write_json(directory / CONFIG_NAME, config.to_dict(), indent=2)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    with atomic_write(directory / WEIGHTS_NAME, "wb") as handle:
        handle.write(save(state, metadata={"format": "pt"}))
    return directory


def read_checkpoint(directory: str | os.PathLike, config_class: type[C]) -> tuple[C, dict]:
    """(config, state dict on the CPU) of a folder written by :func:`write_checkpoint`."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config = config_class.from_dict(json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8")))
    return config, load_file(directory / WEIGHTS_NAME)
