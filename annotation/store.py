"""The tool's SQLite file: the verdict log, the leases, the annotators' tokens and what the tasks looked like.

The events table is the truth: every other state of the tool is derived from it (undo is an event, not a deletion).
A verdict is acknowledged only after its transaction is committed with ``synchronous=FULL`` in WAL mode, so neither a
killed server nor a power cut loses an acknowledged answer; a retried request finds its ``event_id`` (UNIQUE) and is
not stored twice.

Not thread-safe: one :class:`Store` per process, used under the caller's lock (:mod:`annotation.service`). A server
holds the file exclusively (``exclusive=True``: an advisory lock on ``<db>.lock``), because it keeps derived state in
memory; readers (export, status) open it ``read_only`` beside a running server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from vng.io.pointvos import LABEL_TO_STATUS, STATUS_TO_LABEL
from vng.io.tasks import task_record
from vng.types import VerdictAction, VerdictEvent, VerificationTask

__all__ = ["Lease", "Store", "StoreError", "task_fingerprint"]

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS annotators (name TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS tasks (object_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    object_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    action TEXT NOT NULL,
    candidate INTEGER,
    status TEXT,
    time_ms INTEGER NOT NULL,
    duration_ms INTEGER
);
CREATE TABLE IF NOT EXISTS leases (
    object_id TEXT PRIMARY KEY,        -- one annotator per object at a time
    annotator TEXT NOT NULL UNIQUE,    -- one object per annotator at a time
    expires_ms INTEGER NOT NULL
);
"""


class StoreError(RuntimeError):
    """The file cannot be used as asked: held by another server, another schema, or tasks that changed."""


@dataclass(frozen=True)
class Lease:
    """``annotator`` holds ``object_id`` until ``expires_ms`` (ms since the epoch)."""

    object_id: str
    annotator: str
    expires_ms: int


def task_fingerprint(task: VerificationTask) -> str:
    """What a verdict's candidate position refers to: a task whose candidates change under a log that names them by
    position would silently move every verdict to another point."""
    record = task_record(task)
    payload = json.dumps([record["frame_size"], record["candidates"]], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _event(row: tuple) -> VerdictEvent:
    event_id, object_id, annotator, action, candidate, status, time_ms, duration_ms = row
    return VerdictEvent(event_id=event_id, object_id=object_id, annotator=annotator, action=VerdictAction(action),
                        candidate=candidate, label=None if status is None else STATUS_TO_LABEL[status],
                        time_ms=time_ms, duration_ms=duration_ms)


_EVENT_COLUMNS = "event_id, object_id, annotator, action, candidate, status, time_ms, duration_ms"


class Store:
    """The SQLite file of one annotation campaign (module docstring)."""

    def __init__(self, path: str | os.PathLike, *, exclusive: bool = False, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock_file = None
        if read_only:
            if not self.path.is_file():
                raise StoreError(f"no verdict store at {self.path}")
            self._db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=5000")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if exclusive:
            self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock_file.close()
                raise StoreError(f"another server is using {self.path}") from None
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), never opened behind our back.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # WAL lets readers (export, status) work beside the server; FULL fsyncs the WAL at every commit, so an
        # acknowledged verdict survives a power cut, not only a killed process.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self.transaction():
            # one statement at a time: executescript() would commit behind the transaction
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            version = self.get_meta("schema_version")
            if version is None:
                self.set_meta("schema_version", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}, this tool reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside are committed together (and fsynced) at the end, or none of them on an error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- meta -------------------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # --- annotators -------------------------------------------------------------------------------------------------

    def annotators(self) -> dict[str, str]:
        """``{name: token}``, in name order."""
        return dict(self._db.execute("SELECT name, token FROM annotators ORDER BY name"))

    def set_annotator(self, name: str, token: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO annotators (name, token) VALUES (?, ?)", (name, token))

    # --- tasks ------------------------------------------------------------------------------------------------------

    def compare_tasks(self, tasks: list[VerificationTask]) -> None:
        """Refuse tasks whose candidates differ from those the log was recorded against (read-only: export and
        status check this too)."""
        known = dict(self._db.execute("SELECT object_id, fingerprint FROM tasks"))
        changed = [task.object_id for task in tasks
                   if task.object_id in known and known[task.object_id] != task_fingerprint(task)]
        if changed:
            raise StoreError(f"{len(changed)} task(s) have other candidates than when {self.path} was started "
                             f"(first: {changed[0]}); verdicts name candidates by position, so they would move to "
                             "other points: use a new --db for the new tasks")

    def check_tasks(self, tasks: list[VerificationTask]) -> None:
        """:meth:`compare_tasks`, then remember the fingerprints of tasks new to the store."""
        self.compare_tasks(tasks)
        known = {row[0] for row in self._db.execute("SELECT object_id FROM tasks")}
        self._db.executemany("INSERT INTO tasks (object_id, fingerprint) VALUES (?, ?)",
                             [(task.object_id, task_fingerprint(task)) for task in tasks
                              if task.object_id not in known])

    # --- events -----------------------------------------------------------------------------------------------------

    def add_event(self, event: VerdictEvent) -> None:
        self._db.execute(
            f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event.event_id, event.object_id, event.annotator, event.action.value, event.candidate,
             None if event.label is None else LABEL_TO_STATUS[int(event.label)], event.time_ms, event.duration_ms))

    def event(self, event_id: str) -> VerdictEvent | None:
        row = self._db.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else _event(row)

    def events(self) -> list[VerdictEvent]:
        """Every event, in the order they were stored."""
        return [_event(row) for row in self._db.execute(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY seq")]

    def count_events(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # --- leases -----------------------------------------------------------------------------------------------------

    def lease_of_object(self, object_id: str) -> Lease | None:
        row = self._db.execute("SELECT object_id, annotator, expires_ms FROM leases WHERE object_id = ?",
                               (object_id,)).fetchone()
        return None if row is None else Lease(*row)

    def lease_of_annotator(self, annotator: str) -> Lease | None:
        row = self._db.execute("SELECT object_id, annotator, expires_ms FROM leases WHERE annotator = ?",
                               (annotator,)).fetchone()
        return None if row is None else Lease(*row)

    def leases(self) -> dict[str, Lease]:
        return {row[0]: Lease(*row) for row in self._db.execute("SELECT object_id, annotator, expires_ms FROM leases")}

    def set_lease(self, lease: Lease) -> None:
        """Give ``lease.object_id`` to ``lease.annotator``, replacing the annotator's lease on another object and any
        (expired: the caller checks) lease of another annotator on this one."""
        self._db.execute("DELETE FROM leases WHERE annotator = ? OR object_id = ?", (lease.annotator, lease.object_id))
        self._db.execute("INSERT INTO leases (object_id, annotator, expires_ms) VALUES (?, ?, ?)",
                         (lease.object_id, lease.annotator, lease.expires_ms))

    def drop_lease(self, annotator: str) -> None:
        self._db.execute("DELETE FROM leases WHERE annotator = ?", (annotator,))
