"""What annotators can do, and the rules that keep their answers whole: claim an object, judge its candidates in
order, undo, skip, move on.

Rules (each enforced here, for the page and for any other client alike):

- **Leases.** An annotator works on one object at a time, and an object is with one annotator at a time. Claiming
  gives the annotator the object they hold, else the first object (task order) they have started and not finished,
  else the first they have not touched — in both cases only objects no one else holds and fewer than
  ``annotators_per_object`` annotators have finished. A lease lasts ``lease_ms`` and every request renews it; when it
  runs out (the annotator left) another annotator may be given the object. Leaving the page shortens it to
  ``release_grace_ms``, so that a reload gets the same object back but a closed tab frees it at once.
- **Order.** Verdicts come in the task's candidate order (the paper's: foreground, background, uncertain): a verdict
  must name the annotator's current candidate, the first one without a verdict. Undo must name the candidate of the
  latest verdict still in force. Anything else is a stale page (another tab, a lost lease) and changes nothing.
- **Idempotence.** A request whose ``event_id`` is stored already is answered as if stored now when it is the same
  event, and refused when it is another one.

The state in memory (who answered what) is the replay of the store's events (:func:`vng.verification.replay`'s
rules), rebuilt when the service starts; it changes only after the event's transaction has committed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from vng.types import PointLabel, VerdictAction, VerdictEvent, VerificationTask
from vng.verification import AnnotatorState

from annotation.store import Lease, Store

__all__ = ["ServiceConfig", "ServiceError", "NotFound", "Conflict", "Invalid", "ObjectState", "Progress", "Assignment",
           "Recorded", "VerificationService"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class ServiceConfig:
    annotators_per_object: int = 1  # finished annotators an object needs (the paper: one)
    # The page renews its lease every 30 s while open, so 2 min survive a few missed heartbeats (a throttled
    # background tab sends one a minute) yet free an abandoned object soon.
    lease_ms: int = 120_000
    # Long enough for a reload to claim the object again, short enough that a closed tab frees it at once.
    release_grace_ms: int = 5_000

    def __post_init__(self) -> None:
        if self.annotators_per_object < 1:
            raise ValueError(f"annotators_per_object must be >= 1, got {self.annotators_per_object}")
        if self.lease_ms < 1 or self.release_grace_ms < 0:
            raise ValueError("lease_ms must be >= 1 and release_grace_ms >= 0")


class ServiceError(Exception):
    """A request the rules refuse; nothing was changed."""


class NotFound(ServiceError):
    """No such object (or frame)."""


class Conflict(ServiceError):
    """The request does not fit the current state: stale page, object held by another annotator, reused event id."""


class Invalid(ServiceError):
    """The request contradicts itself (a verdict without a label, an undo with one)."""


class _Answers(AnnotatorState):
    """One annotator's answers on one object (:class:`vng.verification.AnnotatorState`, the replay the export runs),
    and ``position``: the first candidate without a label, None when every one has one. A claim looks at every
    object, so nothing here may cost more than the event it applies. The service stores a verdict only on the
    current candidate, so a candidate is at most once among the verdicts in force."""

    def __init__(self, num_candidates: int) -> None:
        super().__init__()
        self.num_candidates = num_candidates
        self.position: int | None = 0 if num_candidates else None

    def apply(self, event: VerdictEvent) -> int | None:
        undone = super().apply(event)
        if event.action is VerdictAction.VERDICT:
            while self.position is not None and self.position in self.labels:
                self.position = self.position + 1 if self.position + 1 < self.num_candidates else None
        elif undone is not None:
            self.position = undone if self.position is None else min(self.position, undone)
        return undone

    @property
    def done(self) -> bool:
        return self.finished(self.num_candidates)


@dataclass(frozen=True)
class ObjectState:
    """Where an annotator stands on an object."""

    object_id: str
    num_candidates: int
    position: int | None  # the candidate to judge now; None when every candidate has a verdict
    judged: int  # candidates with a verdict in force
    last: int | None  # candidate of the latest verdict in force (what undo takes back)
    skipped: bool

    @property
    def finished(self) -> bool:
        return not self.skipped and self.position is None


@dataclass(frozen=True)
class Progress:
    """Over all objects that have candidates."""

    objects: int
    released: int  # finished by enough annotators
    finished_by_you: int
    skipped_by_you: int


@dataclass(frozen=True)
class Assignment:
    """The object an annotator works on (None: nothing left for them now), their state on it, and the progress."""

    task: VerificationTask | None
    state: ObjectState | None
    progress: Progress


@dataclass(frozen=True)
class Recorded:
    state: ObjectState
    duplicate: bool  # the event was stored before (a retry)


class VerificationService:
    """The tool's rules over a :class:`Store` (module docstring). Thread-safe: one lock around every operation."""

    def __init__(self, tasks: Iterable[VerificationTask], store: Store, *, config: ServiceConfig = ServiceConfig(),
                 clock: Callable[[], int] = _now_ms) -> None:
        self.tasks = {task.object_id: task for task in tasks}
        self.config = config
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: dict[str, dict[str, _Answers]] = {object_id: {} for object_id in self.tasks}
        with store.transaction():
            store.check_tasks(list(self.tasks.values()))
        self.unknown_events = 0  # events of objects that have no task (another task folder?): kept, not used
        for event in store.events():
            if event.object_id in self._answers:
                self._answers_of(event.object_id, event.annotator).apply(event)
            else:
                self.unknown_events += 1

    # --- reading ----------------------------------------------------------------------------------------------------

    def _task(self, object_id: str) -> VerificationTask:
        task = self.tasks.get(object_id)
        if task is None:
            raise NotFound(f"no object {object_id!r} among the tasks")
        return task

    def _answers_of(self, object_id: str, annotator: str) -> _Answers:
        answers = self._answers[object_id].get(annotator)
        if answers is None:
            answers = self._answers[object_id][annotator] = _Answers(len(self.tasks[object_id].candidates))
        return answers

    def _state(self, object_id: str, annotator: str) -> ObjectState:
        answers = self._answers[object_id].get(annotator) or _Answers(len(self.tasks[object_id].candidates))
        return ObjectState(object_id=object_id, num_candidates=answers.num_candidates, position=answers.position,
                           judged=len(answers.labels),
                           last=answers.verdicts[-1].candidate if answers.verdicts else None,
                           skipped=answers.skipped)

    def _finished_count(self, object_id: str) -> int:
        return sum(answers.done for answers in self._answers[object_id].values())

    def _progress(self, annotator: str) -> Progress:
        objects = [object_id for object_id, task in self.tasks.items() if task.candidates]
        needed = self.config.annotators_per_object
        mine = [answers for object_id in objects if (answers := self._answers[object_id].get(annotator))]
        return Progress(objects=len(objects),
                        released=sum(self._finished_count(object_id) >= needed for object_id in objects),
                        finished_by_you=sum(answers.done for answers in mine),
                        skipped_by_you=sum(answers.skipped for answers in mine))

    def state(self, annotator: str, object_id: str) -> ObjectState:
        self._task(object_id)
        with self._lock:
            return self._state(object_id, annotator)

    def progress(self, annotator: str) -> Progress:
        with self._lock:
            return self._progress(annotator)

    def events(self) -> list[VerdictEvent]:
        """A consistent snapshot of the whole log."""
        with self._lock:
            return self._store.events()

    # --- leases -----------------------------------------------------------------------------------------------------

    def _may_claim(self, annotator: str, object_id: str, leases: dict[str, Lease], now: int) -> int | None:
        """Rank of ``object_id`` for a claim by ``annotator`` (0: resume what they started, 1: fresh), None: not
        theirs to take."""
        task = self.tasks[object_id]
        if not task.candidates:
            return None
        lease = leases.get(object_id)
        if lease is not None and lease.annotator != annotator and lease.expires_ms > now:
            return None
        answers = self._answers[object_id].get(annotator)
        if answers is not None and (answers.skipped or answers.done):
            return None
        if self._finished_count(object_id) >= self.config.annotators_per_object:
            return None
        return 0 if answers is not None and answers.verdicts else 1

    def _claim(self, annotator: str) -> Assignment:
        now = self._clock()
        held = self._store.lease_of_annotator(annotator)
        chosen = None
        if held is not None and held.object_id in self.tasks:
            answers = self._answers[held.object_id].get(annotator)
            if answers is None or not answers.skipped:
                chosen = held.object_id
        if chosen is None:
            leases = self._store.leases()
            ranked = [(rank, order, object_id) for order, object_id in enumerate(self.tasks)
                      if (rank := self._may_claim(annotator, object_id, leases, now)) is not None]
            chosen = min(ranked)[2] if ranked else None
        with self._store.transaction():
            if chosen is None:
                self._store.drop_lease(annotator)
            else:
                self._store.set_lease(Lease(chosen, annotator, now + self.config.lease_ms))
        if chosen is None:
            return Assignment(None, None, self._progress(annotator))
        return Assignment(self.tasks[chosen], self._state(chosen, annotator), self._progress(annotator))

    def claim(self, annotator: str) -> Assignment:
        """The object the annotator works on now: the one they hold (even finished, so that they can undo), else the
        next one by the rules (module docstring)."""
        with self._lock:
            return self._claim(annotator)

    def next(self, annotator: str) -> Assignment:
        """Leave the current object (it must be finished or skipped) and claim another."""
        with self._lock:
            held = self._store.lease_of_annotator(annotator)
            if held is not None and held.object_id in self.tasks:
                state = self._state(held.object_id, annotator)
                if not (state.finished or state.skipped):
                    raise Conflict(f"object {held.object_id} has {state.num_candidates - state.judged} candidates "
                                   "left: judge them or skip the object first")
                with self._store.transaction():
                    self._store.drop_lease(annotator)
            return self._claim(annotator)

    def _hold(self, annotator: str, object_id: str, now: int) -> None:
        """Check that the annotator holds the object (their lease may have run out as long as no one took it) and
        renew the lease; call inside a transaction."""
        lease = self._store.lease_of_object(object_id)
        if lease is None or lease.annotator != annotator:
            raise Conflict(f"object {object_id} is not assigned to you (your lease ran out and it went to someone "
                           "else, or you work on another object in another tab): reload the page")
        self._store.set_lease(Lease(object_id, annotator, now + self.config.lease_ms))

    def heartbeat(self, annotator: str, object_id: str) -> None:
        """Renew the annotator's lease while their page is open."""
        self._task(object_id)
        with self._lock, self._store.transaction():
            self._hold(annotator, object_id, self._clock())

    def release(self, annotator: str, object_id: str) -> None:
        """The annotator's page closed: the lease runs out after ``release_grace_ms`` unless they come back."""
        with self._lock:
            lease = self._store.lease_of_object(object_id)
            if lease is None or lease.annotator != annotator:
                return
            expires = min(lease.expires_ms, self._clock() + self.config.release_grace_ms)
            with self._store.transaction():
                self._store.set_lease(Lease(object_id, annotator, expires))

    # --- answers ----------------------------------------------------------------------------------------------------

    def record(self, annotator: str, *, event_id: str, object_id: str, action: VerdictAction,
               candidate: int | None = None, label: PointLabel | None = None,
               duration_ms: int | None = None) -> Recorded:
        """Store one answer (module docstring) and return the annotator's new state on the object."""
        self._task(object_id)
        with self._lock:
            now = self._clock()
            try:
                event = VerdictEvent(event_id=event_id, object_id=object_id, annotator=annotator, action=action,
                                     candidate=candidate, label=label, time_ms=now, duration_ms=duration_ms)
            except (ValueError, TypeError) as error:
                raise Invalid(str(error)) from None
            stored = self._store.event(event_id)
            if stored is not None:
                if replace(stored, time_ms=now) != event:
                    raise Conflict(f"event id {event_id!r} was used for another event")
                return Recorded(self._state(object_id, annotator), duplicate=True)
            state = self._state(object_id, annotator)
            if state.skipped:
                raise Conflict(f"you skipped object {object_id}")
            if action is VerdictAction.VERDICT:
                if state.position is None:
                    raise Conflict(f"every candidate of object {object_id} has a verdict: undo, or go to the next "
                                   "object")
                if candidate != state.position:
                    raise Conflict(f"candidate {candidate} is not the current one ({state.position}): reload the page")
            elif action is VerdictAction.UNDO:
                if state.last is None:
                    raise Conflict(f"nothing to undo on object {object_id}")
                if candidate != state.last:
                    raise Conflict(f"undo names candidate {candidate}, but the latest verdict is on {state.last}: "
                                   "reload the page")
            with self._store.transaction():
                self._hold(annotator, object_id, now)
                self._store.add_event(event)
            self._answers_of(object_id, annotator).apply(event)
            return Recorded(self._state(object_id, annotator), duplicate=False)
