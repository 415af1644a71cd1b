"""MemoryStore in a long-running process: records past the retention window are evicted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from codat_webhooks.stores import Entry, MemoryStore, State

if TYPE_CHECKING:
    from conftest import FakeClock

RETENTION = 1600.0  # a sweep every 100 s


def deliver(store: MemoryStore, key: str) -> None:
    store.complete(key, store.claim(Entry(key, "f"), lease=10).token)


def test_a_long_running_store_holds_about_one_retention_window(clock: FakeClock) -> None:
    store = MemoryStore(retention=RETENTION, clock=clock)
    per_window = 160
    sizes = []
    for n in range(per_window * 20):  # twenty retention windows, one delivery every 10 s
        deliver(store, f"key-{n}")
        if n % 8 == 0:
            store.park(Entry(f"parked-{n}", "f"), reason="invalid")
        clock.advance(RETENTION / per_window)
        sizes.append(len(store.find()))
    # Without eviction this ends at 3,600 records; with it, one window plus at most one sweep.
    assert max(sizes) <= (per_window + 20) * (1 + 1 / 16) + 2
    assert store.get("key-0") is None
    assert store.get(f"key-{per_window * 20 - 1}") is not None


def test_eviction_keeps_a_live_lease_and_anything_within_retention(clock: FakeClock) -> None:
    store = MemoryStore(retention=RETENTION, clock=clock)
    store.claim(Entry("slow", "f"), lease=RETENTION * 3)  # a hook still running
    deliver(store, "old")
    clock.advance(RETENTION / 2)
    deliver(store, "recent")
    clock.advance(RETENTION / 2 + 1)
    deliver(store, "trigger")  # the first claim after the sweep is due
    assert store.get("old") is None
    assert [r.key for r in store.find()] == ["trigger", "recent", "slow"]
    record = store.get("slow")
    assert record is not None
    assert record.state is State.PROCESSING


def test_queued_dispatch_alone_keeps_about_one_retention_window(clock: FakeClock) -> None:
    """The issue's reproduction: LocalQueue only enqueues, takes and completes; 2,000 deliveries
    over 2,000 s with a 60 s retention held 2,001 records before eviction ran on those paths."""
    store = MemoryStore(retention=60.0, clock=clock)
    sizes = []
    for n in range(2000):
        key = f"key-{n}"
        store.enqueue(Entry(key, "f"))
        store.complete(key, store.take(key, lease=10).token)
        clock.advance(1.0)
        sizes.append(len(store.find()))
    assert max(sizes) <= 60 * (1 + 1 / 16) + 2
    assert store.get("key-0") is None


@pytest.mark.parametrize("operation", ["enqueue", "take", "complete"])
def test_each_queued_operation_alone_evicts_past_retention(
    clock: FakeClock, operation: str
) -> None:
    """Each of the queued path's writes sweeps by itself: a worker process only takes and
    completes, a receiving one only enqueues."""
    store = MemoryStore(retention=RETENTION, clock=clock)
    deliver(store, "old")
    clock.advance(RETENTION / 2)
    store.enqueue(Entry("live", "f"))  # a sweep is due: nothing is old enough yet
    token = store.take("live", lease=RETENTION).token if operation == "complete" else 0
    clock.advance(RETENTION / 2 + 1)  # "old" is past retention, the next sweep due
    assert store.get("old") is not None
    if operation == "enqueue":
        store.enqueue(Entry("new", "f"))
    elif operation == "take":
        token = store.take("live", lease=10).token
        assert token
    else:
        assert store.complete("live", token)
    assert store.get("old") is None
    assert store.get("live") is not None


def test_history_and_verdicts_leave_one_tracked_object_per_key() -> None:
    """The garbage collector's full passes pause every request of the process, for as long as
    it has tracked objects to walk: a key's history and verdict must not add to its record."""
    import gc

    from codat_webhooks.outcomes import Outcome
    from codat_webhooks.stores.history import HistoryEntry
    from codat_webhooks.stores.marks import Mark

    store = MemoryStore()
    asked = HistoryEntry(0.0, None, "", None, None, "authorization", "host:1")
    keys = [f"key-{n}" for n in range(2000)]
    gc.collect()
    before = len(gc.get_objects())
    for n, key in enumerate(keys):
        # One scope, each delivery a status change that does not follow the last: a gap
        # verdict kept for every key, as the benchmarks' DataConnectionStatusChanged gives.
        entry = Entry(key, "f", mark=Mark("chain", None, f"s{n}", f"s{n + 2}"))
        claim = store.claim(entry, lease=10, attempt=asked)
        done = HistoryEntry(1.0, 200, Outcome.PROCESSED, 0.4, None, "authorization", "host:1")
        store.complete(key, claim.token, attempt=done)
        store.claim(Entry(key, "f"), lease=10, attempt=asked)  # a duplicate: a second entry
    gc.collect()
    added = len(gc.get_objects()) - before
    # The records, and nothing per key besides (a list per key was 2 more each); the slack is
    # for what a test runner's own threads allocate meanwhile, such as pytest-xdist's channel.
    assert len(keys) <= added <= len(keys) + len(keys) // 10

    history = store.history(keys[-1])
    assert [(e.status, e.outcome) for e in history] == [(200, "processed"), (200, "duplicate")]
    assert all(type(e) is HistoryEntry for e in history)
    verdict = store.verdict(keys[-1])
    assert verdict is not None
    assert verdict.gap


def test_a_duplicate_leaves_no_new_object_behind() -> None:
    """Most of Codat's keys come more than once, and every object that outlives a request
    costs memory and brings the collector's next pass nearer: noting a duplicate in a key's
    history must replace what the key held, not add an object beside it."""
    import gc
    import sys

    from codat_webhooks.stores.history import HistoryEntry

    store = MemoryStore()
    asked = HistoryEntry(0.0, None, "", None, None, "authorization", "host:1")
    done = HistoryEntry(1.0, 200, "processed", 0.4, None, "authorization", "host:1")
    entries = [Entry(f"key-{n}", "f") for n in range(2000)]
    for entry in entries:
        claim = store.claim(entry, lease=10, attempt=asked)
        store.complete(entry.key, claim.token, attempt=done)
    gc.collect()
    before = sys.getallocatedblocks()
    for entry in entries:
        assert store.claim(entry, lease=10, attempt=asked).status == "duplicate"
    gc.collect()
    added = sys.getallocatedblocks() - before
    # A tuple of entry tuples left one block per duplicate; the slack is for what a test
    # runner's own threads allocate meanwhile.
    assert added < len(entries) // 2
    assert [(e.status, e.outcome) for e in store.history(entries[0].key)] == [
        (200, "processed"),
        (200, "duplicate"),
    ]
