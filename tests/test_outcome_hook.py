"""``on_outcome``: called once for every answer and every worker run, and only observing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from codat_webhooks import Receiver, StoreError, hookimpl
from codat_webhooks.errors import PayloadError, VerificationError
from codat_webhooks.observe import HookTiming
from codat_webhooks.queues import RetryPolicy
from codat_webhooks.stores import Entry, MemoryStore
from codat_webhooks.testing import Recorder, sample_body
from tests.queues.test_queued_receiver import ListQueue

AUTH = {"Authorization": "Bearer s3cret"}
COMPANY = "e64b69df-c5b3-4056-befc-1ffd406de275"


class Outcomes:
    """Keeps every ``on_outcome`` call's arguments."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    @hookimpl
    def on_outcome(
        self,
        outcome: str,
        status: int | None,
        key: str | None,
        kind: str | None,
        company_id: str | None,
        attempt: int,
        duration: float,
        hooks: tuple[HookTiming, ...],
        error: BaseException | None,
        delivery: Any,
        reply: Any,
        worker: bool,
    ) -> None:
        self.seen.append(dict(locals()))
        del self.seen[-1]["self"]

    def last(self) -> dict[str, Any]:
        return self.seen[-1]


class Unreachable(MemoryStore):
    def claim(
        self, entry: Entry, *, lease: float, force: bool = False, attempt: object = None
    ) -> Any:
        raise StoreError("connection refused")


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes()


@pytest.fixture
def make(
    codat_make_receiver: Callable[..., Receiver], outcomes: Outcomes
) -> Callable[..., Receiver]:
    def build(*plugins: object, **overrides: Any) -> Receiver:
        options: dict[str, Any] = {"authorization": "Bearer s3cret", "signing_secrets": None}
        options.update(overrides)
        return codat_make_receiver((outcomes, *plugins), **options)

    return build


def body(key: str, kind: str = "Dataset data changed") -> bytes:
    return sample_body(kind, alert_id=key, company_id=COMPANY)


def test_a_processed_delivery_reports_type_company_attempt_and_each_hook(
    make: Callable[..., Receiver], outcomes: Outcomes
) -> None:
    receiver = make()
    key = "7d3c9a50-0000-4000-8000-000000000001"
    reply = receiver.handle("POST", AUTH, body(key))
    seen = outcomes.last()
    assert (seen["outcome"], seen["status"], seen["key"]) == ("processed", 200, key)
    assert (seen["kind"], seen["company_id"], seen["attempt"]) == (
        "Dataset data changed",
        COMPANY,
        1,
    )
    assert seen["reply"] is reply
    assert seen["delivery"].key == key
    assert [timing.name for timing in seen["hooks"]] == ["on_dataset_data_changed", "on_alert"]
    assert all(timing.error is None and timing.seconds >= 0 for timing in seen["hooks"])
    assert seen["duration"] >= sum(timing.seconds for timing in seen["hooks"])
    assert (seen["error"], seen["worker"]) == (None, False)
    assert len(outcomes.seen) == 1


def test_only_the_hooks_with_an_implementation_are_timed(outcomes: Outcomes) -> None:
    """The rule's own hook has no implementation here: it ran nothing, so it has no timing
    (and no histogram series or span), in both drivers."""

    class OnlyOnAlert:
        @hookimpl
        def on_alert(self) -> None:
            pass

    receiver = Receiver(
        authorization="Bearer s3cret",
        store=MemoryStore(),
        plugins=[OnlyOnAlert(), outcomes],
        load_entrypoints=False,
    )
    receiver.handle("POST", AUTH, body("7d3c9a50-0000-4000-8000-000000000011"))
    asyncio.run(receiver.handle_async("POST", AUTH, body("7d3c9a50-0000-4000-8000-000000000012")))
    for seen in outcomes.seen:
        assert seen["outcome"] == "processed"
        assert [timing.name for timing in seen["hooks"]] == ["on_alert"]


