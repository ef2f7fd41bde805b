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
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

__all__ = ["FormatError", "ReadReport", "Location", "atomic_write", "write_json", "write_jsonl", "read_json",
           "read_text", "iter_jsonl", "parse_json_line", "require", "read_records", "skip_or_raise", "sha256_of"]

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
            skip_or_raise(error, report)
        # validation inside the data model; OverflowError: a number too large for its array (int64 times, int8 labels)
        except (ValueError, TypeError, KeyError, OverflowError) as error:
            skip_or_raise(FormatError(str(error), location), report)


def skip_or_raise(error: FormatError, report: ReadReport | None) -> None:
    """Raise ``error``, or record it in ``report`` (the caller then skips the record)."""
    if report is None:
        raise error
    report.skipped.append(error)


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "object",
               type(None): "null"}


def require(record: Any, key: str, types: type | tuple[type, ...], location: Location, *,
            prefix: str = "", optional: bool = False, default: Any = None) -> Any:
    """``record[key]`` checked against ``types``; a FormatError naming the field when missing or mistyped.

    ``bool`` is never accepted where an ``int`` is asked for (JSON ``true`` is not a frame index), and a number is
    never NaN or infinite (Python's JSON reader turns ``NaN``, ``Infinity`` and ``1e999`` into such floats).
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
            try:
                return float(value)
            except OverflowError:
                raise FormatError(f"expected a finite number, got an integer of {len(str(value))} digits", location,
                                  name) from None
        expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        got = _TYPE_NAMES.get(type(value), type(value).__name__)
        raise FormatError(f"expected {expected}, got {got} ({_short(value)})", location, name)
    return _finite(value, location, name) if isinstance(value, float) else value


def _finite(value: float, location: Location, name: str) -> float:
    if not math.isfinite(value):
        raise FormatError(f"expected a finite number, got {value}", location, name)
    return value


def _short(value: Any) -> str:
    """At most 40 characters of ``repr(value)``, without building the repr of a huge or deeply nested value."""
    if isinstance(value, (list, dict)):
        return f"{type(value).__name__} of {len(value)}"
    return f"{value!r:.40}"


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """``object_pairs_hook``: plain ``json`` keeps the last of two equal keys, silently dropping a record."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return record


def _loads(text: str, location: Location) -> Any:
    """``json.loads`` with every way it fails as a FormatError at ``location`` (its line, else the error's line)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        where = location if location.line is not None else location.at(line=error.lineno)
        message = f"malformed JSON: {error.msg} (column {error.colno})"
    except _DuplicateKey as error:
        where, message = location, f"key {error.args[0]!r:.60} appears twice in one JSON object"
    except RecursionError:
        where, message = location, "JSON nested too deeply to read"
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        where, message = location, f"unreadable JSON: {error}"
    raise FormatError(message, where)


def _decode(data: bytes, location: Location) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); a FormatError naming line and column of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = data[:error.start]
        column = error.start - before.rfind(b"\n")
        where = location if location.line is not None else location.at(line=before.count(b"\n") + 1)
        raise FormatError(f"not UTF-8: byte 0x{data[error.start]:02x} at column {column}", where) from None


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise FormatError(f"cannot read the file: {error.strerror or error}", Location(path)) from None


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file; a FormatError naming the line of a byte that is not UTF-8, or why the file cannot be read."""
    path = str(path)
    return _decode(_read_bytes(path), Location(path))


def read_json(path: str | os.PathLike) -> Any:
    """Load a whole JSON file; malformed JSON, bytes that are not UTF-8, a key repeated within one object and
    nesting too deep to read become a FormatError with the line where known. A bad byte is a fault of the whole
    file, like malformed JSON: there is no record to skip before the file has been parsed."""
    path = str(path)
    return _loads(read_text(path), Location(path))


def iter_jsonl(path: str | os.PathLike, report: ReadReport | None = None) -> Iterator[tuple[Location, Any]]:
    """(location, parsed object) per non-empty line; a line that cannot be read (malformed JSON, bytes that are not
    UTF-8, nesting too deep, a repeated key) raises a FormatError or, with ``report``, is reported and skipped."""
    path = str(path)
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise FormatError(f"cannot read the file: {error.strerror or error}", Location(path)) from None
    with handle:
        for number, data in enumerate(handle, start=1):  # lines are split on bytes: one bad byte spoils one line
            location = Location(path, number)
            try:
                line = _decode(data, location)
                if not line.strip():
                    continue
                parsed = _loads(line, location)
            except FormatError as error:
                skip_or_raise(error, report)
                continue
            yield location, parsed


def parse_json_line(data: bytes, location: Location) -> Any:
    """One line's bytes parsed as :func:`iter_jsonl` parses them (UTF-8, no repeated key, bounded nesting), for
    readers that seek to lines by byte offset; a FormatError at ``location`` otherwise."""
    return _loads(_decode(data, location), location)


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
