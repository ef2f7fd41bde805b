"""The store and its rules without a server: idempotence, order, undo, skip, leases, several annotators, restarts,
export."""

import json
import random
from dataclasses import replace

import pytest

from annotation.export import export
from annotation.service import Conflict, Invalid, NotFound, ServiceConfig, VerificationService
from annotation.store import Store, StoreError
from annotation.tokens import TokenTable, ensure_annotators, read_tokens_file
from vng.io.pointvos import LABEL_TO_STATUS, read_pv_annotations
from vng.io.tasks import read_tasks, read_verdicts
from vng.types import PointLabel, VerdictAction
from vng.verification import replay

A, R, M = PointLabel.FOREGROUND, PointLabel.BACKGROUND, PointLabel.AMBIGUOUS
VERDICT, UNDO, SKIP = VerdictAction.VERDICT, VerdictAction.UNDO, VerdictAction.SKIP


@pytest.fixture
def tasks(task_folder):
    return read_tasks(task_folder)


class Campaign:
    """A service on a store file, reopened at will as a restarted server would."""

    def __init__(self, tasks, path, clock, **config):
        self.tasks, self.path, self.config, self.clock = tasks, path, ServiceConfig(**config), clock
        self.ids = 0
        self.open()

    def open(self):
        self.store = Store(self.path, exclusive=True)
        self.service = VerificationService(self.tasks, self.store, config=self.config, clock=self.clock)

    def restart(self):
        self.store.close()
        self.open()

    def answer(self, annotator, object_id, action=VERDICT, candidate=None, label=None, *, event_id=None,
               duration_ms=None):
        if event_id is None:
            self.ids += 1
            event_id = f"event-{self.ids:04d}"
        return self.service.record(annotator, event_id=event_id, object_id=object_id, action=action,
                                   candidate=candidate, label=label, duration_ms=duration_ms)

    def finish(self, annotator, labels=None):
        """Claim, answer every candidate (``labels`` cycled), return the object id."""
        assignment = self.service.claim(annotator)
        object_id = assignment.task.object_id
        labels = labels or [A, R, M]
        for position in range(assignment.state.position, len(assignment.task.candidates)):
            self.answer(annotator, object_id, candidate=position, label=labels[position % len(labels)],
                        duration_ms=900)
        return object_id

    def stored(self):
        return self.store.events()


@pytest.fixture
def campaign(tasks, tmp_path, clock):
    running = Campaign(tasks, tmp_path / "verdicts.sqlite", clock)
    yield running
    running.store.close()


def test_a_retried_answer_is_stored_once(campaign):
    object_id = campaign.service.claim("alice").task.object_id
    first = campaign.answer("alice", object_id, candidate=0, label=A, event_id="retry-0001", duration_ms=800)
    again = campaign.answer("alice", object_id, candidate=0, label=A, event_id="retry-0001", duration_ms=800)
    assert not first.duplicate and again.duplicate and again.state == first.state
    assert [e.event_id for e in campaign.stored()] == ["retry-0001"]
    # The same id for another answer is refused, and changes nothing.
    with pytest.raises(Conflict, match="used for another event"):
        campaign.answer("alice", object_id, candidate=0, label=R, event_id="retry-0001", duration_ms=800)
    campaign.restart()  # after a restart the id is still known
    assert campaign.answer("alice", object_id, candidate=0, label=A, event_id="retry-0001", duration_ms=800).duplicate
    assert len(campaign.stored()) == 1