def test_every_rejection_and_503_is_reported_once(
    make: Callable[..., Receiver], outcomes: Outcomes, codat_recorder: Recorder
) -> None:
    receiver = make()
    key = "7d3c9a50-0000-4000-8000-000000000002"
    raw = body(key)
    receiver.handle("POST", AUTH, raw)
    receiver.handle("POST", AUTH, raw)  # duplicate
    receiver.handle("POST", AUTH, body(key, "Data sync completed"))  # conflict
    receiver.handle("POST", {"Authorization": "Bearer wrong"}, body("x-1"))
    receiver.handle("POST", AUTH, b"not json")
    receiver.handle("POST", AUTH, json.dumps({"hello": "world"}).encode())
    receiver.handle("GET", AUTH, b"")
    receiver.reject_too_large("POST", AUTH, 10_000_000)
    codat_recorder.fail("on_alert")
    receiver.handle("POST", AUTH, body("7d3c9a50-0000-4000-8000-000000000003"))
    answers = [(seen["outcome"], seen["status"]) for seen in outcomes.seen]
    assert answers == [
        ("processed", 200),
        ("duplicate", 200),
        ("conflict", 422),
        ("unauthorized", 401),
        ("invalid", 400),
        ("invalid", 422),
        ("method_not_allowed", 405),
        ("too_large", 413),
        ("failed", 503),
    ]
    by_outcome = {seen["outcome"]: seen for seen in outcomes.seen}
    # nothing a prober sent is labelled: no type, no company before authentication
    assert (by_outcome["unauthorized"]["kind"], by_outcome["unauthorized"]["company_id"]) == (
        None,
        None,
    )
    assert isinstance(by_outcome["unauthorized"]["error"], VerificationError)
    assert by_outcome["method_not_allowed"]["delivery"] is None
    failed = by_outcome["failed"]
    assert isinstance(failed["error"], RuntimeError)
    assert failed["hooks"][-1].name == "on_alert"
    assert failed["hooks"][-1].error is failed["error"]
    assert isinstance(outcomes.seen[5]["error"], PayloadError)


def test_in_progress_and_unavailable_are_reported(
    make: Callable[..., Receiver], outcomes: Outcomes, codat_store: MemoryStore
) -> None:
    key = "7d3c9a50-0000-4000-8000-000000000004"
    raw = body(key)
    receiver = make()
    codat_store.claim(Entry(key, hashlib.sha256(raw).hexdigest(), raw), lease=60)
    assert receiver.handle("POST", AUTH, raw).status == 503
    assert (outcomes.last()["outcome"], outcomes.last()["key"]) == ("in_progress", key)
    assert outcomes.last()["kind"] == "Dataset data changed"

    down = make(store=Unreachable())
    assert down.handle("POST", AUTH, body("7d3c9a50-0000-4000-8000-000000000005")).status == 503
    seen = outcomes.last()
    assert (seen["outcome"], seen["status"]) == ("unavailable", 503)
    assert isinstance(seen["error"], StoreError)
    assert seen["hooks"] == ()


def test_the_async_path_reports_the_same(make: Callable[..., Receiver], outcomes: Outcomes) -> None:
    receiver = make()
    key = "7d3c9a50-0000-4000-8000-000000000006"
    asyncio.run(receiver.handle_async("POST", AUTH, body(key)))
    asyncio.run(receiver.reject_too_large_async("POST", AUTH, None))
    assert [(s["outcome"], s["key"]) for s in outcomes.seen] == [
        ("processed", key),
        ("too_large", None),
    ]
    assert [t.name for t in outcomes.seen[0]["hooks"]] == ["on_dataset_data_changed", "on_alert"]


class Broken:
    @hookimpl(tryfirst=True)
    def on_outcome(self) -> None:
        raise RuntimeError("metrics backend down")


