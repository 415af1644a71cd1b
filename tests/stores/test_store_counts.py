"""``counts()`` and ``ping()`` on every backend: the gauges and the health check read them."""

from __future__ import annotations

from codat_webhooks.stores import Entry, State, Store


def test_counts_by_state_every_state_present(store: Store) -> None:
    assert store.counts() == dict.fromkeys(State, 0)
    done = store.claim(Entry("done-1", "a" * 64, b"{}"), lease=10)
    store.complete("done-1", done.token)
    failed = store.claim(Entry("failed-1", "b" * 64, b"{}"), lease=10)
    store.release("failed-1", failed.token, error="boom")
    store.claim(Entry("busy-1", "c" * 64, b"{}"), lease=10)
    store.park(Entry("parked-1", "d" * 64, b"[]"), reason="not an alert")
    store.park(Entry("parked-2", "e" * 64, b"[]"), reason="not an alert")
    store.enqueue(Entry("queued-1", "f" * 64, b"{}"))
    assert store.counts() == {
        State.QUEUED: 1,
        State.PROCESSING: 1,
        State.DONE: 1,
        State.FAILED: 1,
        State.PARKED: 2,
    }


def test_ping_answers_while_the_store_is_up(store: Store) -> None:
    store.ping()  # raises StoreError when the store does not answer
