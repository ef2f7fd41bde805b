"""Outputs that never destroy inputs and never mix two runs.

- :func:`check_output` refuses an output path that names one of the command's inputs (writing it would replace
  the input) and an existing file where a folder is expected, or the reverse.
- A run manifest, ``<folder>/vng-run.json``, records what produced a folder of results: the command, its inputs
  (a file by path, size and SHA-256; a folder by its resolved path: hashing every video would cost more than the
  run) and its settings. :func:`begin_run` compares it with the run about to start: the same run resumes, another
  one is refused with what differs, unless ``overwrite`` (the caller then clears the old results). While a run is
  in progress the folder holds a visible ``INCOMPLETE`` file; :func:`finish_run` removes it, so a killed run's
  folder says so.
- :func:`remove_stale_temporaries` deletes the hidden temporary files that killed runs leave behind
  (:func:`vng.io.common.atomic_write` writes ``.<name>.<random>.tmp`` and renames it when complete).

Usage, as ``vng segment`` does::

    check_output(out, inputs=[video, checkpoint], folder=True)
    state = begin_run(out, "segment", inputs={"video": video}, settings={"frame": 3}, overwrite=False)
    ...  # write the results
    finish_run(out)
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from vng.io.common import FormatError, Location, read_json, sha256_of, write_json

__all__ = ["MANIFEST", "INCOMPLETE", "OutputConflict", "RunState", "check_output", "prepare_output", "describe_inputs",
           "begin_run", "start_folder_run", "finish_run", "read_manifest", "remove_stale_temporaries"]

MANIFEST = "vng-run.json"
INCOMPLETE = "INCOMPLETE"
# atomic_write's temporary files: "." + target name + "." + mkstemp's 8 random characters + ".tmp"
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")

RunState = Literal["new", "resume", "complete"]


class OutputConflict(ValueError):
    """An output that would destroy an input or mix two runs; the message says why and what to do."""


def _same_path(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # also through links and different spellings
    return a.resolve() == b.resolve()


def check_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None], folder: bool,
                 option: str = "--out") -> None:
    """Refuse ``path`` as an output (a folder when ``folder``, else a file) when it is one of ``inputs`` or an
    existing path of the other kind.

    Raises:
        OutputConflict naming the option, the path and the input.
    """
    path = Path(path)
    if folder and path.is_file():
        raise OutputConflict(f"{option} {path} is an existing file; a folder is expected here")
    if not folder and path.is_dir():
        raise OutputConflict(f"{option} {path} is an existing folder; a file is expected here")
    for given in inputs:
        if given is not None and _same_path(path, Path(given)):
            raise OutputConflict(f"{option} {path} is an input of this command ({given}): writing it would replace "
                                 "the input; choose another output")


def prepare_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None], folder: bool,
                   option: str = "--out") -> None:
    """:func:`check_output`, then delete the temporary files that killed runs left where this output goes: a
    file's own (``.<name>.<random>.tmp`` beside it), or every one below a folder."""
    check_output(path, inputs=inputs, folder=folder, option=option)
    path = Path(path)
    if folder:
        remove_stale_temporaries(path, recursive=True)
    else:
        remove_stale_temporaries(path.parent, name=path.name)


def describe_inputs(inputs: Mapping[str, str | os.PathLike | None]) -> dict[str, Any]:
    """``{name: description}`` of a run's inputs for its manifest: a file's resolved path, size and SHA-256 (so an
    edited file is a different input), a folder's resolved path; None stays None."""
    described: dict[str, Any] = {}
    for name, given in inputs.items():
        if given is None:
            described[name] = None
            continue
        path = Path(given).resolve()
        if path.is_file():
            described[name] = {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_of(path)}
        else:
            described[name] = {"path": str(path)}
    return described


@dataclass(frozen=True)
class _Run:
    command: str
    inputs: dict
    settings: dict

    def record(self, *, complete: bool) -> dict:
        return {"command": self.command, "inputs": self.inputs, "settings": self.settings, "complete": complete}

    def differences(self, previous: Mapping) -> list[str]:
        """What differs from a previous run's manifest, in words (empty when it is the same run)."""
        found = []
        if previous.get("command") != self.command:
            return [f"it was made by `vng {previous.get('command')}`"]
        old_inputs, old_settings = previous.get("inputs") or {}, previous.get("settings") or {}
        for name in sorted(set(old_inputs) | set(self.inputs)):
            if _identity(old_inputs.get(name)) != _identity(self.inputs.get(name)):
                found.append(f"input {name}: {_shown(old_inputs.get(name))} then, {_shown(self.inputs.get(name))} now")
        for name in sorted(set(old_settings) | set(self.settings)):
            if old_settings.get(name) != self.settings.get(name):
                found.append(f"setting {name}: {old_settings.get(name)!r:.80} then, {self.settings.get(name)!r:.80} "
                             "now")
        return found


def _identity(description: Any) -> Any:
    """What makes two inputs the same: a file's content (its hash), else the path."""
    if isinstance(description, dict):
        return description.get("sha256") or description.get("path")
    return description


