"""New-service events: the event table, a model test and a hook test for every event type."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import codat_webhooks
from codat_webhooks import Event, PayloadError, Receiver, hookimpl, parse_event
from codat_webhooks.event_types import EVENTS, EventType, hook_name_for
from codat_webhooks.hooks import alert_specs, event_specs
from codat_webhooks.hookspecs import SPEC_MODULES
from codat_webhooks.models import events as models
from codat_webhooks.rules import RuleType
from codat_webhooks.testing import event_body, event_sample, event_type_string

ALL_TYPES = list(EventType)
IDS = [kind.name.lower() for kind in ALL_TYPES]


# --- The table ------------------------------------------------------------------------------


def _spec_names(module: object) -> set[str]:
    return {
        name
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if hasattr(function, "codat_webhooks_spec")
    }


def test_table_has_one_row_per_event_type_and_hooks_are_mechanical() -> None:
    assert [spec.type for spec in EVENTS] == ALL_TYPES
    assert hook_name_for("{dataType}.write.successful") == "on_write_successful"
    assert hook_name_for("client.rateLimit.reached") == "on_client_rate_limit_reached"
    assert hook_name_for("bankFeeds.sourceAccount.connected") == (
        "on_bank_feeds_source_account_connected"
    )
    assert EventType.READ_COMPLETED_INITIAL.hook == "on_read_completed_initial"
    assert all(spec.hook == spec.type.hook for spec in EVENTS)


def test_hookspecs_match_the_table_exactly() -> None:
    table = {kind.hook for kind in EventType}
    assert len(table) == len(ALL_TYPES)
    assert _spec_names(event_specs) == table | {"on_event", "on_unknown_event"}
    assert not table & _spec_names(alert_specs), "an event hook collides with a legacy hook"
    assert event_specs in SPEC_MODULES


def test_every_event_hookspec_is_documented_with_its_arguments() -> None:
    for name in _spec_names(event_specs):
        function = getattr(event_specs, name)
        assert (function.__doc__ or "").strip(), name
        assert list(inspect.signature(function).parameters) == ["event", "delivery"], name


def test_every_event_type_has_a_model() -> None:
    assert set(models.EVENT_CLASSES) == set(EventType)


def test_top_level_exports() -> None:
    assert {"Event", "parse_event"} <= set(codat_webhooks.__all__)
    assert codat_webhooks.Event is models.Event


@pytest.mark.parametrize(
    ("text", "kind", "parameter"),
    [
        ("invoices.write.successful", EventType.WRITE_SUCCESSFUL, "invoices"),
        (
            "bankFeeds.accounts.write.unsuccessful",
            EventType.WRITE_UNSUCCESSFUL,
            "bankFeeds.accounts",
        ),
        (
            "report.categorizedBankStatement.generate.successful",
            EventType.REPORT_GENERATE_SUCCESSFUL,
            "categorizedBankStatement",
        ),
        (
            "reports.spendAnalysis.generate.unsuccessful",
            EventType.REPORT_GENERATE_UNSUCCESSFUL,
            "spendAnalysis",
        ),
        ("Connection.Connected", EventType.CONNECTION_CONNECTED, None),
        (" client.ratelimit.reached ", EventType.CLIENT_RATE_LIMIT_REACHED, None),
        ("read.completed.initial", EventType.READ_COMPLETED_INITIAL, None),
    ],
)
def test_match_recognises_patterns_and_spellings(
    text: str, kind: EventType, parameter: str | None
) -> None:
    found = EventType.match(text)
    assert found is not None
    assert (found.type, found.parameter) == (kind, parameter)


@pytest.mark.parametrize(
    "text", ["ReadCompleted", "read", ".write.successful", "connection.connected.extra", 7, None]
)
def test_match_rejects_unknown_types(text: object) -> None:
    assert EventType.match(text) is None


def test_transitional_names_are_legacy_rules_not_events() -> None:
    for name in ("DataConnectionStatusChanged", "AccountCategoriesUpdated", "ClientRateLimitReset"):
        assert EventType.parse(name) is None
        assert RuleType.parse(name) is not None
    for kind in EventType:
        assert RuleType.parse(event_type_string(kind)) is None


# --- Models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_TYPES, ids=IDS)
def test_every_sample_parses_into_its_model(kind: EventType) -> None:
    company = uuid.uuid4()
    body = event_sample(kind, company_id=company)
    event = parse_event(body)

    assert type(event) is models.EVENT_CLASSES[kind]
    assert event.kind is kind
    assert event.event_type == body["eventType"]
    assert event.id == uuid.UUID(body["id"])
    assert event.generated_date is not None
    assert event.generated_date.tzinfo is not None
    client_wide = kind in (EventType.CLIENT_RATE_LIMIT_REACHED, EventType.CLIENT_RATE_LIMIT_RESET)
    assert event.company_id == (None if client_wide else company)
    # Round trip: Codat's own spelling back, and the same model again.
    dumped = event.model_dump(by_alias=True, mode="json")
    assert dumped["eventType"] == body["eventType"]
    assert parse_event(dumped) == event


def test_payload_fields_are_typed() -> None:
    connection = parse_event(event_sample(EventType.CONNECTION_CONNECTED)).payload
    assert isinstance(connection, models.ConnectionPayload)
    assert connection.connection is not None
    assert connection.connection.status == "Linked"
    assert connection.connection.integration_key == "gbol"
    assert isinstance(connection.connection.id, uuid.UUID)
    assert connection.reference_company is not None
    assert connection.reference_company.tags == {"region": "uk"}

    read = parse_event(event_sample(EventType.READ_COMPLETED)).payload
    assert isinstance(read, models.ReadCompletedPayload)
    assert read.data_types is not None
    assert [(d.data_type, d.records_modified, d.status) for d in read.data_types] == [
        ("invoices", True, "Complete")
    ]

    write = parse_event(event_sample(EventType.WRITE_SUCCESSFUL, data_type="bills"))
    assert isinstance(write, models.WriteEvent)
    assert write.data_type == "bills"
    assert write.payload.record is not None
    assert write.payload.record.id == "inv_sedi984199smdjsua9124"
    # The write request ID is a plain string in dataTypeWriteWebhookPayload (no format: uuid).
    assert isinstance(write.payload.id, str)

    limit = parse_event(event_sample(EventType.CLIENT_RATE_LIMIT_REACHED)).payload
    assert isinstance(limit, models.ClientRateLimitPayload)
    assert (limit.daily_quota, limit.quota_remaining) == (1000, 0)
    assert limit.expiry_date is not None
    assert limit.expiry_date.tzinfo is not None

    account = parse_event(event_sample(EventType.BANK_FEEDS_SOURCE_ACCOUNT_CONNECTED)).payload
    assert isinstance(account, models.SourceAccountPayload)
    assert account.source_account is not None
    assert account.source_account.balance == Decimal("99.99")

    report = parse_event(event_sample(EventType.REPORT_GENERATE_SUCCESSFUL))
    assert isinstance(report, models.ReportEvent)
    assert report.report_type == "spendAnalysis"


@pytest.mark.parametrize("kind", ALL_TYPES, ids=IDS)
def test_missing_null_or_empty_payload_still_parses(kind: EventType) -> None:
    type_string = event_type_string(kind)
    body: dict[str, Any]
    for body in (
        {"eventType": type_string},
        {"eventType": type_string, "payload": None},
        {"eventType": type_string, "payload": {}, "id": "", "generatedDate": None},
    ):
        event = parse_event(body)
        assert event.kind is kind
        assert event.id is None
        assert event.company_id is None


def test_blank_ids_become_none_and_extras_are_kept() -> None:
    body = event_sample(
        EventType.CONNECTION_CONNECTED,
        overrides={"payload.futureField": {"x": 1}, "topLevelExtra": True},
    )
    body["payload"]["connection"]["id"] = ""
    body["payload"]["referenceCompany"]["id"] = "00000000-0000-0000-0000-000000000000"
    event = parse_event(body)
    assert event.payload.connection is not None
    assert event.payload.connection.id is None
    assert event.company_id is None
    assert event.model_extra == {"topLevelExtra": True}
    assert event.payload.model_extra == {"futureField": {"x": 1}}


def test_unknown_event_type_is_an_event_with_a_dict_payload() -> None:
    event = parse_event({"eventType": "payroll.run.completed", "payload": {"a": 1}})
    assert type(event) is Event
    assert event.kind is None
    assert event.payload == {"a": 1}


@pytest.mark.parametrize(
    "body",
    [
        {"payload": {}},
        {"eventType": 5},
        {"eventType": "company.created", "payload": []},
        {"eventType": "company.created", "payload": "text"},
        {"eventType": "connection.connected", "payload": {"connection": {"id": "not-a-guid"}}},
        {"eventType": "client.rateLimit.reached", "payload": {"dailyQuota": "lots"}},
        {"eventType": "read.completed", "payload": {"dataTypes": {"not": "a list"}}},
    ],
)
def test_invalid_events_raise_payload_error_422(body: dict[str, Any]) -> None:
    with pytest.raises(PayloadError) as info:
        parse_event(body)
    assert info.value.status_hint == 422


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff"])
def test_non_objects_raise_payload_error_400(body: bytes) -> None:
    with pytest.raises(PayloadError) as info:
        parse_event(body)
    assert info.value.status_hint == 400


def test_samples_have_fresh_ids_per_call() -> None:
    first, second = event_sample("connection.created"), event_sample("connection.created")
    assert first["id"] != second["id"]
    assert first["payload"]["connection"]["id"] != second["payload"]["connection"]["id"]


# --- Hooks through the receiver -------------------------------------------------------------


def _recording_plugin(calls: list[tuple[str, Any]]) -> object:
    """A plugin implementing every event hook, on_alert and on_handler_error, recording calls."""

    def recorder(hook: str) -> Any:
        def record(self: object, event: Any, delivery: Any) -> None:
            calls.append((hook, event))

        record.__name__ = hook
        return hookimpl(record)

    names = [kind.hook for kind in EventType] + ["on_event", "on_unknown_event"]
    namespace = {name: recorder(name) for name in names}

    def on_alert(self: object, alert: Any) -> None:
        calls.append(("on_alert", alert))

    namespace["on_alert"] = hookimpl(on_alert)
    return type("EventRecorder", (), namespace)()


@pytest.fixture
def make_receiver(codat_make_receiver: Callable[..., Receiver]) -> Callable[..., Receiver]:
    """Receivers from the shared fixtures, unauthenticated: these tests are about routing."""

    def make(*plugins: object) -> Receiver:
        return codat_make_receiver(
            list(plugins), authorization=None, signing_secrets=None, insecure=True
        )

    return make


@pytest.mark.parametrize("kind", ALL_TYPES, ids=IDS)
def test_each_event_type_reaches_its_hook_then_on_event(
    kind: EventType, make_receiver: Callable[..., Receiver]
) -> None:
    calls: list[tuple[str, Any]] = []
    receiver = make_receiver(_recording_plugin(calls))
    body = event_body(kind, data_type="journalEntries", report_type="categorizedBankStatement")
    reply = receiver.handle("POST", {}, body)

    assert (reply.status, reply.outcome) == (200, "processed")
    assert [hook for hook, _ in calls] == [kind.hook, "on_event"]
    event = calls[0][1]
    assert calls[1][1] is event
    assert isinstance(event, models.EVENT_CLASSES[kind])
    if isinstance(event, models.WriteEvent):
        assert event.data_type == "journalEntries"
    if isinstance(event, models.ReportEvent):
        assert event.report_type == "categorizedBankStatement"
    record = receiver.store.get(reply.key or "")
    assert record is not None
    assert record.kind == event.event_type


def test_unknown_event_reaches_on_unknown_event_and_succeeds(
    make_receiver: Callable[..., Receiver],
) -> None:
    calls: list[tuple[str, Any]] = []
    receiver = make_receiver(_recording_plugin(calls))
    reply = receiver.handle("POST", {}, event_body("payroll.run.completed"))
    assert (reply.status, reply.outcome) == (200, "processed")
    assert [hook for hook, _ in calls] == ["on_unknown_event", "on_event"]


def test_body_id_is_the_key_without_a_webhook_id_header(
    make_receiver: Callable[..., Receiver],
) -> None:
    receiver = make_receiver()
    body = event_body(EventType.COMPANY_CREATED)
    first = receiver.handle("POST", {}, body)
    assert first.key == parse_event(body).model_dump(mode="json")["id"]
    assert receiver.handle("POST", {}, body).outcome == "duplicate"


class _Failing:
    def __init__(self) -> None:
        self.errors: list[tuple[Any, Exception]] = []

    @hookimpl
    def on_connection_connected(self, event: Any) -> None:
        raise RuntimeError("downstream is down")

    @hookimpl
    def on_handler_error(self, alert: Any, error: Exception) -> None:
        self.errors.append((alert, error))


def test_a_failing_event_hook_gives_503_and_on_handler_error_gets_the_event_as_alert(
    make_receiver: Callable[..., Receiver],
) -> None:
    failing = _Failing()
    receiver = make_receiver(failing)
    reply = receiver.handle("POST", {}, event_body(EventType.CONNECTION_CONNECTED))
    assert (reply.status, reply.outcome) == (503, "failed")
    [(alert, error)] = failing.errors
    assert isinstance(alert, models.ConnectionEvent)
    assert str(error) == "downstream is down"


async def _async_collect(receiver: Receiver, body: bytes) -> Any:
    return await receiver.handle_async("POST", {}, body)


def test_async_event_hooks_run_under_handle_async(make_receiver: Callable[..., Receiver]) -> None:
    import asyncio

    seen: list[str] = []

    class AsyncHandlers:
        @hookimpl
        async def on_read_completed(self, event: Any) -> None:
            await asyncio.sleep(0)
            seen.append(event.event_type)

    receiver = make_receiver(AsyncHandlers())
    reply = asyncio.run(_async_collect(receiver, event_body(EventType.READ_COMPLETED)))
    assert reply.status == 200
    assert seen == ["read.completed"]


def test_an_event_sent_with_type_is_written_back_with_type_after_copy_and_pickle() -> None:
    import copy
    import pickle

    body = event_sample(EventType.CONNECTION_CONNECTED)
    body["type"] = body.pop("eventType")
    event = parse_event(body)
    documented = parse_event(event_sample(EventType.CONNECTION_CONNECTED) | {"id": body["id"]})

    pickled = pickle.loads(pickle.dumps(event))  # noqa: S301 - our own bytes
    for kept in (event, copy.copy(event), copy.deepcopy(event), pickled):
        dumped = kept.model_dump(by_alias=True, mode="json")
        assert dumped["type"] == "connection.connected"
        assert "eventType" not in dumped
        assert kept == event
    # The same event under the documented key dumps it that way, and is told apart.
    assert "eventType" in documented.model_dump(by_alias=True)
    assert documented.event_type == event.event_type
    assert documented != event
    # By field name, nothing changes.
    assert event.model_dump()["event_type"] == "connection.connected"
