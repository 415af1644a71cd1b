"""Queued dispatch in the receiver: 202 on acceptance, workers run the same hooks, retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from codat_webhooks import Delivery, Receiver, StoreError, hookimpl
from codat_webhooks.queues import RetryPolicy
from codat_webhooks.stores import MemoryStore, State
from codat_webhooks.stores.base import Claim, Entry
from codat_webhooks.testing import Recorder, sample_body
from codat_webhooks.testing.retries import FakeClock

AUTH = {"Authorization": "Bearer s3cret"}


class ListQueue:
    """The smallest engine: keeps the keys it is given; the test plays the worker."""

    blocking = False

    def __init__(self, *, broken: bool = False) -> None:
        self.keys: list[str] = []
        self.broken = broken
        self.receiver: Receiver | None = None

    def bind(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def enqueue(self, key: str) -> None:
        if self.broken:
            raise ConnectionError("broker down")
        self.keys.append(key)

    def close(self) -> None:
        pass


@pytest.fixture
def queue() -> ListQueue:
    return ListQueue()


@pytest.fixture
def make(codat_make_receiver: Callable[..., Receiver], queue: ListQueue) -> Callable[..., Receiver]:
    def build(plugins: tuple[object, ...] = (), **overrides: object) -> Receiver:
        options: dict[str, object] = {
            "authorization": "Bearer s3cret",
            "signing_secrets": None,
            "queue": queue,
        }
        options.update(overrides)
        return codat_make_receiver(plugins, **options)

    return build


def key_of(body: bytes) -> str:
    return str(json.loads(body)["AlertId"])


def test_accepted_delivery_is_recorded_queued_and_answered_202(
    make: Callable[..., Receiver], queue: ListQueue, store: MemoryStore, recorder: Recorder
) -> None:
    receiver = make()
    assert queue.receiver is receiver
    body = sample_body("Data sync completed")
    reply = receiver.handle("POST", {**AUTH, "X-Trace": "t1"}, body)
    assert (reply.status, reply.outcome) == (202, "queued")
    assert json.loads(reply.body)["outcome"] == "queued"
    key = key_of(body)
    assert queue.keys == [key]
    record = store.get(key)
    assert record is not None
    assert (record.state, record.body, record.attempts) == (State.QUEUED, body, 0)
    assert ("Authorization", "[redacted]") in record.headers
    assert recorder.names() == []  # no hook runs on the request


def test_worker_runs_the_same_hooks_once_and_completes(
    make: Callable[..., Receiver], queue: ListQueue, store: MemoryStore, recorder: Recorder
) -> None:
    receiver = make()
    body = sample_body("Data sync completed")
    receiver.handle("POST", {**AUTH, "X-Trace": "t1"}, body)
    work = receiver.process_queued(queue.keys[0])
    assert (work.outcome, work.retry_in) == ("processed", None)
    assert recorder.names() == ["on_data_sync_completed", "on_alert"]
    delivery: Delivery = recorder.calls_to("on_alert")[0].arguments["delivery"]
    assert (delivery.key, delivery.body, delivery.attempt) == (key_of(body), body, 1)
    assert delivery.headers["x-trace"] == "t1"
    assert delivery.verified_by == "authorization"  # kept with the record, not guessed
    record = store.get(key_of(body))
    assert record is not None
    assert record.state is State.DONE
    # a second job for the key (a broker redelivery, a sweep) is a no-op
    assert receiver.process_queued(key_of(body)).outcome == "duplicate"
    assert receiver.process_queued("never-seen").outcome == "duplicate"
    assert recorder.names() == ["on_data_sync_completed", "on_alert"]


def test_a_key_another_worker_holds_is_looked_at_again_when_its_lease_runs_out(
    make: Callable[..., Receiver], queue: ListQueue, store: MemoryStore, codat_clock: FakeClock
) -> None:
    receiver = make(lease=30.0)
    receiver.handle("POST", AUTH, sample_body("Sync Failed"))
    [key] = queue.keys
    held = store.take(key, lease=30.0)  # a worker that then dies
    codat_clock.advance(10)
    busy = receiver.process_queued(key)
    assert busy.outcome == "in_progress"
    assert busy.retry_in == pytest.approx(20.1)
    codat_clock.advance(21)
    assert receiver.process_queued(key).outcome == "processed"
    assert not store.complete(key, held.token)  # the dead worker is fenced out


def test_copies_of_a_queued_processing_or_done_key_are_200_duplicates(
    make: Callable[..., Receiver], queue: ListQueue, store: MemoryStore, recorder: Recorder
) -> None:
    receiver = make()
    body = sample_body("Sync Failed")
    receiver.handle("POST", AUTH, body)
    assert receiver.handle("POST", AUTH, body).status == 200  # queued
    assert store.take(key_of(body), lease=60).claimed
    assert receiver.handle("POST", AUTH, body).outcome == "duplicate"  # processing
    assert queue.keys == [key_of(body)]
    assert recorder.names() == ["on_duplicate", "on_duplicate"]
    other = body.replace(b"Sync Failed", b"Sync Completed")
    assert receiver.handle("POST", AUTH, other).status == 422


def test_failing_hook_retries_with_backoff_then_fails_and_is_accepted_again(
    make: Callable[..., Receiver],
    queue: ListQueue,
    store: MemoryStore,
    recorder: Recorder,
    codat_clock: FakeClock,
) -> None:
    receiver = make(retries=RetryPolicy(attempts=3, first=10, cap=15, jitter=0))
    body = sample_body("Sync Connection Deleted")
    key = key_of(body)
    receiver.handle("POST", AUTH, body)
    recorder.fail("on_sync_connection_deleted", times=3)
    delays = []
    for _ in range(2):
        work = receiver.process_queued(key)
        assert work.outcome == "failed"
        delays.append(work.retry_in)
        record = store.get(key)
        assert record is not None
        assert record.state is State.QUEUED
        assert record.last_error is not None
        assert "Recorder.fail" in record.last_error
        assert store.due() == []  # not before its backoff
        codat_clock.advance(20)
        assert store.due() == [key]
    assert delays == [10, 15]
    assert "on_handler_error" not in recorder.names()
    last = receiver.process_queued(key)
    assert (last.outcome, last.retry_in) == ("failed", None)
    record = store.get(key)
    assert record is not None
    assert (record.state, record.attempts) == (State.FAILED, 3)
    assert [
        call.arguments["delivery"].attempt for call in recorder.calls_to("on_handler_error")
    ] == [3]
    # exhausted: Codat's (or a resend's) next copy is accepted and queued again
    assert receiver.handle("POST", AUTH, body).status == 202
    assert receiver.process_queued(key).outcome == "processed"


def test_store_or_queue_failure_is_503_and_the_sweep_finds_the_recorded_key(
    make: Callable[..., Receiver], store: MemoryStore, codat_clock: FakeClock
) -> None:
    class Down(MemoryStore):
        def enqueue(self, entry: Entry, *, attempt: object = None) -> Claim:
            raise StoreError("connection refused")

    body = sample_body("Sync Failed")
    reply = make(store=Down()).handle("POST", AUTH, body)
    assert (reply.status, reply.outcome) == (503, "unavailable")
    assert "Retry-After" in dict(reply.headers)

    receiver = make(queue=ListQueue(broken=True))
    reply = receiver.handle("POST", AUTH, body)
    assert (reply.status, reply.outcome) == (503, "unavailable")
    assert store.due(older_than=60) == []
    codat_clock.advance(61)
    assert store.due(older_than=60) == [key_of(body)]
    assert receiver.handle("POST", AUTH, body).outcome == "duplicate"


def test_async_path_queues_and_async_hooks_run_on_workers(
    make: Callable[..., Receiver], queue: ListQueue
) -> None:
    seen: list[int] = []

    class Async:
        @hookimpl
        async def on_rate_limit_reached(self, delivery: Delivery) -> None:
            await asyncio.sleep(0)
            seen.append(delivery.attempt)

    receiver = make((Async(),))
    body = sample_body("Rate Limit Reached")
    reply = asyncio.run(receiver.handle_async("POST", AUTH, body))
    assert reply.status == 202
    assert receiver.process_queued(queue.keys[0]).outcome == "processed"
    assert seen == [1]
    body = sample_body("Rate Limit Reached")
    asyncio.run(receiver.handle_async("POST", AUTH, body))
    assert asyncio.run(receiver.process_queued_async(queue.keys[1])).outcome == "processed"
    assert seen == [1, 1]


def test_default_retries_span_hours_and_grow_with_jitter_inside_bounds() -> None:
    policy = RetryPolicy()
    delays = [policy.delay(attempt) for attempt in range(1, policy.attempts)]
    assert all(delay is not None for delay in delays)
    assert policy.delay(policy.attempts) is None
    longest = sum(min(policy.cap, policy.first * 2 ** (n - 1)) for n in range(1, policy.attempts))
    assert longest > 6 * 3600
    for attempt in range(1, 20):
        delay = policy.delay(attempt)
        if delay is not None:
            base = min(policy.cap, policy.first * 2 ** (attempt - 1))
            assert base * (1 - policy.jitter) <= delay <= base