def test_an_on_outcome_error_never_changes_the_reply_nor_stops_other_observers(
    make: Callable[..., Receiver], outcomes: Outcomes, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = make(Broken())
    reply = receiver.handle("POST", AUTH, body("7d3c9a50-0000-4000-8000-000000000007"))
    assert (reply.status, reply.outcome) == (200, "processed")
    assert outcomes.last()["outcome"] == "processed"
    assert "on_outcome hook raised; ignored" in caplog.text
    assert asyncio.run(receiver.handle_async("GET", AUTH, b"")).status == 405


def test_without_an_implementation_the_receiver_does_not_watch(
    codat_make_receiver: Callable[..., Receiver],
) -> None:
    receiver = codat_make_receiver((), authorization="Bearer s3cret", signing_secrets=None)
    receiver.plugin_manager.unregister(name="codat_webhooks.log")
    assert receiver.dispatcher.observers() == ()
    assert receiver.handle("POST", AUTH, body("7d3c9a50-0000-4000-8000-000000000008")).status == 200
    late = Outcomes()
    receiver.plugin_manager.register(late)  # seen by the next delivery
    receiver.handle("POST", AUTH, body("7d3c9a50-0000-4000-8000-000000000009"))
    assert [seen["outcome"] for seen in late.seen] == ["processed"]
    assert not receiver.dispatcher.timed_observers or late.seen[0]["hooks"]


def test_worker_runs_report_processed_retry_and_failed(
    make: Callable[..., Receiver], outcomes: Outcomes, codat_recorder: Recorder
) -> None:
    queue = ListQueue()
    receiver = make(queue=queue, retries=RetryPolicy(attempts=2, first=0, cap=0))
    first, second = "7d3c9a50-0000-4000-8000-00000000000a", "7d3c9a50-0000-4000-8000-00000000000b"
    assert receiver.handle("POST", AUTH, body(first)).status == 202
    assert receiver.handle("POST", AUTH, body(second)).status == 202
    receiver.process_queued(first)
    codat_recorder.fail("on_alert", times=2)
    receiver.process_queued(second)
    receiver.process_queued(second)
    receiver.process_queued(second)  # nothing left to run
    answers = [(s["outcome"], s["status"], s["worker"], s["key"]) for s in outcomes.seen]
    assert answers == [
        ("queued", 202, False, first),
        ("queued", 202, False, second),
        ("processed", None, True, first),
        ("retry", None, True, second),
        ("failed", None, True, second),
        ("duplicate", None, True, second),
    ]
    retry, failed = outcomes.seen[3], outcomes.seen[4]
    assert (retry["attempt"], failed["attempt"]) == (1, 2)
    assert retry["kind"] == "Dataset data changed"
    assert retry["company_id"] == COMPANY
    assert isinstance(failed["error"], RuntimeError)
    assert failed["reply"] is None


def test_the_log_plugin_logs_in_progress_and_processed_at_info_with_fields(
    make: Callable[..., Receiver], codat_store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="codat_webhooks")
    receiver = make()
    key = "7d3c9a50-0000-4000-8000-00000000000c"
    raw = body(key)
    receiver.handle("POST", AUTH, raw)
    other = "7d3c9a50-0000-4000-8000-00000000000d"
    busy = body(other)
    codat_store.claim(Entry(other, hashlib.sha256(busy).hexdigest()), lease=60)
    receiver.handle("POST", AUTH, busy)
    records = [r for r in caplog.records if r.name == "codat_webhooks.receiver"]
    assert [(r.levelname, r.outcome, r.status) for r in records] == [  # type: ignore[attr-defined]
        ("INFO", "processed", 200),
        ("INFO", "in_progress", 503),
    ]
    processed = records[0]
    assert (processed.key, processed.type, processed.company, processed.attempt) == (  # type: ignore[attr-defined]
        key,
        "Dataset data changed",
        COMPANY,
        1,
    )
    assert processed.duration_ms >= 0  # type: ignore[attr-defined]
