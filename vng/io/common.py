"""What every reader and writer shares: located errors, skip-and-report, atomic writes, JSON helpers.

Readers raise :class:`FormatError` naming the file, the line or record and the field. Passing a
:class:`ReadReport` instead makes them skip bad records and collect the errors::

    report = ReadReport()
    objects = read_pv_annotations("Oops/train.json", report=report)
    print(report.summary())

Writers go through :func:`atomic_write`: a temporary file next to the target, renamed over it when complete,
so a crash never leaves a partial file and never damages the file that was there.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

__all__ = ["FormatError", "ReadReport", "Location", "atomic_write", "write_json", "write_jsonl", "read_json",
           "iter_jsonl", "require", "read_records"]

T = TypeVar("T")


@dataclass(frozen=True)
class Location:
    """Where a record sits: file, 1-based line (JSONL) and/or record key or index."""

    path: str
    line: int | None = None
    record: str | int | None = None

    def at(self, *, line: int | None = None, record: str | int | None = None) -> Location:
        return Location(self.path, line if line is not None else self.line,
                        record if record is not None else self.record)

    def __str__(self) -> str:
        text = self.path
        if self.line is not None:
            text += f":{self.line}"
        if self.record is not None:
            text += f": record {self.record!r}"
        return text


class FormatError(ValueError):
    """Bad input, located: ``<file>[:<line>][: record <r>][: field <f>]: <what is wrong>``."""

    def __init__(self, message: str, location: Location | str, field: str | None = None):
        self.location = location if isinstance(location, Location) else Location(str(location))
        self.field = field
        self.reason = message
        where = str(self.location) + (f": field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")


@dataclass
class ReadReport:
    """Collects the records a reader skipped, with why."""

    skipped: list[FormatError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        if not self.skipped:
            return "no records skipped"
        lines = [f"{len(self.skipped)} record(s) skipped:"] + [f"  {error}" for error in self.skipped]
        return "\n".join(lines)


def read_records(items: Iterator[tuple[Location, Any]], parse: Callable[[Location, Any], T],
                 report: ReadReport | None) -> Iterator[T]:
    """Parse each located raw record; raise the first FormatError, or skip and report it when ``report`` is given."""
    for location, raw in items:
        try:
            yield parse(location, raw)
        except FormatError as error:
            if report is None:
                raise
            report.skipped.append(error)
        except (ValueError, TypeError, KeyError) as error:  # validation inside the data model
            located = FormatError(str(error), location)
            if report is None:
                raise located from error
            report.skipped.append(located)


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "object",
               type(None): "null"}


def require(record: Any, key: str, types: type | tuple[type, ...], location: Location, *,
            prefix: str = "", optional: bool = False, default: Any = None) -> Any:
    """``record[key]`` checked against ``types``; a FormatError naming the field when missing or mistyped.

    ``bool`` is never accepted where an ``int`` is asked for (JSON ``true`` is not a frame index).
    """
    name = f"{prefix}{key}"
    if not isinstance(record, dict):
        raise FormatError(f"expected a JSON object, got {_TYPE_NAMES.get(type(record), type(record).__name__)}",
                          location, prefix.rstrip(".") or None)
    if key not in record:
        if optional:
            return default
        raise FormatError("missing", location, name)
    value = record[key]
    types = types if isinstance(types, tuple) else (types,)
    wrong_bool = isinstance(value, bool) and bool not in types
    if wrong_bool or not isinstance(value, types):
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        got = _TYPE_NAMES.get(type(value), type(value).__name__)
        raise FormatError(f"expected {expected}, got {got} ({value!r:.40})", location, name)
    return value


def read_json(path: str | os.PathLike) -> Any:
    """Load a whole JSON file; malformed JSON becomes a FormatError with line and column."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise FormatError(f"malformed JSON: {error.msg} (column {error.colno})", Location(path, error.lineno)) from None


def iter_jsonl(path: str | os.PathLike, report: ReadReport | None = None) -> Iterator[tuple[Location, Any]]:
    """(location, parsed object) per non-empty line; malformed lines raise or are reported and skipped."""
    path = str(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            location = Location(path, number)
            try:
                yield location, json.loads(line)
            except json.JSONDecodeError as error:
                located = FormatError(f"malformed JSON: {error.msg} (column {error.colno})", location)
                if report is None:
                    raise located from None
                report.skipped.append(located)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, on error delete it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = None) -> None:
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=indent, ensure_ascii=False)
        handle.write("\n")


def write_jsonl(path: str | os.PathLike, records: Iterator[Any] | list[Any]) -> None:
    with atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False))
            handle.write("\n")
