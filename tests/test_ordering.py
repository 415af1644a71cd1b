"""Ordering through the receiver: scopes read from typed payloads, ``delivery.stale`` /
``.newer`` / ``.gap``, and the ``stale="skip"`` policy, inline and queued.

Payload shapes follow Codat's event-types page (codat-docs
``docs/using-the-api/webhooks/event-types.md``) and ``codatio/oas`` ``json/Codat-Platform.json``
(``connection.*``: ``payload.referenceCompany`` and ``payload.connection``); the legacy
``DataConnectionStatusChanged`` data keys follow codat-docs
``docs/using-the-api/webhooks/legacy/core-rules-types.md``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from codat_webhooks import ConfigurationError, Delivery, Receiver, hookimpl
from codat_webhooks.event_types import EventType
from codat_webhooks.models import parse_alert, parse_event
from codat_webhooks.ordering import SCOPES, Newer, mark_of
from codat_webhooks.outcomes import Outcome
from codat_webhooks.replaying import replay_record, replaying_receiver
from codat_webhooks.rules import RuleType
from codat_webhooks.stores import MemoryStore, State
from codat_webhooks.testing import event_sample, legacy_sample
from tests.queues.test_queued_receiver import ListQueue

COMPANY = "8a210b68-6988-11ed-a1eb-0242ac120002"
COMPANY_HEX = COMPANY.replace("-", "")
RECONNECTED = "0b7b8b1e-6a51-4f5e-9a39-6c1f2f6c0a01"
DISCONNECTED = "0b7b8b1e-6a51-4f5e-9a39-6c1f2f6c0a02"
CONNECTION = "2e9d2c44-f675-40ba-8049-353bfcb5e171"
CONNECTION_HEX = CONNECTION.replace("-", "")  # scopes spell UUIDs as 32 hex digits


def connection_event(kind: EventType, generated: str, key: str | None = None) -> dict[str, Any]:
    body = event_sample(kind, company_id=COMPANY, event_id=key or str(uuid.uuid4()))
    body["generatedDate"] = generated
    body["payload"]["connection"]["id"] = CONNECTION
    return body


def status_change(old: str, new: str, connection: str = CONNECTION) -> dict[str, Any]:
    return legacy_sample(
        RuleType.DATA_CONNECTION_STATUS_CHANGED,
        company_id=COMPANY,
        overrides={
            "Data.oldStatus": old,
            "Data.newStatus": new,
            "Data.dataConnectionId": connection,
            "DataConnectionId": connection,
        },
    )


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


class Recorder:
    def __init__(self) -> None:
        self.ran: list[tuple[str, Delivery]] = []
        self.stale: list[tuple[object, Delivery]] = []

    @hookimpl
    def on_event(self, event: Any, delivery: Delivery) -> None:
        self.ran.append((event.event_type, delivery))

    @hookimpl
    def on_alert(self, alert: Any, delivery: Delivery) -> None:
        self.ran.append((alert.rule_type, delivery))

    @hookimpl
    def on_stale(self, payload: object, delivery: Delivery) -> None:
        self.stale.append((payload, delivery))


def make(stale: str = "deliver", **options: Any) -> tuple[Receiver, Recorder]:
    recorder = Recorder()
    receiver = Receiver(
        insecure=True,
        store=MemoryStore(),
        plugins=[recorder],
        load_entrypoints=False,
        stale=stale,  # type: ignore[arg-type]
        **options,
    )
    return receiver, recorder


# --- scopes ---------------------------------------------------------------------------------


def test_every_scope_type_has_a_mark_and_unscoped_types_have_none() -> None:
    scoped = {kind for spec in SCOPES for kind in spec.types}
    for kind in EventType:
        mark = mark_of(parse_event(event_sample(kind)))
        assert (mark is not None) == (kind in scoped), kind
        if mark is not None:
            assert mark.at == datetime(2026, 11, 24, 14, 15, 27, tzinfo=timezone.utc).timestamp()
    for rule in RuleType:
        mark = mark_of(parse_alert(legacy_sample(rule)))
        assert (mark is not None) == (rule is RuleType.DATA_CONNECTION_STATUS_CHANGED), rule


def test_connection_events_of_one_connection_share_a_scope_and_others_do_not() -> None:
    def scope(body: dict[str, Any]) -> str:
        mark = mark_of(parse_event(body))
        assert mark is not None
        return mark.scope

    connected = connection_event(EventType.CONNECTION_CONNECTED, "2026-11-24T10:00:00Z")
    deleted = connection_event(EventType.CONNECTION_DELETED, "2026-11-24T11:00:00Z")
    other = event_sample(EventType.CONNECTION_CONNECTED, company_id=COMPANY)
    assert scope(connected) == scope(deleted) == f"connection:{COMPANY_HEX}:{CONNECTION_HEX}"
    assert scope(other) != scope(connected)
    product = event_sample(EventType.COMPANY_PRODUCT_ADDED, company_id=COMPANY)
    assert scope(product) == f"company.product:{COMPANY_HEX}:lending"
    assert scope(event_sample(EventType.CLIENT_RATE_LIMIT_RESET)) == "client.rateLimit"


@pytest.mark.parametrize(
    "spelling",
    [CONNECTION.upper(), CONNECTION_HEX, f"{{{CONNECTION}}}", f"urn:uuid:{CONNECTION}"],
)
def test_every_spelling_of_one_connection_id_names_one_scope(spelling: str) -> None:
    body = connection_event(EventType.CONNECTION_CONNECTED, "2026-11-24T10:00:00Z")
    body["payload"]["connection"]["id"] = spelling
    body["payload"]["referenceCompany"]["id"] = COMPANY.upper()
    mark = mark_of(parse_event(body))
    assert mark is not None
    assert mark.scope == f"connection:{COMPANY_HEX}:{CONNECTION_HEX}"


@settings(max_examples=200, deadline=None)
@given(company=st.uuids(), connection=st.uuids())
@example(company=uuid.UUID(int=1), connection=uuid.UUID(int=2**127))  # leading zeros, top bit
def test_scope_text_spells_each_uuid_as_its_hex(company: uuid.UUID, connection: uuid.UUID) -> None:
    """The digits scopes are kept under, in every store: ``UUID.hex``, however they are made."""
    assume(company.int and connection.int)  # an all-zero Codat ID reads as no ID
    body = connection_event(EventType.CONNECTION_CONNECTED, "2026-11-24T10:00:00Z")
    body["payload"]["connection"]["id"] = str(connection)
    body["payload"]["referenceCompany"]["id"] = str(company)
    mark = mark_of(parse_event(body))
    assert mark is not None
    assert mark.scope == f"connection:{company.hex}:{connection.hex}"


def test_a_scoped_event_without_an_identity_or_a_date_has_no_mark() -> None:
    body = connection_event(EventType.CONNECTION_CONNECTED, "2026-11-24T10:00:00Z")
    body["payload"]["connection"] = None
    assert mark_of(parse_event(body)) is None
    undated = connection_event(EventType.CONNECTION_CONNECTED, "2026-11-24T10:00:00Z")
    del undated["generatedDate"]
    assert mark_of(parse_event(undated)) is None


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.none()
    ),
    zone=st.sampled_from(["Z", "+00:00", "+05:30", "-08:00", ""]),
    digits=st.integers(0, 9),
    extra=st.integers(0, 999),
    separator=st.sampled_from(["T", " "]),
)
def test_generated_date_as_text_and_as_model_give_one_instant(
    moment: datetime, zone: str, digits: int, extra: int, separator: str
) -> None:
    # The receiver reads generatedDate from the JSON text; a queued worker, holding only the
    # model, from the parsed datetime. A key's own mark and its recheck must agree.
    fraction = f"{moment.microsecond:06d}{extra:03d}"[:digits]
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + (f".{fraction}" if digits else "")
    body = connection_event(EventType.CONNECTION_CONNECTED, text + zone)
    obj = json.loads(json.dumps(body))
    event = parse_event(obj)
    from_text, from_model = mark_of(event, obj), mark_of(event)
    assert from_text is not None
    assert from_model is not None
    assert from_text == from_model
    assert event.generated_date is not None
    assert from_text.at == event.generated_date.timestamp()


def test_generated_date_in_a_form_only_the_model_reads_comes_from_the_model() -> None:
    body = connection_event(EventType.CONNECTION_CONNECTED, "2026-11-24T10:00:00z")
    event = parse_event(body)
    mark = mark_of(event, body)
    assert mark is not None
    assert mark.at == datetime(2026, 11, 24, 10, tzinfo=timezone.utc).timestamp()


def test_the_legacy_chain_mark_carries_both_statuses() -> None:
    mark = mark_of(parse_alert(status_change("Linked", "Unlinked")))
    assert mark is not None
    assert (mark.at, mark.old_status, mark.new_status) == (None, "Linked", "Unlinked")
    assert mark.scope == f"DataConnectionStatusChanged:{COMPANY_HEX}:{CONNECTION_HEX}"


def test_an_unknown_policy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="stale"):
        make("drop")


# --- the receiver ---------------------------------------------------------------------------


REORDERED = (
    connection_event(EventType.CONNECTION_RECONNECTED, "2026-11-24T10:05:00Z", RECONNECTED),
    connection_event(EventType.CONNECTION_DISCONNECTED, "2026-11-24T10:00:00Z", DISCONNECTED),
)
"""The issue's example: a disconnect whose first attempt failed arrives after the reconnect."""


