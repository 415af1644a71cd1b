"""Exactly one hook run per key when many threads deliver the same alert at once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from codat_webhooks import Delivery, Receiver, hookimpl
from codat_webhooks.leases import LeaseKeeper
from codat_webhooks.stores import Entry, MemoryStore, State
from codat_webhooks.testing import sample_body


class Counting:
    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.lock = threading.Lock()

    @hookimpl
    def on_dataset_data_changed(self, delivery: Delivery) -> None:
        with self.lock:
            assert delivery.key is not None
            self.runs[delivery.key] += 1


def test_fifty_threads_delivering_one_alert_run_its_hook_once() -> None:
    plugin = Counting()
    receiver = Receiver(
        authorization="Bearer t", store=MemoryStore(), plugins=[plugin], load_entrypoints=False
    )
    body = sample_body("Dataset data changed")
    start = threading.Barrier(50, timeout=10)

    def deliver(_: int) -> str:
        start.wait()
        return receiver.handle("POST", {"Authorization": "Bearer t"}, body).outcome

    with ThreadPoolExecutor(50) as pool:
        outcomes = Counter(pool.map(deliver, range(50)))

    assert sum(plugin.runs.values()) == 1
    assert outcomes["processed"] == 1
    assert outcomes["processed"] + outcomes["duplicate"] + outcomes["in_progress"] == 50
    [record] = receiver.store.find()
    assert record.state is State.DONE


def test_slow_hook_keeps_its_lease_and_runs_once() -> None:
    """A hook that outlives its lease is renewed, so a redelivery meanwhile is in_progress."""
    started = threading.Event()
    finish = threading.Event()
    runs: list[str] = []

    class Slow:
        @hookimpl
        def on_push_operation_timed_out(self, delivery: Delivery) -> None:
            runs.append(str(delivery.key))
            started.set()
            finish.wait(timeout=10)

    store = MemoryStore()
    receiver = Receiver(
        insecure=True, store=store, plugins=[Slow()], load_entrypoints=False, lease=0.5
    )  # the renewer is due at half the lease: a quarter second of slack for a busy machine
    body = sample_body("Push Operation Timed Out")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(receiver.handle, "POST", {}, body)
        assert started.wait(timeout=10)
        # wait until several lease periods have passed, by observing renewals in the store
        key = runs[0]
        record = store.get(key)
        assert record is not None
        renewed_after = record.lease_expires
        for _ in range(500):  # bounded: about 10 s at most
            record = store.get(key)
            assert record is not None
            if record.lease_expires > renewed_after + 0.5:  # renewed at least twice more
                break
            threading.Event().wait(0.02)
        else:
            raise AssertionError("the lease was never renewed")
        assert receiver.handle("POST", {}, body).outcome == "in_progress"
        finish.set()
        assert first.result(timeout=10).outcome == "processed"
    assert receiver.handle("POST", {}, body).outcome == "duplicate"
    assert runs == [key]
    receiver.close()


def test_lease_keeper_renews_only_claims_still_tracked() -> None:
    clock = [1000.0]
    store = MemoryStore(clock=lambda: clock[0])
    keeper = LeaseKeeper(store, lease=10.0, clock=lambda: clock[0])
    tokens = {key: store.claim(Entry(key, "f"), lease=10.0).token for key in ("kept", "done")}
    try:
        for key, token in tokens.items():
            keeper.track(key, token)
        keeper.untrack("done", tokens["done"])
        clock[0] += 6  # past half the lease
        keeper.renew_due(clock[0])
    finally:
        keeper.close()
    kept, done = store.get("kept"), store.get("done")
    assert kept is not None
    assert done is not None
    assert kept.lease_expires == 1016.0  # renewed from the moved clock
    assert done.lease_expires == 1010.0  # untouched
