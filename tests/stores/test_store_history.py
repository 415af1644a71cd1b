"""The history contract: every backend keeps the same entries, in the same operation as the
state change they describe, bounded, and purged with the record."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from tests.queues.test_queued_receiver import ListQueue

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.queues import RetryPolicy
from codat_webhooks.stores import ClaimStatus, Entry, State, Store
from codat_webhooks.stores.history import HISTORY_LIMIT, HistoryEntry, process_name
from codat_webhooks.testing import sample_body

if TYPE_CHECKING:
    from conftest import FakeClock

LEASE = 10.0


def entry(key: str = "alert-1", fingerprint: str = "f" * 64) -> Entry:
    return Entry(key, fingerprint, b'{"AlertId": "alert-1"}', (), "Data sync completed", "c")


def template(at: float) -> HistoryEntry:
    return HistoryEntry(at, None, "", None, None, "authorization-1", "host:1")


def ended(at: float, status: int | None, outcome: str, error: str | None = None) -> HistoryEntry:
    return HistoryEntry(at, status, outcome, 12.5, error, "authorization-1", "host:1")


def answers(store: Store, key: str = "alert-1") -> list[tuple[int | None, str]]:
    return [(item.status, item.outcome) for item in store.history(key)]


def test_a_key_never_seen_has_no_history(store: Store) -> None:
    assert store.history("never-seen") == []
    assert store.kept_history("never-seen").dropped == 0
    assert store.history("x" * 1000) == []  # a key no store can hold has none either


def test_inline_attempts_each_leave_one_entry(store: Store, clock: FakeClock) -> None:
    first = store.claim(entry(), lease=LEASE, attempt=template(clock.now))
    assert first.status is ClaimStatus.CLAIMED
    assert store.history("alert-1") == []  # the attempt's entry comes when it ends
    busy = store.claim(entry(), lease=LEASE, attempt=template(clock.now))
    assert busy.status is ClaimStatus.IN_PROGRESS
    assert store.release(
        "alert-1", first.token, error="E", attempt=ended(clock.now, 503, "failed", "E")
    )
    clock.advance(5)
    second = store.claim(entry(), lease=LEASE, attempt=template(clock.now))
    assert store.complete("alert-1", second.token, attempt=ended(clock.now, 200, "processed"))
    clock.advance(300)
    duplicate = store.claim(entry(), lease=LEASE, attempt=template(clock.now))
    assert duplicate.status is ClaimStatus.DUPLICATE
    conflict = store.claim(entry(fingerprint="0" * 64), lease=LEASE, attempt=template(clock.now))
    assert conflict.status is ClaimStatus.CONFLICT
    assert answers(store) == [
        (503, "in_progress"),
        (503, "failed"),
        (200, "processed"),
        (200, "duplicate"),
        (422, "conflict"),
    ]
    kept = store.history("alert-1")
    assert kept[1] == ended(clock.now - 305, 503, "failed", "E")
    assert kept[3] == HistoryEntry(
        clock.now, 200, "duplicate", None, None, "authorization-1", "host:1"
    )


def test_a_fenced_out_move_appends_nothing(store: Store, clock: FakeClock) -> None:
    first = store.claim(entry(), lease=LEASE)
    clock.advance(LEASE + 1)
    second = store.claim(entry(), lease=LEASE)
    assert not store.complete("alert-1", first.token, attempt=ended(clock.now, 200, "processed"))
    assert store.history("alert-1") == []
    assert store.complete("alert-1", second.token, attempt=ended(clock.now, 200, "processed"))
    assert answers(store) == [(200, "processed")]


def test_queued_attempts_and_worker_runs(store: Store, clock: FakeClock) -> None:
    assert store.enqueue(entry(), attempt=template(clock.now)).status is ClaimStatus.QUEUED
    assert store.enqueue(entry(), attempt=template(clock.now)).status is ClaimStatus.DUPLICATE
    taken = store.take("alert-1", lease=LEASE)
    assert store.defer(
        "alert-1",
        taken.token,
        due=clock.now + 30,
        error="E",
        attempt=ended(clock.now, None, "retry", "E"),
    )
    clock.advance(30)
    taken = store.take("alert-1", lease=LEASE)
    assert store.release(
        "alert-1", taken.token, error="E", attempt=ended(clock.now, None, "failed", "E")
    )
    # a replay through the queue starts a new round on the same history
    assert store.enqueue(entry(), attempt=template(clock.now)).status is ClaimStatus.QUEUED
    taken = store.take("alert-1", lease=LEASE)
    assert store.complete("alert-1", taken.token, attempt=ended(clock.now, None, "processed"))
    assert answers(store) == [
        (202, "queued"),
        (200, "duplicate"),
        (None, "retry"),
        (None, "failed"),
        (202, "queued"),
        (None, "processed"),
    ]
    record = store.get("alert-1")
    assert record is not None
    assert record.state is State.DONE


def test_parking_and_a_replay_append(store: Store, clock: FakeClock) -> None:
    store.park(
        entry(), reason="bad\x00body", attempt=ended(clock.now, 422, "invalid", "bad\x00body")
    )
    replay = store.claim(entry(), lease=LEASE, attempt=template(clock.now))
    assert replay.claimed
    assert store.complete("alert-1", replay.token, attempt=ended(clock.now, 200, "processed"))
    kept = store.history("alert-1")
    assert [(item.status, item.outcome) for item in kept] == [(422, "invalid"), (200, "processed")]
    assert kept[0].error == "bad\ufffdbody"  # cleaned as last_error is


def test_history_is_bounded_and_counts_what_it_dropped(store: Store, clock: FakeClock) -> None:
    claimed = store.claim(entry(), lease=LEASE)
    store.complete("alert-1", claimed.token, attempt=ended(clock.now, 200, "processed"))
    extra = HISTORY_LIMIT + 7
    for _ in range(extra):
        clock.advance(1)
        store.claim(entry(), lease=LEASE, attempt=template(clock.now))
    kept = store.kept_history("alert-1")
    assert len(kept.entries) == HISTORY_LIMIT
    assert kept.dropped == extra + 1 - HISTORY_LIMIT
    assert [item.at for item in kept.entries] == [clock.now - n for n in range(HISTORY_LIMIT)][::-1]


def test_history_is_purged_with_its_record(store: Store, clock: FakeClock) -> None:
    for key in ("old", "new"):
        clock.advance(100)
        claimed = store.claim(entry(key), lease=LEASE)
        store.complete(key, claimed.token, attempt=ended(clock.now, 200, "processed"))
    assert store.purge(older_than=50) == 1
    assert store.history("old") == []
    assert answers(store, "new") == [(200, "processed")]
    clock.advance(1)
    assert store.purge(older_than=0) == 1
    assert store.history("new") == []


@pytest.mark.parametrize("text", ["caf\u00e9 \U0001f600", "\ud800 lone"])
def test_texts_come_back_as_stored(store: Store, clock: FakeClock, text: str) -> None:
    claimed = store.claim(entry(), lease=LEASE)
    attempt = HistoryEntry(clock.now, 503, "failed", 1.0, text, text, text)
    store.release("alert-1", claimed.token, error=text, attempt=attempt)
    (kept,) = store.history("alert-1")
    record = store.get("alert-1")
    assert record is not None
    assert kept.error == kept.verified_by == kept.process == record.last_error


# --- written by a real receiver -------------------------------------------------------------


class Flaky:
    """Raises until told the downstream API is back."""

    def __init__(self) -> None:
        self.down = True

    @hookimpl
    def on_alert(self) -> None:
        if self.down:
            raise RuntimeError("downstream API is down")


def test_a_receiver_records_each_answer_it_gives(store: Store, clock: FakeClock) -> None:
    hook = Flaky()
    receiver = Receiver(
        authorization={"portal": "Bearer s3cret"},
        store=store,
        plugins=[hook],
        load_entrypoints=False,
        clock=clock,
    )
    headers = {"Authorization": "Bearer s3cret"}
    body = sample_body(RuleType.DATASET_DATA_CHANGED)
    assert receiver.handle("POST", headers, body).status == 503
    hook.down = False
    clock.advance(5)
    key = receiver.handle("POST", headers, body).key
    assert key is not None
    clock.advance(300)
    assert receiver.handle("POST", headers, body).outcome == "duplicate"
    altered = body.replace(b"}", b' , "x": 1}', 1)
    assert receiver.handle("POST", headers, altered).outcome == "conflict"
    kept = store.history(key)
    assert [(e.status, e.outcome) for e in kept] == [
        (503, "failed"),
        (200, "processed"),
        (200, "duplicate"),
        (422, "conflict"),
    ]
    assert kept[0].error == "RuntimeError: downstream API is down"
    assert {e.verified_by for e in kept} == {"portal"}
    assert [e.at for e in kept] == [clock.now - 305, clock.now - 300, clock.now, clock.now]
    assert kept[0].duration_ms is not None
    assert kept[0].duration_ms >= 0
    assert kept[0].process == process_name()
    # the other body is parked under a key of its own, with its own entry
    (parked,) = store.conflicts(key)
    assert [(e.status, e.outcome) for e in store.history(parked.key)] == [(422, "conflict")]


def test_queued_dispatch_records_the_202_and_each_worker_run(
    store: Store, clock: FakeClock
) -> None:
    hook = Flaky()
    queue = ListQueue()
    receiver = Receiver(
        insecure=True,
        store=store,
        plugins=[hook],
        load_entrypoints=False,
        clock=clock,
        queue=queue,
        retries=RetryPolicy(attempts=2, first=1.0, jitter=0.0),
    )
    body = sample_body(RuleType.DATASET_DATA_CHANGED)
    assert receiver.handle("POST", {}, body).status == 202
    (key,) = queue.keys
    assert receiver.process_queued(key).retry_in == 1.0
    clock.advance(1)
    assert receiver.process_queued(key).outcome == "failed"
    assert receiver.handle("POST", {}, body).status == 202  # a failed key is queued again
    hook.down = False
    assert receiver.process_queued(key).outcome == "processed"
    assert receiver.handle("POST", {}, body).outcome == "duplicate"
    assert [(e.status, e.outcome) for e in store.history(key)] == [
        (202, "queued"),
        (None, "retry"),
        (None, "failed"),
        (202, "queued"),
        (None, "processed"),
        (200, "duplicate"),
    ]


def test_a_queue_that_refuses_a_recorded_key_leaves_the_503_on_its_history(
    store: Store, clock: FakeClock
) -> None:
    """The record is written (with its 202 entry) before the queue is asked; when the queue
    refuses it, the sender is answered 503, and the history must say what the sender got."""
    queue = ListQueue(broken=True)
    receiver = Receiver(
        authorization={"portal": "Bearer s3cret"},
        store=store,
        load_entrypoints=False,
        clock=clock,
        queue=queue,
    )
    headers = {"Authorization": "Bearer s3cret"}
    body = sample_body(RuleType.DATASET_DATA_CHANGED)
    reply = receiver.handle("POST", headers, body)
    assert (reply.status, reply.outcome) == (503, "unavailable")
    assert reply.key is not None
    clock.advance(5)
    queue.broken = False
    assert receiver.handle("POST", headers, body).outcome == "duplicate"  # recorded: not lost
    kept = store.history(reply.key)
    assert [(e.status, e.outcome) for e in kept] == [
        (202, "queued"),
        (503, "unavailable"),
        (200, "duplicate"),
    ]
    assert kept[1].error == "ConnectionError: broker down"
    assert kept[1].verified_by == "portal"


@pytest.mark.postgres
def test_postgres_complete_numbers_its_entry_after_an_answer_noted_meanwhile(
    make_store: Any, postgres_dsn: str, clock: FakeClock
) -> None:
    """The complete's single statement waits for the row an in-progress answer holds, and its
    snapshot predates that answer's entry: it must still append after it, not fail."""
    import psycopg

    store = make_store("postgres", clock=clock)
    claimed = store.claim(entry(), lease=LEASE)
    table = store.table
    with psycopg.connect(postgres_dsn) as other:
        lock = f'SELECT 1 FROM "{table}" WHERE key = %s FOR UPDATE'  # noqa: S608 - test table
        other.execute(lock, ("alert-1",))
        done: list[bool] = []
        finishing = threading.Thread(
            target=lambda: done.append(
                store.complete("alert-1", claimed.token, attempt=ended(clock.now, 200, "processed"))
            )
        )
        finishing.start()
        time.sleep(0.3)  # the complete is now waiting for the row
        noted = (
            f'INSERT INTO "{table}_history" (key, seq, at, status, outcome) VALUES'  # noqa: S608
            " (%s, 1, %s, 503, 'in_progress')"
        )
        other.execute(noted, ("alert-1", clock.now))
        other.commit()
        finishing.join(timeout=10)
    assert done == [True]
    assert answers(store) == [(503, "in_progress"), (200, "processed")]


def test_a_history_without_a_record_for_answers_that_store_nothing(
    store: Store, clock: FakeClock
) -> None:
    for n in range(HISTORY_LIMIT + 2):
        store.note("~unauthorized", ended(clock.now + n, 401, "unauthorized", "no credential"))
    kept = store.kept_history("~unauthorized")
    assert (len(kept.entries), kept.dropped) == (HISTORY_LIMIT, 2)
    assert kept.entries[-1] == ended(
        clock.now + HISTORY_LIMIT + 1, 401, "unauthorized", "no credential"
    )
    assert store.get("~unauthorized") is None


def test_a_template_is_cleaned_when_an_answer_is_made_of_it(store: Store, clock: FakeClock) -> None:
    claimed = store.claim(entry(), lease=LEASE)
    store.complete("alert-1", claimed.token)
    odd = HistoryEntry(0.0, None, "", None, None, "cred\x00\ud800", "host:1")
    assert store.claim(entry(), lease=LEASE, attempt=odd).status is ClaimStatus.DUPLICATE
    (kept,) = store.history("alert-1")
    assert (kept.at, kept.verified_by) == (clock.now, "cred\ufffd\ufffd")
