"""LocalQueue: worker threads and the sweeper, on real threads and a real SQLite file."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from codat_webhooks import ConfigurationError, Delivery, Receiver, hookimpl
from codat_webhooks.queues import LocalQueue, Queue, RetryPolicy
from codat_webhooks.stores import SQLiteStore, State
from codat_webhooks.stores.base import Entry
from codat_webhooks.testing import sample_body
from tests.waiting import wait_for

AUTH = {"Authorization": "Bearer s3cret"}


class Counter:
    """Counts each key's handler runs; fails the first ``failures`` runs of every key."""

    def __init__(self, failures: int = 0) -> None:
        self.runs: dict[str, int] = {}
        self.failures = failures
        self.lock = threading.Lock()

    @hookimpl
    def on_alert(self, delivery: Delivery) -> None:
        assert delivery.key is not None
        with self.lock:
            self.runs[delivery.key] = self.runs.get(delivery.key, 0) + 1
            if self.runs[delivery.key] <= self.failures:
                raise RuntimeError("not yet")


def build(path: Path, counter: Counter, queue: LocalQueue, **options: object) -> Receiver:
    return Receiver(
        authorization="Bearer s3cret",
        store=SQLiteStore(path),
        plugins=[counter],
        load_entrypoints=False,
        queue=queue,
        **options,  # type: ignore[arg-type]
    )


def test_local_queue_is_a_queue_and_checks_its_settings() -> None:
    assert isinstance(LocalQueue(), Queue)
    with pytest.raises(ConfigurationError):
        LocalQueue(workers=-1)


def test_worker_threads_run_every_accepted_key_once(tmp_path: Path) -> None:
    counter = Counter()
    receiver = build(tmp_path / "q.sqlite3", counter, LocalQueue(workers=3))
    try:
        keys = []
        for _ in range(40):
            body = sample_body("Data sync completed")
            assert receiver.handle("POST", AUTH, body).status == 202
            assert receiver.handle("POST", AUTH, body).status == 200
            keys.append(json.loads(body)["AlertId"])
        wait_for(lambda: len(counter.runs) == 40)
        wait_for(
            lambda: all(
                (r := receiver.store.get(k)) is not None and r.state is State.DONE for k in keys
            )
        )
        assert set(counter.runs.values()) == {1}
    finally:
        receiver.close()


def test_failing_hook_is_retried_on_the_worker_after_its_backoff(tmp_path: Path) -> None:
    counter = Counter(failures=2)
    retries = RetryPolicy(attempts=5, first=0.01, cap=0.05)
    receiver = build(tmp_path / "q.sqlite3", counter, LocalQueue(workers=1), retries=retries)
    try:
        body = sample_body("Sync Failed")
        key = json.loads(body)["AlertId"]
        receiver.handle("POST", AUTH, body)
        wait_for(lambda: (r := receiver.store.get(key)) is not None and r.state is State.DONE)
        assert counter.runs == {key: 3}
        record = receiver.store.get(key)
        assert record is not None
        assert record.attempts == 3
    finally:
        receiver.close()


def test_sweeper_runs_keys_recorded_but_never_enqueued(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    with SQLiteStore(path) as store:  # as if the process died between recording and enqueueing
        orphan = str(uuid.uuid4())
        body = sample_body("Sync Completed", alert_id=orphan)
        store.enqueue(Entry(orphan, "f" * 64, body))
    counter = Counter()
    receiver = build(path, counter, LocalQueue(stale_after=0, sweep_every=0.05))
    try:
        wait_for(lambda: counter.runs == {orphan: 1})
    finally:
        receiver.close()