def test_by_default_a_stale_delivery_runs_its_hooks_flagged_stale() -> None:
    receiver, recorder = make()
    replies = [receiver.handle("POST", {}, raw(body)) for body in REORDERED]
    assert [reply.outcome for reply in replies] == ["processed", "processed"]
    (_, newer), (_, older) = recorder.ran
    assert (newer.stale, newer.newer, newer.gap) == (False, None, False)
    assert older.stale
    generated = datetime(2026, 11, 24, 10, 5, tzinfo=timezone.utc)
    assert older.newer == Newer(RECONNECTED, generated)
    assert recorder.stale == []


def test_skip_runs_on_stale_instead_and_answers_200_stale() -> None:
    receiver, recorder = make("skip")
    receiver.handle("POST", {}, raw(REORDERED[0]))
    reply = receiver.handle("POST", {}, raw(REORDERED[1]))
    assert (reply.status, reply.outcome) == (200, Outcome.STALE)
    assert json.loads(reply.body)["outcome"] == "stale"
    assert [kind for kind, _ in recorder.ran] == ["connection.reconnected"]
    [(payload, delivery)] = recorder.stale
    assert getattr(payload, "event_type", None) == "connection.disconnected"
    assert delivery.newer is not None
    assert delivery.newer.key == RECONNECTED
    record = receiver.store.get(DISCONNECTED)
    assert record is not None
    assert record.state is State.DONE
    [skipped] = receiver.store.history(DISCONNECTED)  # the attempt is on the record
    assert (skipped.status, skipped.outcome) == (200, "stale")
    assert receiver.handle("POST", {}, raw(REORDERED[1])).outcome == "duplicate"