def test_answers_come_in_order_and_undo_takes_back_the_latest(campaign):
    object_id = campaign.service.claim("alice").task.object_id
    campaign.answer("alice", object_id, candidate=0, label=A)
    with pytest.raises(Conflict, match="not the current one"):
        campaign.answer("alice", object_id, candidate=2, label=A)  # a stale or skipping page
    with pytest.raises(Conflict, match="latest verdict is on 0"):
        campaign.answer("alice", object_id, UNDO, candidate=1)
    with pytest.raises(Invalid, match="needs a label"):
        campaign.answer("alice", object_id, candidate=1)
    campaign.answer("alice", object_id, candidate=1, label=R)
    state = campaign.answer("alice", object_id, UNDO, candidate=1).state
    assert (state.position, state.judged, state.last) == (1, 1, 0)
    state = campaign.answer("alice", object_id, UNDO, candidate=0).state
    assert (state.position, state.last) == (0, None)
    with pytest.raises(Conflict, match="nothing to undo"):
        campaign.answer("alice", object_id, UNDO, candidate=0)
    campaign.answer("alice", object_id, candidate=0, label=M)
    # Undo is an event: everything stays in the log, and the log replays to what the service says.
    assert [(e.action, e.candidate, e.label) for e in campaign.stored()] == [
        (VERDICT, 0, A), (VERDICT, 1, R), (UNDO, 1, None), (UNDO, 0, None), (VERDICT, 0, M)]
    assert replay(campaign.stored())[object_id]["alice"].labels == {0: M}


def test_the_service_state_is_the_replay_of_its_log_through_restarts(campaign):
    rng = random.Random(0)
    object_id = campaign.service.claim("alice").task.object_id
    for step in range(60):
        state = campaign.service.state("alice", object_id)
        if state.last is not None and rng.random() < 0.3:
            campaign.answer("alice", object_id, UNDO, candidate=state.last)
        elif state.position is not None:
            campaign.answer("alice", object_id, candidate=state.position, label=rng.choice([A, R, M]))
        if step % 20 == 19:
            campaign.restart()
        labels = replay(campaign.stored())[object_id]["alice"].labels
        state = campaign.service.state("alice", object_id)
        assert state.judged == len(labels) and set(labels) == set(range(state.judged))


def test_one_annotator_per_object_and_leases_that_run_out(campaign, tasks):
    ids = [task.object_id for task in tasks]
    assert campaign.service.claim("alice").task.object_id == ids[0]
    assert campaign.service.claim("alice").task.object_id == ids[0]  # claiming again keeps the object
    assert campaign.service.claim("bob").task.object_id == ids[1]
    with pytest.raises(Conflict, match="not assigned to you"):
        campaign.answer("bob", ids[0], candidate=0, label=A)
    campaign.answer("alice", ids[0], candidate=0, label=A)
    # Alice leaves without a word; her lease runs out and carol is given the object.
    campaign.clock.now += campaign.config.lease_ms + 1
    assert campaign.service.claim("carol").task.object_id == ids[0]
    with pytest.raises(Conflict, match="not assigned to you"):
        campaign.answer("alice", ids[0], candidate=1, label=A)
    with pytest.raises(Conflict):
        campaign.service.heartbeat("alice", ids[0])
    campaign.service.heartbeat("bob", ids[1])  # bob's lease ran out too, but no one took his object: renewed
    assert campaign.service.claim("alice").task.object_id == ids[2]
    assert campaign.service.claim("dave").task is None  # every object is held
    # Leases survive a restart.
    campaign.restart()
    assert campaign.service.claim("bob").task.object_id == ids[1]
    assert campaign.service.claim("dave").task is None


def test_a_lease_runs_out_soon_after_the_page_closes_but_survives_a_reload(campaign, tasks):
    ids = [task.object_id for task in tasks]
    campaign.service.claim("alice")
    campaign.answer("alice", ids[0], candidate=0, label=A)
    campaign.service.release("alice", ids[0])  # the page reloads...
    assert campaign.service.claim("alice").task.object_id == ids[0]  # ...and comes back to the same object
    campaign.service.release("alice", ids[0])  # the tab closes
    assert campaign.service.claim("bob").task.object_id == ids[1]  # within the grace: still alice's
    campaign.clock.now += campaign.config.release_grace_ms + 1
    assert campaign.service.claim("carol").task.object_id == ids[0]
    # Heartbeats keep leases alive past their first term (else dave would get the first of them).
    for _ in range(2):
        campaign.service.heartbeat("bob", ids[1])
        campaign.service.heartbeat("carol", ids[0])
        campaign.clock.now += campaign.config.lease_ms - 1000
    assert campaign.service.claim("dave").task.object_id == ids[2]


