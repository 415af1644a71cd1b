"""Which body shape a delivery has and which hooks it reaches (codat_webhooks.routing)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from codat_webhooks import Alert, Event, PayloadError, Receiver, RuleType, hookimpl
from codat_webhooks.event_types import EventType
from codat_webhooks.models.legacy import ALERT_CLASSES, AccountCategoriesUpdatedAlert
from codat_webhooks.routing import key_from_body, legacy_body_from_event, route
from codat_webhooks.stores import MemoryStore
from codat_webhooks.stores.base import State
from codat_webhooks.testing import event_sample, legacy_sample

TRANSITIONAL = {
    "ClientRateLimitReached": RuleType.RATE_LIMIT_REACHED,
    "ClientRateLimitReset": RuleType.RATE_LIMIT_RESET,
    "DataConnectionStatusChanged": RuleType.DATA_CONNECTION_STATUS_CHANGED,
    "DataSyncCompleted": RuleType.DATA_SYNC_COMPLETED,
    "DataSyncStatusChangedToError": RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR,
    "DatasetDataChanged": RuleType.DATASET_DATA_CHANGED,
    "NewCompanySynchronized": RuleType.NEW_COMPANY_SYNCHRONISED,
    "PushOperationStatusChanged": RuleType.PUSH_OPERATION_STATUS_CHANGED,
    "PushOperationTimedOut": RuleType.PUSH_OPERATION_TIMED_OUT,
    "SyncCompleted": RuleType.EXPENSES_SYNC_COMPLETED,
    "SyncConnectionDeleted": RuleType.SYNC_CONNECTION_DELETED,
    "SyncFailed": RuleType.EXPENSES_SYNC_FAILED,
    "AccountCategoriesUpdated": RuleType.ACCOUNT_CATEGORIES_UPDATED,
}
"""FACTS §3: the PascalCase types that carried legacy bodies over the new service."""


def test_legacy_alert_routes_to_its_rule_hook_then_on_alert() -> None:
    body = legacy_sample(RuleType.DATASET_DATA_CHANGED)
    routed = route(body)
    assert isinstance(routed.payload, Alert)
    assert routed.hooks == ("on_dataset_data_changed", "on_alert")
    assert routed.argument == "alert"
    assert routed.kind == "Dataset data changed"
    assert routed.company_id == body["CompanyId"]


def test_unknown_legacy_rule_routes_to_on_unknown_alert() -> None:
    routed = route(legacy_sample(RuleType.DATA_SYNC_COMPLETED, overrides={"RuleType": "Brand new"}))
    assert routed.hooks == ("on_unknown_alert", "on_alert")


def test_event_routes_to_its_event_hook_then_on_event() -> None:
    company = str(uuid.uuid4())
    routed = route(event_sample(EventType.CONNECTION_DISCONNECTED, company_id=company))
    assert isinstance(routed.payload, Event)
    assert routed.hooks == ("on_connection_disconnected", "on_event")
    assert routed.argument == "event"
    assert routed.kind == "connection.disconnected"
    assert routed.company_id == company


def test_unknown_event_routes_to_on_unknown_event() -> None:
    routed = route({"eventType": "payroll.run.completed", "payload": {}})
    assert routed.hooks == ("on_unknown_event", "on_event")
    assert routed.company_id is None


def test_client_wide_event_has_no_company() -> None:
    assert route(event_sample(EventType.CLIENT_RATE_LIMIT_RESET)).company_id is None


@pytest.mark.parametrize("name", sorted(TRANSITIONAL))
def test_transitional_pascal_case_with_legacy_body_is_a_legacy_alert(name: str) -> None:
    rule = TRANSITIONAL[name]
    body = legacy_sample(rule)
    del body["RuleType"]
    body = {"eventType": name, **body}
    routed = route(body)
    assert type(routed.payload) is ALERT_CLASSES[rule]
    assert routed.hooks == (rule.hook, "on_alert")
    assert routed.argument == "alert"
    assert routed.kind == name
    assert routed.payload.alert_id == uuid.UUID(body["AlertId"])


@pytest.mark.parametrize("name", sorted(TRANSITIONAL))
def test_transitional_legacy_body_with_rule_type_as_sent_over_svix(name: str) -> None:
    body = legacy_sample(TRANSITIONAL[name], overrides={"RuleType": name})
    assert route(body).hooks == (TRANSITIONAL[name].hook, "on_alert")


def test_rule_type_wins_over_event_type() -> None:
    body = legacy_sample(RuleType.RATE_LIMIT_REACHED) | {"eventType": "company.created"}
    assert route(body).hooks == ("on_rate_limit_reached", "on_alert")


def test_transitional_envelope_payload_becomes_the_alert_data() -> None:
    company, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    envelope = {
        "id": event_id,
        "eventType": "AccountCategoriesUpdated",
        "generatedDate": "2026-11-24T14:15:27Z",
        "payload": {
            "referenceCompany": {"id": company, "name": "Toft stores"},
            "modifiedDate": "2026-11-24T14:15:22Z",
        },
    }
    routed = route(envelope)
    alert = routed.payload
    assert isinstance(alert, AccountCategoriesUpdatedAlert)
    assert routed.hooks == ("on_account_categories_updated", "on_alert")
    assert alert.company_id == uuid.UUID(company)
    assert alert.alert_id == uuid.UUID(event_id)
    assert alert.data.modified_date is not None
    assert alert.data.modified_date.isoformat() == "2026-11-24T14:15:22+00:00"
    assert routed.company_id == company


def test_transitional_envelope_holding_a_legacy_alert_is_that_alert() -> None:
    inner = legacy_sample(RuleType.DATA_CONNECTION_STATUS_CHANGED)
    envelope = {
        "id": "msg_not_a_guid",
        "eventType": "DataConnectionStatusChanged",
        "payload": inner,
    }
    alert = route(envelope).payload
    assert isinstance(alert, Alert)
    assert alert.alert_id == uuid.UUID(inner["AlertId"])
    assert alert.data.new_status == "Linked"
    assert alert.rule_type == "DataConnectionStatusChanged"


def test_envelope_id_that_is_not_a_guid_is_not_forced_into_alert_id() -> None:
    body = legacy_body_from_event(
        {"id": "msg_2a", "eventType": "ClientRateLimitReached", "payload": {"DailyQuota": 5}},
        "ClientRateLimitReached",
    )
    assert "AlertId" not in body
    alert = route(
        {"id": "msg_2a", "eventType": "ClientRateLimitReached", "payload": {"DailyQuota": 5}}
    ).payload
    assert isinstance(alert, Alert)
    assert alert.data.daily_quota == 5


@pytest.mark.parametrize(
    "body",
    [
        {
            "companyId": str(uuid.uuid4()),
            "connectionId": str(uuid.uuid4()),
            "sourceAccount": {"id": "acc-1", "status": "connected"},
        },
        {"id": str(uuid.uuid4())},
        {},
        {"eventType": ["connection.connected"]},
    ],
    ids=["pre-2025-bank-feed-body", "id-only", "empty", "event-type-not-a-string"],
)
def test_neither_shape_is_a_422(body: dict[str, Any]) -> None:
    with pytest.raises(PayloadError) as info:
        route(body)
    assert info.value.status_hint == 422


def test_pre_2025_bank_feed_body_is_parked_not_processed() -> None:
    store = MemoryStore()
    seen: list[object] = []

    class Anything:
        @hookimpl
        def on_event(self, event: object) -> None:
            seen.append(event)

        @hookimpl
        def on_alert(self, alert: object) -> None:
            seen.append(alert)

    receiver = Receiver(insecure=True, store=store, plugins=[Anything()], load_entrypoints=False)
    body = {
        "companyId": str(uuid.uuid4()),
        "connectionId": str(uuid.uuid4()),
        "sourceAccount": {"id": "acc-002", "status": "pending"},
    }
    reply = receiver.handle("POST", {"webhook-id": "msg_old_bank_feed"}, json.dumps(body).encode())
    assert (reply.status, reply.outcome) == (422, "invalid")
    assert seen == []
    record = store.get("msg_old_bank_feed")
    assert record is not None
    assert record.state is State.PARKED


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"id": " evt-1 ", "AlertId": "alert-1"}, "evt-1"),
        ({"AlertId": "alert-1"}, "alert-1"),
        ({"alertId": "alert-2"}, "alert-2"),
        ({"id": "", "AlertId": "alert-3"}, "alert-3"),
        ({"id": 5}, None),
        ({}, None),
    ],
)
def test_key_from_body(body: dict[str, Any], key: str | None) -> None:
    assert key_from_body(body) == key