def _shown(description: Any) -> str:
    if not isinstance(description, dict):
        return repr(description)
    if "sha256" in description:
        return f"{description['path']} (sha256 {description['sha256'][:12]}…)"
    return str(description.get("path"))


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of ``folder``, or None when it has none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    manifest = read_json(path)
    if not isinstance(manifest, dict):
        raise FormatError("expected a JSON object (a vng run manifest)", Location(str(path)))
    for key, kind in (("command", str), ("inputs", dict), ("settings", dict)):
        if not isinstance(manifest.get(key), kind):
            raise FormatError(f"not a vng run manifest: expected a {kind.__name__} (delete the file, or pass "
                              "--overwrite, to start again)", Location(str(path)), key)
    return manifest


def begin_run(folder: str | os.PathLike, command: str, *, inputs: Mapping[str, str | os.PathLike | None],
              settings: Mapping[str, Any], overwrite: bool = False, has_results: bool = False,
              record: bool = True) -> RunState:
    """Record the run about to write into ``folder``, after checking that it does not mix with an earlier one.

    Args:
        inputs: what the run reads, by name (:func:`describe_inputs`).
        settings: what else its results depend on, JSON-ready.
        overwrite: the caller clears the earlier results when told "new"; an earlier, different run is then no
            reason to refuse.
        has_results: the folder already holds results of this command's kind (e.g. mask PNGs). Without a manifest
            they come from no recorded run, and mixing them with this run's is refused unless ``overwrite``.
        record: False only checks (the other processes of a multi-process run; the main one records).

    Returns:
        "new" (nothing to keep: write everything), "resume" (the same run was interrupted: keep what it finished)
        or "complete" (the same run finished: nothing to do).

    Raises:
        OutputConflict saying what differs, and how to proceed.
    """
    folder = Path(folder)
    run = _Run(command, describe_inputs(inputs), json.loads(json.dumps(dict(settings))))
    if not overwrite:
        previous = read_manifest(folder)
        if previous is not None:
            differences = run.differences(previous)
            if differences:
                raise OutputConflict(f"{folder} holds the results of another run ({'; '.join(differences)}): pass "
                                     "--overwrite to replace them, or choose another output folder")
            if previous.get("complete"):
                return "complete"
            if record:
                _mark(folder, run, complete=False)
            return "resume"
        if has_results:
            raise OutputConflict(f"{folder} holds results from a run that left no record ({MANIFEST}): pass "
                                 "--overwrite to replace them, or choose another output folder")
    if record:
        _mark(folder, run, complete=False)
    return "new"


def _mark(folder: Path, run: _Run, *, complete: bool) -> None:
    marker = folder / INCOMPLETE
    if complete:
        write_json(folder / MANIFEST, run.record(complete=True), indent=1)
        marker.unlink(missing_ok=True)
        return
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text("a vng run is writing this folder, or was stopped before it finished: rerun the same command "
                      f"to resume it (see {MANIFEST})\n", encoding="utf-8")
    write_json(folder / MANIFEST, run.record(complete=False), indent=1)


def finish_run(folder: str | os.PathLike) -> None:
    """Mark the run recorded in ``folder`` complete (and remove its ``INCOMPLETE`` marker)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise FormatError(f"no run manifest to finish ({MANIFEST})", Location(str(folder)))
    _mark(folder, _Run(manifest["command"], manifest["inputs"], manifest["settings"]), complete=True)


def start_folder_run(folder: str | os.PathLike, command: str, *, inputs: Mapping[str, str | os.PathLike | None],
                     settings: Mapping[str, Any], results: str, overwrite: bool = False,
                     main_process: bool = True) -> RunState:
    """:func:`begin_run` for a folder whose results are the files matching the glob ``results`` (e.g. ``"*.png"``,
    ``"*/*.png"``): first the temporary files of killed runs below ``folder`` are deleted and, with ``overwrite``,
    the earlier results. ``main_process=False`` only checks (the other processes of a multi-process run)."""
    folder = Path(folder)

    protected = {Path(path).resolve() for path in inputs.values() if path is not None}  # an input inside the folder

    def found() -> list[Path]:
        return ([path for path in folder.glob(results) if path.is_file() and path.resolve() not in protected]
                if folder.is_dir() else [])

    if main_process:
        remove_stale_temporaries(folder, recursive=True)
        removed = found() if overwrite else []
        if removed:  # the record goes first: a run stopped while deleting leaves results with no record, never a
            (folder / MANIFEST).unlink(missing_ok=True)  # "complete" record over half of them
        for path in removed:
            path.unlink()
        for parent in sorted({path.parent for path in removed} - {folder}, reverse=True):  # e.g. <object id>/
            if not any(parent.iterdir()):
                parent.rmdir()
    return begin_run(folder, command, inputs=inputs, settings=settings, overwrite=overwrite,
                     has_results=bool(found()), record=main_process)


def remove_stale_temporaries(folder: str | os.PathLike, *, name: str | None = None,
                             recursive: bool = False) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes in ``folder`` (and below, when ``recursive``), or
    only those of the file ``name`` in it; returns what was deleted. Call it before a run starts writing, never
    while another process writes there."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{glob.escape(name)}.*.tmp" if name is not None else ".*.tmp"
    found = folder.rglob(pattern) if recursive else folder.glob(pattern)
    removed = [path for path in found if path.is_file() and _TEMPORARY.match(path.name)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