def test_an_annotator_resumes_their_own_started_object_first(campaign, tasks):
    ids = [task.object_id for task in tasks]
    campaign.service.claim("alice")
    campaign.answer("alice", ids[0], candidate=0, label=A)
    with pytest.raises(Conflict, match="judge them or skip"):
        campaign.service.next("alice")
    campaign.restart()
    state = campaign.service.claim("alice").state
    assert (state.object_id, state.position) == (ids[0], 1)


def test_skip_gives_the_object_up_to_others(campaign, tasks):
    ids = [task.object_id for task in tasks]
    campaign.service.claim("alice")
    campaign.answer("alice", ids[0], candidate=0, label=A)
    assert campaign.answer("alice", ids[0], SKIP).state.skipped
    with pytest.raises(Conflict, match="skipped"):
        campaign.answer("alice", ids[0], candidate=1, label=A)
    assert campaign.service.next("alice").task.object_id == ids[1]
    assert campaign.service.claim("bob").task.object_id == ids[0]
    assert campaign.service.progress("alice").skipped_by_you == 1


def test_a_finished_object_stays_with_its_annotator_until_next(campaign, tasks):
    ids = [task.object_id for task in tasks]
    object_id = campaign.finish("alice")
    assignment = campaign.service.claim("alice")
    assert assignment.task.object_id == object_id and assignment.state.finished  # a reload shows "done"
    with pytest.raises(Conflict, match="every candidate"):
        campaign.answer("alice", object_id, candidate=0, label=A)
    last = len(tasks[0].candidates) - 1
    assert campaign.answer("alice", object_id, UNDO, candidate=last).state.position == last  # still undoable
    campaign.answer("alice", object_id, candidate=last, label=A)
    assignment = campaign.service.next("alice")
    assert assignment.task.object_id == ids[1]
    assert assignment.progress.released == 1 and assignment.progress.finished_by_you == 1
    assert campaign.service.claim("bob").task.object_id == ids[2]  # the finished object is not handed out again


def test_unknown_objects_are_not_found(campaign):
    with pytest.raises(NotFound):
        campaign.answer("alice", "f" * 32, candidate=0, label=A)
    with pytest.raises(NotFound):
        campaign.service.heartbeat("alice", "../tasks.jsonl")
    assert campaign.stored() == []


def test_several_annotators_per_object_and_their_agreement(tasks, tmp_path, clock):
    campaign = Campaign(tasks, tmp_path / "verdicts.sqlite", clock, annotators_per_object=2)
    ids = [task.object_id for task in tasks]
    assert campaign.finish("alice", [A]) == ids[0]
    assert campaign.service.next("alice").task.object_id == ids[1]
    # bob is given the object alice finished (it needs a second annotator) and disagrees on candidate 0.
    assert campaign.finish("bob", [R, A, A, A, A, A, A, A, A, A, A, A, A, A, A]) == ids[0]
    assert campaign.service.next("bob").task.object_id == ids[2]
    assert campaign.service.progress("carol").released == 1
    result = export(tasks, campaign.stored(), tmp_path / "export", annotators_per_object=2).resolved
    assert [obj.object_id for obj in result.objects] == [ids[0]]
    kind_of_first = tasks[0].candidates[0].kind.value
    judged = sum(c.kind.value == kind_of_first for c in tasks[0].candidates)
    assert result.agreement[kind_of_first] == pytest.approx((judged - 1) / judged)
    assert all(share == 1.0 for kind, share in result.agreement.items() if kind != kind_of_first)
    # The tie on candidate 0 (one ACCEPTED, one REJECTED) is released as AMBIGUOUS.
    first = result.objects[0].points_on(tasks[0].candidates[0].frame_index)
    assert first.labels[0] == M
    campaign.store.close()


