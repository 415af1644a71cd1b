"""Legacy alert models: the seed payloads verbatim, and every quirk Codat's payloads have."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pydantic
import pytest

from codat_webhooks import Alert, PayloadError, RuleType, parse_alert
from codat_webhooks.models import legacy
from codat_webhooks.testing import legacy_sample
from tests.conftest import load_seed

EXPECTED_CLASSES = {
    "data_connection_status_changed": legacy.DataConnectionStatusChangedAlert,
    "new_company_synchronised": legacy.NewCompanySynchronisedAlert,
    "data_sync_completed": legacy.DataSyncCompletedAlert,
    "dataset_data_changed": legacy.DatasetDataChangedAlert,
    "data_sync_status_changed_to_error": legacy.DataSyncStatusChangedToErrorAlert,
    "push_operation_status_changed": legacy.PushOperationStatusChangedAlert,
    "push_operation_timed_out": legacy.PushOperationTimedOutAlert,
    "account_categories_updated": legacy.AccountCategoriesUpdatedAlert,
    "sync_connection_deleted": legacy.SyncConnectionDeletedAlert,
    "sync_completed": legacy.ExpensesSyncCompletedAlert,
    "sync_failed": legacy.ExpensesSyncFailedAlert,
    "rate_limit_reached": legacy.RateLimitReachedAlert,
    "rate_limit_reset": legacy.RateLimitResetAlert,
}


def test_every_seed_payload_has_an_expected_class(seed_bodies: dict[str, bytes]) -> None:
    assert set(seed_bodies) == set(EXPECTED_CLASSES)


def test_seed_payload_parses_to_its_rule_class(seed_body: bytes) -> None:
    alert = parse_alert(seed_body)
    raw = json.loads(seed_body)
    name = next(stem for stem, cls in EXPECTED_CLASSES.items() if type(alert) is cls)
    assert type(alert) is EXPECTED_CLASSES[name]
    assert alert.kind is RuleType.parse(raw["RuleType"])
    assert alert.rule_type == raw["RuleType"]
    assert alert.alert_id == uuid.UUID(raw["AlertId"])
    assert alert.client_id == uuid.UUID(raw["ClientId"])
    assert alert.message == raw["Message"]


def test_seed_round_trips_through_codat_spelling(seed_body: bytes) -> None:
    alert = parse_alert(seed_body)
    dumped = alert.model_dump(by_alias=True, mode="json")
    raw = json.loads(seed_body)
    for key, value in raw.items():
        if key != "Data":
            assert dumped[key] == value
    for key, value in (raw.get("Data") or {}).items():
        assert dumped["Data"][key] == value
    assert parse_alert(dumped) == alert
    assert "kind" not in alert.model_dump()


def test_data_connection_status_changed_attributes() -> None:
    alert = parse_alert(load_seed("data_connection_status_changed"))
    assert isinstance(alert, legacy.DataConnectionStatusChangedAlert)
    assert alert.data.data_connection_id == uuid.UUID("2e9d2c44-f675-40ba-8049-353bfcb5e171")
    assert alert.data.platform_key == "gbol"
    assert (alert.data.old_status, alert.data.new_status) == ("PendingAuth", "Linked")
    assert alert.company_id == uuid.UUID("8a210b68-6988-11ed-a1eb-0242ac120002")


def test_typed_data_of_every_other_seed() -> None:
    new_company = parse_alert(load_seed("new_company_synchronised"))
    assert new_company.data.company_name == "2e9d2c44-f675-40ba-8049-353bfcb5e171"  # a GUID
    assert new_company.data.source_type == "Accounting"

    for name in ("data_sync_completed", "dataset_data_changed"):
        alert = parse_alert(load_seed(name))
        assert isinstance(alert.data.dataset_id, uuid.UUID)
        assert alert.data.data_type in {"creditNotes", "invoices"}

    error = parse_alert(load_seed("data_sync_status_changed_to_error"))
    assert error.data.dataset_status == "ProcessingError"

    push = parse_alert(load_seed("push_operation_status_changed"))
    assert push.data.status == "Success"
    assert isinstance(push.data.push_operation_key, uuid.UUID)

    timed_out = parse_alert(load_seed("push_operation_timed_out"))
    assert timed_out.data.push_operation_guid == timed_out.data.push_operation_key

    categories = parse_alert(load_seed("account_categories_updated"))
    assert categories.data.modified_date == datetime(2019, 8, 24, 14, 15, 22, tzinfo=timezone.utc)

    deleted = parse_alert(load_seed("sync_connection_deleted"))
    assert isinstance(deleted.data, legacy.NoData)
    assert deleted.data_connection_id is None

    completed = parse_alert(load_seed("sync_completed"))
    assert completed.data.sync_type == "Expense"
    # json/Codat-Expenses.json: syncId is a plain string (no format: uuid), kept as sent.
    seed_data = load_seed("sync_completed")["Data"]
    assert isinstance(seed_data, dict)
    assert completed.data.sync_id == seed_data["syncId"]

    failed = parse_alert(load_seed("sync_failed"))
    assert failed.data.failure_stage == "Pushing"

    reached = parse_alert(load_seed("rate_limit_reached"))
    assert reached.company_id is None
    assert reached.data.daily_quota == 1000
    assert reached.data.expires_utc == datetime(2023, 5, 3, tzinfo=timezone.utc)

    reset = parse_alert(load_seed("rate_limit_reset"))
    assert (reset.data.quota_remaining, reset.data.daily_quota) == (1000, 1000)
    assert reset.data.reset_reason.startswith("The quota was reset")


def test_type_key_is_accepted_for_rule_type() -> None:
    body = load_seed("push_operation_status_changed")
    body["Type"] = "Push Operation Status Changed"
    del body["RuleType"]
    alert = parse_alert(body)
    assert alert.kind is RuleType.PUSH_OPERATION_STATUS_CHANGED
    assert alert.model_dump(by_alias=True)["RuleType"] == "Push Operation Status Changed"


def test_data_keys_match_in_either_case() -> None:
    pascal = parse_alert(legacy_sample(RuleType.RATE_LIMIT_RESET))
    camel_body = legacy_sample(RuleType.RATE_LIMIT_RESET)
    camel_body["Data"] = {
        "quotaRemaining": 5,
        "resetReason": "new day",
        "dailyQuota": "1000",
        "expiresUtc": "2026-11-25T00:00:00Z",
    }
    camel = parse_alert(camel_body)
    assert camel.data.quota_remaining == 5
    assert camel.data.daily_quota == 1000
    assert camel.data.expires_utc == pascal.data.expires_utc

    body = legacy_sample(RuleType.DATA_CONNECTION_STATUS_CHANGED)
    body["Data"] = {"NewStatus": "Unlinked", "PlatformKey": "qhyg"}
    alert = parse_alert(body)
    assert (alert.data.new_status, alert.data.platform_key) == ("Unlinked", "qhyg")


@pytest.mark.parametrize("data", ["missing", None, {}])
@pytest.mark.parametrize("kind", list(RuleType))
def test_missing_or_empty_data_still_parses(kind: RuleType, data: object) -> None:
    body = legacy_sample(kind)
    if data == "missing":
        body.pop("Data", None)
    else:
        body["Data"] = data
    alert = parse_alert(body)
    assert alert.kind is kind
    assert isinstance(alert.data, pydantic.BaseModel)


def test_blank_and_all_zero_ids_are_none() -> None:
    body = load_seed("sync_connection_deleted")
    body |= {"RuleId": "", "DataConnectionId": "00000000-0000-0000-0000-000000000000"}
    alert = parse_alert(body)
    assert alert.rule_id is None
    assert alert.data_connection_id is None


def test_envelope_without_client_fields_parses() -> None:
    body = load_seed("data_sync_completed")
    del body["ClientId"], body["ClientName"]
    alert = parse_alert(body)
    assert (alert.client_id, alert.client_name) == (None, None)


def test_seven_digit_fractions_and_zoneless_timestamps() -> None:
    body = legacy_sample(RuleType.ACCOUNT_CATEGORIES_UPDATED)
    body["Data"] = {"modifiedDate": "2020-04-21T12:12:57.4250446Z"}
    stamp = parse_alert(body).data.modified_date
    assert stamp == datetime(2020, 4, 21, 12, 12, 57, 425044, tzinfo=timezone.utc)
    body["Data"] = {"modifiedDate": "2020-04-21T12:12:57"}
    stamp = parse_alert(body).data.modified_date
    assert stamp is not None
    assert stamp.tzinfo is not None
    assert stamp.utcoffset() is not None


def test_extra_fields_are_kept_and_models_are_frozen() -> None:
    body = load_seed("data_sync_completed")
    body["NewTopLevel"] = 1
    data = body["Data"]
    assert isinstance(data, dict)
    data["recordsModified"] = 3
    alert = parse_alert(body)
    assert alert.model_extra == {"NewTopLevel": 1}
    assert alert.data.model_extra == {"recordsModified": 3}
    dumped = alert.model_dump(by_alias=True, mode="json")
    assert dumped["NewTopLevel"] == 1
    assert dumped["Data"]["recordsModified"] == 3
    with pytest.raises(pydantic.ValidationError):
        alert.message = "changed"  # type: ignore[misc]


def test_unknown_rule_type_parses_into_alert_with_dict_data() -> None:
    alert = parse_alert(b'{"RuleType": "Brand New Rule", "AlertId": "", "Data": {"x": [1]}}')
    assert type(alert) is Alert
    assert alert.kind is None
    assert alert.data == {"x": [1]}
    assert parse_alert(b'{"RuleType": "Another"}').data == {}


def test_parse_alert_accepts_bytes_str_and_mappings() -> None:
    raw = json.dumps(load_seed("rate_limit_reached"))
    assert parse_alert(raw) == parse_alert(raw.encode()) == parse_alert(json.loads(raw))


@pytest.mark.parametrize(
    "body",
    [
        b'\xef\xbb\xbf{"RuleType": "Rate Limit Reset"}',  # a UTF-8 byte order mark
        '{"RuleType": "Rate Limit Reset"}'.encode("utf-16"),
        b'{"RuleType": "Rate Limit Reset", "Message": "\\ud800"}',  # a lone surrogate escape
    ],
)
def test_json_the_standard_library_accepts_still_parses(body: bytes) -> None:
    # The fast decoder refuses these; the fallback to json.loads must keep them working.
    assert parse_alert(body).rule_type == "Rate Limit Reset"


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b'{"a":' * 5000 + b"1"],
)
def test_non_object_bodies_are_400_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError) as info:
        parse_alert(body)
    assert info.value.status_hint == 400


@pytest.mark.parametrize(
    "body",
    [
        {"AlertId": "a9367074-b5c3-42c4-9be4-be129f43577e"},
        {"RuleType": 7},
        {"RuleType": "Rate Limit Reached", "Data": {"DailyQuota": "lots"}},
        {"RuleType": "Rate Limit Reached", "Data": [1]},
        {"RuleType": "DataConnectionStatusChanged", "CompanyId": "not-a-guid"},
        {"RuleType": "Unknown", "Data": "text"},
        {"RuleType": "Sync Failed", "Message": {"nested": True}},
    ],
)
def test_objects_that_are_not_alerts_are_422_payload_errors(body: dict[str, object]) -> None:
    with pytest.raises(PayloadError) as info:
        parse_alert(body)
    assert info.value.status_hint == 422
    assert "lots" not in str(info.value)  # the reason names fields, never echoes values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("  ", None),
        ("\x1c0-0\x1f", None),
        (" 00000000-0000-0000-0000-000000000000 ", None),
        (uuid.UUID(int=0), None),
        ("8A210B68-6988-11ED-A1EB-0242AC120002", uuid.UUID("8a210b68-6988-11ed-a1eb-0242ac120002")),
        (None, None),
    ],
)
def test_blank_ids_in_every_spelling_are_none(value: object, expected: object) -> None:
    body = load_seed("sync_connection_deleted") | {"RuleId": value}
    assert parse_alert(body).rule_id == expected


@pytest.mark.parametrize("value", [" 0 0 ", "xyz", 5])
def test_an_id_that_is_neither_blank_nor_a_uuid_is_refused_with_pydantics_own_error(
    value: object,
) -> None:
    body = load_seed("sync_connection_deleted") | {"RuleId": value}
    with pytest.raises(PayloadError) as caught:
        parse_alert(body)
    reason = str(caught.value)
    assert "RuleId: " in reason
    assert "UUID" in reason
    assert "pattern" not in reason