def test_skip_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    receiver, _ = make("skip")
    receiver.handle("POST", {}, raw(REORDERED[0]))
    with caplog.at_level(logging.INFO, logger="codat_webhooks"):
        receiver.handle("POST", {}, raw(REORDERED[1]))
    [record] = [r for r in caplog.records if getattr(r, "outcome", None) == "stale"]
    assert record.levelno == logging.INFO
    assert DISCONNECTED in record.getMessage()


def test_in_order_deliveries_are_never_stale_under_skip() -> None:
    receiver, recorder = make("skip")
    for body in reversed(REORDERED):
        assert receiver.handle("POST", {}, raw(body)).outcome == "processed"
    assert [d.stale for _, d in recorder.ran] == [False, False]


def test_replay_of_a_stale_key_follows_the_policy_unless_forced() -> None:
    receiver, recorder = make("skip")
    receiver.handle("POST", {}, raw(REORDERED[0]))
    receiver.handle("POST", {}, raw(REORDERED[1]))
    record = receiver.store.get(DISCONNECTED)
    assert record is not None
    replayer = replaying_receiver(receiver)
    assert replay_record(replayer, record).outcome == "skipped"  # done: nothing to run
    forced = replay_record(replayer, record, force=True)
    assert forced.outcome == Outcome.PROCESSED
    assert recorder.ran[-1][1].stale  # ran, and still told it is stale


