"""What every model config shares: a JSON round trip (``config.json`` of ``save_pretrained``) that refuses unknown
fields, so a config of another model or version fails loudly instead of being half-applied."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["JSONConfig"]

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