def test_export_reads_back_as_the_release(campaign, tasks, tmp_path):
    labels = [A, R, M, R, A]
    object_id = campaign.finish("alice", labels)
    campaign.service.next("alice")
    campaign.answer("alice", tasks[1].object_id, candidate=0, label=A)  # unfinished: not released
    result = export(tasks, campaign.stored(), tmp_path / "export")
    assert result.release == (tmp_path / "export" / "Oops" / "train.json",)
    [released] = read_pv_annotations(result.release[0])
    task = tasks[0]
    assert (released.object_id, released.object_name, released.question, released.noun_span) == (
        object_id, task.object_name, task.question, task.noun_span)
    expected = {}
    for position, candidate in enumerate(task.candidates):
        expected[(candidate.frame_index, candidate.x, candidate.y)] = labels[position % len(labels)]
    got = {(frame.frame_index, int(x), int(y)): PointLabel(int(label))
           for frame in released.frames for (x, y), label in zip(frame.points.xy, frame.points.labels, strict=True)}
    assert got == expected
    assert read_verdicts(result.verdicts) == campaign.stored()
    summary = json.loads(result.summary.read_text())
    assert summary["released"] == 1 and summary["unfinished"] == [t.object_id for t in tasks[1:]]
    assert summary["annotators"]["alice"] == {"objects_finished": 1, "objects_skipped": 0,
                                              "verdicts": len(task.candidates) + 1,
                                              "seconds_per_point": round(15 * 0.9 / 16, 3)}
    assert {LABEL_TO_STATUS[int(label)] for label in labels} == {"ACCEPTED", "REJECTED", "AMBIGUOUS"}


def test_a_store_refuses_a_second_server_and_changed_tasks(tasks, tmp_path):
    path = tmp_path / "verdicts.sqlite"
    store = Store(path, exclusive=True)
    VerificationService(tasks, store)
    with pytest.raises(StoreError, match="another server"):
        Store(path, exclusive=True)
    reader = Store(path, read_only=True)  # export and status read beside a running server
    assert reader.events() == []
    reader.close()
    store.close()
    changed = [replace(tasks[0], candidates=tasks[0].candidates[1:])]  # same object, its candidates shifted
    store = Store(path, exclusive=True)
    with pytest.raises(StoreError, match="other candidates"):
        VerificationService(changed, store)
    store.close()


def test_tokens_are_kept_per_name_and_looked_up(tmp_path):
    store = Store(tmp_path / "verdicts.sqlite")
    first = ensure_annotators(store, names=["alice", "bob"])
    assert sorted(first) == ["alice", "bob"] and all(len(token) >= 16 for token in first.values())
    assert ensure_annotators(store, names=["alice"]) == first  # a restart keeps the links
    table = TokenTable(first)
    assert table.annotator(first["bob"]) == "bob" and table.annotator("nope") is None and table.annotator(None) is None
    with pytest.raises(ValueError, match="annotator name"):
        ensure_annotators(store, names=["<script>"])
    store.close()
    (tmp_path / "tokens").write_text("# team\nana ana-token-123456789012\nben short\n")
    with pytest.raises(ValueError, match="at least 16"):
        read_tokens_file(tmp_path / "tokens")


def test_annotator_stats_count_only_the_verdicts_the_release_counts(campaign, tasks, tmp_path):
    campaign.finish("alice", [A, R, M])
    stored = campaign.stored()
    stray = replace(stored[0], event_id=stored[0].event_id + "-stray", candidate=len(tasks[0].candidates) + 3)
    result = export(tasks, [*stored, stray], tmp_path / "export")
    summary = json.loads(result.summary.read_text())
    assert summary["out_of_range_events"] == 1 and result.resolved.out_of_range == 1
    # the stray verdict names no candidate of the task: neither released nor counted for alice
    assert summary["annotators"]["alice"]["verdicts"] == len(tasks[0].candidates)
    assert summary["annotators"]["alice"]["objects_finished"] == 1