def test_a_replay_without_force_of_a_failed_stale_key_is_skipped() -> None:
    class Failing(Recorder):
        fail = True

        @hookimpl
        def on_event(self, event: Any, delivery: Delivery) -> None:
            if self.fail:
                raise RuntimeError("down")

    failing = Failing()
    receiver = Receiver(insecure=True, store=MemoryStore(), plugins=[failing], stale="deliver")
    receiver.handle("POST", {}, raw(REORDERED[0]))
    assert receiver.handle("POST", {}, raw(REORDERED[1])).outcome == "failed"
    record = receiver.store.get(DISCONNECTED)
    assert record is not None
    skipper = Receiver(
        insecure=True, store=receiver.store, dispatcher=receiver.dispatcher, stale="skip"
    )
    assert replay_record(replaying_receiver(skipper), record).outcome == Outcome.STALE


def test_legacy_status_chain_gap_is_flagged_never_skipped() -> None:
    receiver, recorder = make("skip")
    for old, new in (("PendingAuth", "Linked"), ("Linked", "Unlinked"), ("Deauthorized", "Linked")):
        assert receiver.handle("POST", {}, raw(status_change(old, new))).outcome == "processed"
    assert [d.gap for _, d in recorder.ran] == [False, False, True]
    assert not any(d.stale for _, d in recorder.ran)


def test_queued_the_worker_rechecks_and_skips_what_became_stale() -> None:
    queue = ListQueue()
    receiver, recorder = make("skip", queue=queue)
    older, newer = REORDERED[1], REORDERED[0]
    assert receiver.handle("POST", {}, raw(older)).outcome == "queued"
    assert receiver.handle("POST", {}, raw(newer)).outcome == "queued"
    # both were in order when accepted; the worker runs the newer one first
    assert receiver.process_queued(RECONNECTED).outcome == Outcome.PROCESSED
    assert receiver.process_queued(DISCONNECTED).outcome == Outcome.STALE
    assert [kind for kind, _ in recorder.ran] == ["connection.reconnected"]
    assert [d.key for _, d in recorder.stale] == [DISCONNECTED]
    assert receiver.store.get(DISCONNECTED).state is State.DONE  # type: ignore[union-attr]
    verdict = receiver.store.verdict(DISCONNECTED)
    assert verdict is not None
    assert verdict.stale


def test_queued_stale_at_enqueue_is_stale_on_the_worker_with_deliver() -> None:
    queue = ListQueue()
    receiver, recorder = make(queue=queue)
    for body in REORDERED:
        receiver.handle("POST", {}, raw(body))
    for key in queue.keys:
        receiver.process_queued(key)
    assert [(d.key, d.stale) for _, d in recorder.ran] == [
        (RECONNECTED, False),
        (DISCONNECTED, True),
    ]


def test_skip_works_the_same_on_the_async_path() -> None:
    receiver, recorder = make("skip")
    first = asyncio.run(receiver.handle_async("POST", {}, raw(REORDERED[0])))
    assert first.outcome == "processed"
    reply = asyncio.run(receiver.handle_async("POST", {}, raw(REORDERED[1])))
    assert (reply.status, reply.outcome) == (200, "stale")
    assert [d.key for _, d in recorder.stale] == [DISCONNECTED]


def test_the_async_worker_rechecks_too() -> None:
    queue = ListQueue()
    receiver, recorder = make("skip", queue=queue)

    async def run() -> list[str]:
        for body in reversed(REORDERED):  # older first: both in order when accepted
            await receiver.handle_async("POST", {}, raw(body))
        newer = await receiver.process_queued_async(RECONNECTED)
        older = await receiver.process_queued_async(DISCONNECTED)
        return [newer.outcome, older.outcome]

    assert asyncio.run(run()) == [Outcome.PROCESSED, Outcome.STALE]
    assert [d.key for _, d in recorder.stale] == [DISCONNECTED]
