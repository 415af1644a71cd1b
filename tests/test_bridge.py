"""The opt-in migration bridge: one test per row of Codat's migration table (FACTS §4)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from codat_webhooks import Alert, ConfigurationError, Receiver, RuleType, hookimpl
from codat_webhooks.event_types import EventType
from codat_webhooks.hooks.manager import BUILTIN_PLUGINS, load_builtin
from codat_webhooks.models import parse_event
from codat_webhooks.plugins import MigrationBridge
from codat_webhooks.plugins.bridge import translate
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import event_body, event_sample, sample_body


@dataclass
class LegacyCalls:
    calls: list[tuple[str, Alert]] = field(default_factory=list)

    @property
    def hooks(self) -> list[str]:
        return [hook for hook, _ in self.calls]

    def alerts(self, hook: str) -> list[Alert]:
        return [alert for name, alert in self.calls if name == hook]


def legacy_handlers(record: LegacyCalls) -> object:
    """A legacy-only plugin: every per-rule hook plus on_alert and on_unknown_alert."""

    def recorder(hook: str) -> Any:
        def handle(self: object, alert: Alert, delivery: Any) -> None:
            record.calls.append((hook, alert))

        handle.__name__ = hook
        return hookimpl(handle)

    names = [rule.hook for rule in RuleType] + ["on_alert", "on_unknown_alert"]
    return type("LegacyHandlers", (), {name: recorder(name) for name in names})()


def deliver(body: bytes) -> LegacyCalls:
    record = LegacyCalls()
    receiver = Receiver(
        insecure=True,
        store=MemoryStore(),
        plugins=[MigrationBridge(legacy_handlers(record))],
        load_entrypoints=False,
    )
    reply = receiver.handle("POST", {}, body)
    assert (reply.status, reply.outcome) == (200, "processed")
    return record


def _common(alert: Alert, event: dict[str, Any], connection_id: Any = None) -> None:
    """Envelope fields every translated alert shares, and the ones that are lost."""
    assert alert.alert_id == uuid.UUID(event["id"])
    assert (alert.client_id, alert.client_name, alert.message, alert.rule_id) == (None,) * 4
    reference = event["payload"].get("referenceCompany")
    assert alert.company_id == (uuid.UUID(reference["id"]) if reference else None)
    if connection_id is not None:
        assert alert.data_connection_id == uuid.UUID(connection_id)


def event_body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


# --- One test per migration-table row -------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        (EventType.CLIENT_RATE_LIMIT_REACHED, RuleType.RATE_LIMIT_REACHED),
        (EventType.CLIENT_RATE_LIMIT_RESET, RuleType.RATE_LIMIT_RESET),
    ],
)
def test_row_client_rate_limit(kind: EventType, rule: RuleType) -> None:
    event = event_sample(kind)
    record = deliver(event_body_of(event))
    assert record.hooks == [rule.hook, "on_alert"]
    [alert] = record.alerts(rule.hook)
    _common(alert, event)
    assert alert.data.daily_quota == 1000
    assert alert.data.expires_utc.isoformat() == event["payload"]["expiryDate"].replace(
        "Z", "+00:00"
    )
    if rule is RuleType.RATE_LIMIT_RESET:
        assert alert.data.quota_remaining == 1000
        assert alert.data.reset_reason is None  # lost


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (EventType.CONNECTION_CREATED, "PendingAuth"),
        (EventType.CONNECTION_CONNECTED, "Linked"),
        (EventType.CONNECTION_DISCONNECTED, "Deauthorized"),
        (EventType.CONNECTION_RECONNECTED, "Linked"),
        (EventType.CONNECTION_DELETED, "Unlinked"),
    ],
)
def test_row_data_connection_status_changed(kind: EventType, status: str) -> None:
    event = event_sample(kind)
    record = deliver(event_body_of(event))
    [alert] = record.alerts("on_data_connection_status_changed")
    connection = event["payload"]["connection"]
    _common(alert, event, connection["id"])
    assert alert.data.data_connection_id == uuid.UUID(connection["id"])
    assert alert.data.new_status == status
    assert alert.data.platform_key == "gbol"
    assert alert.data.old_status is None  # lost


def test_row_sync_connection_deleted() -> None:
    event = event_sample(EventType.CONNECTION_DELETED)
    record = deliver(event_body_of(event))
    assert record.hooks == [
        "on_data_connection_status_changed",
        "on_alert",
        "on_sync_connection_deleted",
        "on_alert",
    ]
    [alert] = record.alerts("on_sync_connection_deleted")
    _common(alert, event, event["payload"]["connection"]["id"])
    assert alert.data.model_dump() == {}


def _read(status: str, records_modified: bool, data_type: str = "invoices") -> dict[str, Any]:
    event = event_sample(EventType.READ_COMPLETED)
    [summary] = event["payload"]["dataTypes"]
    summary.update(status=status, recordsModified=records_modified, dataType=data_type)
    return event


def test_row_data_sync_completed() -> None:
    event = _read("Complete", records_modified=False, data_type="creditNotes")
    record = deliver(event_body_of(event))
    assert record.hooks == ["on_data_sync_completed", "on_alert"]
    [alert] = record.alerts("on_data_sync_completed")
    _common(alert, event, event["payload"]["dataTypes"][0]["connectionId"])
    assert alert.data.data_type == "creditNotes"
    assert alert.data.dataset_id is None  # lost


def test_row_dataset_data_changed_only_when_records_modified() -> None:
    event = _read("Complete", records_modified=True)
    record = deliver(event_body_of(event))
    assert record.hooks == [
        "on_data_sync_completed",
        "on_alert",
        "on_dataset_data_changed",
        "on_alert",
    ]
    [alert] = record.alerts("on_dataset_data_changed")
    _common(alert, event, event["payload"]["dataTypes"][0]["connectionId"])
    assert (alert.data.data_type, alert.data.dataset_id) == ("invoices", None)


def test_row_data_sync_status_changed_to_error() -> None:
    event = _read("ProcessingError", records_modified=False)
    record = deliver(event_body_of(event))
    assert record.hooks == [
        "on_data_sync_completed",
        "on_alert",
        "on_data_sync_status_changed_to_error",
        "on_alert",
    ]
    [alert] = record.alerts("on_data_sync_status_changed_to_error")
    _common(alert, event, event["payload"]["dataTypes"][0]["connectionId"])
    assert alert.data.dataset_status == "ProcessingError"
    assert alert.data.dataset_id is None  # lost


def test_read_completed_with_several_data_types_gives_alerts_for_each() -> None:
    event = event_sample(EventType.READ_COMPLETED)
    first = event["payload"]["dataTypes"][0]
    event["payload"]["dataTypes"].append(
        first | {"dataType": "bills", "recordsModified": False, "status": "FetchError"}
    )
    alerts = translate(parse_event(event))
    assert [(a.kind, a.data.data_type) for a in alerts] == [
        (RuleType.DATA_SYNC_COMPLETED, "invoices"),
        (RuleType.DATASET_DATA_CHANGED, "invoices"),
        (RuleType.DATA_SYNC_COMPLETED, "bills"),
        (RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR, "bills"),
    ]


def test_row_new_company_synchronized() -> None:
    event = event_sample(EventType.READ_COMPLETED_INITIAL)
    record = deliver(event_body_of(event))
    assert record.hooks == ["on_new_company_synchronised", "on_alert"]
    [alert] = record.alerts("on_new_company_synchronised")
    _common(alert, event, event["payload"]["dataTypes"][0]["connectionId"])
    assert (alert.data.company_name, alert.data.source_type) == (None, None)  # lost


@pytest.mark.parametrize(
    ("kind", "status"),
    [(EventType.WRITE_SUCCESSFUL, "Success"), (EventType.WRITE_UNSUCCESSFUL, "Failed")],
)
def test_row_push_operation_status_changed(kind: EventType, status: str) -> None:
    event = event_sample(kind, data_type="bills")
    record = deliver(event_body_of(event))
    assert record.hooks == ["on_push_operation_status_changed", "on_alert"]
    [alert] = record.alerts("on_push_operation_status_changed")
    _common(alert, event, event["payload"]["connectionId"])
    assert alert.data.data_type == "bills"
    assert alert.data.status == status
    assert alert.data.push_operation_key == uuid.UUID(event["payload"]["id"])


def test_row_push_operation_timed_out() -> None:
    event = event_sample(EventType.WRITE_UNSUCCESSFUL, overrides={"payload.status": "TimedOut"})
    record = deliver(event_body_of(event))
    assert record.hooks == [
        "on_push_operation_status_changed",
        "on_alert",
        "on_push_operation_timed_out",
        "on_alert",
    ]
    [alert] = record.alerts("on_push_operation_timed_out")
    _common(alert, event, event["payload"]["connectionId"])
    write_id = uuid.UUID(event["payload"]["id"])
    assert alert.data.data_type == "invoices"
    assert (alert.data.push_operation_key, alert.data.push_operation_guid) == (write_id, write_id)


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        (EventType.EXPENSES_SYNC_SUCCESSFUL, RuleType.EXPENSES_SYNC_COMPLETED),
        (EventType.EXPENSES_SYNC_UNSUCCESSFUL, RuleType.EXPENSES_SYNC_FAILED),
    ],
)
def test_row_expenses_sync(kind: EventType, rule: RuleType) -> None:
    event = event_sample(kind)
    record = deliver(event_body_of(event))
    assert record.hooks == [rule.hook, "on_alert"]
    [alert] = record.alerts(rule.hook)
    _common(alert, event)
    assert alert.data.sync_id == event["payload"]["syncId"]
    assert alert.data.sync_type is None  # lost
    assert alert.data.sync_date_range_start_utc is None  # lost
    if rule is RuleType.EXPENSES_SYNC_FAILED:
        assert alert.data.failure_stage is None  # lost


@pytest.mark.parametrize(
    "kind",
    [
        EventType.COMPANY_CREATED,
        EventType.COMPANY_DELETED,
        EventType.COMPANY_PRODUCT_ADDED,
        EventType.CONNECTION_FAILED,
        EventType.BANK_FEEDS_SOURCE_ACCOUNT_CONNECTED,
        EventType.REPORT_GENERATE_SUCCESSFUL,
    ],
)
def test_events_without_a_legacy_counterpart_reach_no_legacy_hook(kind: EventType) -> None:
    assert deliver(event_body(kind)).calls == []


# --- Legacy alerts, registration, async -----------------------------------------------------


def test_real_legacy_alerts_are_forwarded_unchanged() -> None:
    body = sample_body(RuleType.DATA_CONNECTION_STATUS_CHANGED)
    record = deliver(body)
    assert record.hooks == ["on_data_connection_status_changed", "on_alert"]
    [alert] = record.alerts("on_alert")
    assert alert.data.old_status == "PendingAuth"


def test_unknown_legacy_rule_is_forwarded_to_on_unknown_alert() -> None:
    record = deliver(sample_body(RuleType.DATA_SYNC_COMPLETED, overrides={"RuleType": "Brand new"}))
    assert record.hooks == ["on_unknown_alert", "on_alert"]


def test_bridge_is_opt_in() -> None:
    assert all(
        not isinstance(plugin, MigrationBridge)
        for plugin in map(load_builtin, BUILTIN_PLUGINS.values())
    )
    record = LegacyCalls()
    receiver = Receiver(
        insecure=True,
        store=MemoryStore(),
        plugins=[legacy_handlers(record)],
        load_entrypoints=False,
    )
    assert receiver.handle("POST", {}, event_body(EventType.CONNECTION_CONNECTED)).status == 200
    assert record.calls == []


def test_bridge_needs_handlers_and_refuses_event_handlers() -> None:
    with pytest.raises(ConfigurationError):
        MigrationBridge()

    class EventHandler:
        @hookimpl
        def on_connection_connected(self, event: Any) -> None:
            """Belongs on the receiver, not inside the bridge."""

    with pytest.raises(ConfigurationError, match="event handlers"):
        MigrationBridge(EventHandler())


def test_rejections_and_duplicates_are_forwarded_too() -> None:
    seen: list[str] = []

    class Outcomes:
        @hookimpl
        def on_duplicate(self, delivery: Any) -> None:
            seen.append(f"duplicate {delivery.key}")

        @hookimpl
        def on_rejected(self, error: Exception) -> None:
            seen.append(f"rejected {type(error).__name__}")

    receiver = Receiver(
        authorization="Bearer s3cret",
        store=MemoryStore(),
        plugins=[MigrationBridge(Outcomes())],
        load_entrypoints=False,
    )
    body = event_body(EventType.COMPANY_CREATED, event_id="11111111-2222-3333-4444-555555555555")
    auth = {"Authorization": "Bearer s3cret"}
    receiver.handle("POST", auth, body)
    receiver.handle("POST", auth, body)
    receiver.handle("POST", {}, body)
    assert seen == [
        "duplicate 11111111-2222-3333-4444-555555555555",
        "rejected VerificationError",
    ]


def test_failing_legacy_handler_fails_the_delivery_so_it_is_retried() -> None:
    class Failing:
        @hookimpl
        def on_data_connection_status_changed(self) -> None:
            raise RuntimeError("legacy handler broke")

    receiver = Receiver(
        insecure=True,
        store=MemoryStore(),
        plugins=[MigrationBridge(Failing())],
        load_entrypoints=False,
    )
    reply = receiver.handle("POST", {}, event_body(EventType.CONNECTION_CONNECTED))
    assert (reply.status, reply.outcome) == (503, "failed")


def test_async_legacy_handlers_work_under_handle_async() -> None:
    seen: list[str | None] = []

    class AsyncLegacy:
        @hookimpl
        async def on_push_operation_status_changed(self, alert: Alert) -> None:
            await asyncio.sleep(0)
            seen.append(alert.data.status)

    receiver = Receiver(
        insecure=True,
        store=MemoryStore(),
        plugins=[MigrationBridge(AsyncLegacy())],
        load_entrypoints=False,
    )

    async def run() -> int:
        reply = await receiver.handle_async("POST", {}, event_body(EventType.WRITE_SUCCESSFUL))
        return reply.status

    assert asyncio.run(run()) == 200
    assert seen == ["Success"]
