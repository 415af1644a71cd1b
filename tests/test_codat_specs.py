"""Bodies taken from Codat's own published schemas and examples, through the real receiver.

Every body names where it comes from: ``Platform`` is ``codatio/oas`` ``json/Codat-Platform.json``,
``Bank-Feeds-v2`` is ``json/Codat-Bank-Feeds-v2.json``, ``Sync-Expenses`` is
``json/Codat-Sync-Expenses.json``, ``Spend-Insights`` is ``json/Codat-Spend-Insights.json``,
``Webhooks.json`` is ``codatio/codat-docs`` ``static/oas/Webhooks.json``; the schema name follows.
Where a test changes a value (a non-GUID ID, a zone-less time), the comment says so.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from codat_webhooks import Receiver
from codat_webhooks.event_types import EventType
from codat_webhooks.models import events as models
from codat_webhooks.models import parse_event
from codat_webhooks.models.values import (
    ConnectionStatus,
    DataConnectionErrorStatus,
    DatasetErrorStatus,
    ExpensesTransactionStatus,
    RoutingType,
    SourceAccountStatus,
)
from codat_webhooks.plugins.bridge import translate
from codat_webhooks.rules import RuleType
from codat_webhooks.stores import MemoryStore
from codat_webhooks.stores.base import State
from codat_webhooks.testing import Recorder

AUTH = "Bearer spec-tests"
COMPANY = "0498e921-9b53-4396-a412-4f2f5983b0a2"

REFERENCE_COMPANY: dict[str, Any] = {
    "id": COMPANY,
    "name": "Bank of Dave",
    "description": "internal_id_mxO7rLfo",
    "links": {"portal": f"https://app.codat.io/companies/{COMPANY}/summary"},
    "tags": {"customerRegion": "us", "uid": "335a086e-8563-4b03-94e3-39544225ecb6"},
}

# Webhooks.json, CompanyWebhook, example "Company created" (note: "type", not "eventType").
COMPANY_CREATED_WITH_TYPE: dict[str, Any] = {
    "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
    "type": "company.created",
    "generatedDate": "2024-08-08T17:10:34.015Z",
    "payload": {
        "id": COMPANY,
        "name": "Bank of Dave",
        "description": "Requested a loan for refurb.",
        "redirect": f"https://link.codat.io/company/{COMPANY}",
        "lastSync": "2022-01-01T12:00:00.000Z",
        "created": "2022-01-01T12:00:00.000Z",
        "tags": {"customerRegion": "us", "uid": "335a086e-8563-4b03-94e3-39544225ecb6"},
    },
}

# Webhooks.json, ConnectionWebhook, example "Connection failed" (again "type").
CONNECTION_FAILED_WITH_TYPE: dict[str, Any] = {
    "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
    "type": "connection.failed",
    "generatedDate": "2024-08-08T17:10:34.015Z",
    "payload": {
        "referenceCompany": REFERENCE_COMPANY,
        "connection": {
            "id": "ee2eb431-c0fa-4dc9-93fa-d29781c12bcd",
            "integrationId": "bf083d72-62c7-493e-aec9-81b4dbba7e2c",
            "integrationKey": "dfxm",
            "sourceId": "bdd831ce-eebd-4896-89a7-20e5ee8989ee",
            "platformName": "Basiq",
            "linkUrl": f"https://link-api.codat.io/companies/{COMPANY}/connections/"
            "ee2eb431-c0fa-4dc9-93fa-d29781c12bcd/start",
            "status": "PendingAuth",
            "created": "2022-10-27T09:53:29.000Z",
            "sourceType": "Banking",
            "dataConnectionErrors": [
                {
                    "statusCode": "403",
                    "statusText": "User cancelled linking",
                    "errorMessage": "User cancelled",
                    "erroredOnUtc": "2022-10-27T09:53:29.000Z",
                    "status": "Active",
                }
            ],
        },
    },
}

# Platform as of 2025-01-24 (codatio/oas commit cbaf517), ConnectionWebhook, example
# "De-authorized": the event type under "type" in the Platform spec itself.
CONNECTION_DEAUTHORIZED_2025_01_24: dict[str, Any] = {
    "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
    "type": "connection.disconnected",
    "generatedDate": "2024-08-08T17:10:34.015Z",
    "payload": {
        "referenceCompany": REFERENCE_COMPANY,
        "connection": {
            "id": "ee2eb431-c0fa-4dc9-93fa-d29781c12bcd",
            "integrationId": "bf083d72-62c7-493e-aec9-81b4dbba7e2c",
            "integrationKey": "dfxm",
            "sourceId": "bdd831ce-eebd-4896-89a7-20e5ee8989ee",
            "platformName": "Basiq",
            "linkUrl": f"https://link-api.codat.io/companies/{COMPANY}/connections/"
            "ee2eb431-c0fa-4dc9-93fa-d29781c12bcd/start",
            "status": "Deauthorized",
            "lastSync": "2022-10-27T10:22:43.646Z",
            "created": "2022-10-27T09:53:29.000Z",
            "sourceType": "Banking",
            "dataConnectionErrors": [
                {
                    "statusCode": "401",
                    "statusText": "The integration de-authorized access to the connection.",
                    "errorMessage": "The integration de-authorized access to the connection.",
                    "erroredOnUtc": "2022-12-27T09:53:29.000Z",
                    "status": "Active",
                }
            ],
        },
    },
}

# codat-docs blog/241004-deprecation-company-specific-webhooks.md (its "..." elisions left out).
CONNECTION_CREATED_BLOG_2024: dict[str, Any] = {
    "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
    "type": "connection.created",
    "generatedDate": "2024-08-08T17:10:34.015Z",
    "payload": {
        "referenceCompany": {
            "id": COMPANY,
            "tags": {"customerRegion": "us", "uid": "335a086e-8563-4b03-94e3-39544225ecb6"},
        }
    },
}

# Platform, CompanyProductWebhook / companyProductWebhookPayload, example "Product added".
PRODUCT_ADDED: dict[str, Any] = {
    "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
    "eventType": "company.product.added",
    "generatedDate": "2024-08-08T17:10:34.015Z",
    "payload": {
        "id": COMPANY,
        "name": "Bank of Dave",
        "description": "Requested early access to the new financing scheme.",
        "productId": "lending",
        "productName": "Lending",
        "products": ["accounting", "banking", "lending"],
    },
}

# Platform, DataTypeWriteWebhook / dataTypeWriteWebhookPayload, example "Record".
WRITE_SUCCESSFUL: dict[str, Any] = {
    "id": "bae71d36-ff47-420a-b4a6-f8c9ddf41140",
    "eventType": "bills.write.successful",
    "generatedDate": "2023-05-03T10:00:23Z",
    "payload": {
        "id": "a9367074-b5c3-42c4-9be4-be129f43577e",
        "type": "Create",
        "referenceCompany": {
            "id": "70af3071-65d9-4ec3-b3cb-5283e8d55dac",
            "name": "Toft stores",
            "description": "cust_1MtJUT2eZvKYlo2CNaw2HvEv",
        },
        "connectionId": "12571faf-0898-47e7-afdd-0fe9eb0a9bf5",
        "requestedOnDate": "2023-05-03T10:00:00Z",
        "completedOnDate": "2023-05-03T10:00:23Z",
        "status": "Success",
        "record": {"id": "bil_1Nispe2eZvKYlo2Cd31jOCgZ"},
    },
}

# Webhooks.json, ExpensesSyncWebhook, example "Unsuccessful" (Sync-Expenses has the same schema).
EXPENSES_UNSUCCESSFUL: dict[str, Any] = {
    "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
    "eventType": "expenses.sync.unsuccessful",
    "generatedDate": "2024-09-01T00:00:00Z",
    "payload": {
        "referenceCompany": {"id": COMPANY, "name": "Toft stores", "description": "Syncing"},
        "syncId": "ee2eb431-c0fa-4dc9-93fa-d29781c12bcd",
        "transactions": [
            {"id": "f47ac10b-58cc-4372-a567-0e02b2c3d479", "status": "Completed"},
            {
                "id": "e7f8a3d5-0c3c-4c9b-b5d3-56b4a43b62e4",
                "status": "Failed",
                "errorMessage": "Insufficient funds",
            },
        ],
    },
}

# Spend-Insights, ReportGenerationPayload, example "Successful".
REPORT_SUCCESSFUL: dict[str, Any] = {
    "id": "bae71d36-ff47-420a-b4a6-f8c9ddf41140",
    "eventType": "reports.spendAnalysis.generate.successful",
    "generatedDate": "2023-05-03T10:00:23.000Z",
    "payload": {
        "id": "bb42ce7e-720a-4ac5-b640-f24f53ff47c8",
        "referenceCompany": REFERENCE_COMPANY,
    },
}

# Bank-Feeds-v2, SourceAccountWebhookv2 / SourceAccountv2 (the schema's first example account).
SOURCE_ACCOUNT_V2: dict[str, Any] = {
    "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
    "eventType": "bankFeeds.sourceAccount.connected",
    "generatedDate": "2022-10-23T00:00:00.000Z",
    "payload": {
        "companyId": COMPANY,
        "connectionId": "2e9d2c44-f675-40ba-8049-353bfcb5e171",
        "sourceAccount": {
            "id": "acc-001",
            "accountName": "account-081",
            "accountType": "checking",
            "accountNumber": "12345670",
            "sortCode": "123456",
            "routingInfo": {"bankCode": "021001088", "type": "bankcode"},
            "currency": "GBP",
            "balance": 99.99,
            "accountInfo": {
                "nickname": "account 123",
                "accountOpenDate": "2023-05-06",
                "availableBalance": 10,
            },
            "status": "pending",
            "feedStartDate": "2024-05-01",
        },
    },
}

# codat-docs blog/241004-deprecation-bank-feed-source-account-event-types.md: the pre-2025 body.
PRE_2025_SOURCE_ACCOUNT: dict[str, Any] = {
    "companyId": "8a210b68-6988-11ed-a1eb-0242ac120002",
    "connectionId": "2e9d2c44-f675-40ba-8049-353bfcb5e171",
    "bankAccount": {
        "id": "acc-002",
        "accountName": "account-081",
        "sortCode": "123456",
        "accountType": "Credit",
        "accountNumber": "12345670",
        "currency": "GBP",
        "balance": 99.99,
        "modifiedDate": "2023-01-09T14:14:14.1057478Z",
        "status": "pending",
    },
}


def receive(body: dict[str, Any]) -> tuple[int, Recorder, MemoryStore, str]:
    store = MemoryStore()
    recorder = Recorder()
    receiver = Receiver(authorization=AUTH, store=store, plugins=[recorder], load_entrypoints=False)
    reply = receiver.handle("POST", {"Authorization": AUTH}, json.dumps(body).encode())
    return reply.status, recorder, store, json.loads(reply.body)["key"]


def with_changes(body: dict[str, Any], **payload: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["payload"].update(payload)
    return changed


def retyped(body: dict[str, Any], event_type: str) -> dict[str, Any]:
    """A Platform example as Webhooks.json writes it: the event type under ``type``."""
    changed = {key: value for key, value in body.items() if key != "eventType"}
    return changed | {"type": event_type}


# --- 1. The event type under "type" ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "hook"),
    [
        (COMPANY_CREATED_WITH_TYPE, "on_company_created"),
        (CONNECTION_FAILED_WITH_TYPE, "on_connection_failed"),
        (CONNECTION_DEAUTHORIZED_2025_01_24, "on_connection_disconnected"),
        (CONNECTION_CREATED_BLOG_2024, "on_connection_created"),
        *(
            (retyped(CONNECTION_FAILED_WITH_TYPE, f"connection.{verb}"), f"on_connection_{verb}")
            for verb in ("created", "connected", "disconnected", "reconnected", "deleted")
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else value["type"],
)
def test_type_key_runs_the_event_hook_not_the_unknown_alert_hook(
    body: dict[str, Any], hook: str
) -> None:
    status, recorder, store, key = receive(body)
    assert status == 200
    assert recorder.names() == [hook, "on_event"]
    assert key == body["id"]  # no webhook-id header: the envelope id is the key
    record = store.get(key)
    assert record is not None
    assert record.kind == body["type"]
    assert record.company_id == COMPANY


def test_type_key_round_trips_under_the_key_codat_sent() -> None:
    event = parse_event(COMPANY_CREATED_WITH_TYPE)
    assert isinstance(event, models.CompanyEvent)
    assert event.kind is EventType.COMPANY_CREATED
    dumped = event.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert dumped["type"] == "company.created"
    assert "eventType" not in dumped
    assert parse_event(dumped) == event
    # ...and the documented key still dumps as itself.
    documented = parse_event(retyped(COMPANY_CREATED_WITH_TYPE, "company.created"))
    assert documented.model_dump(by_alias=True)["type"] == "company.created"
    assert parse_event(PRODUCT_ADDED).model_dump(by_alias=True)["eventType"] == (
        "company.product.added"
    )


def test_type_key_with_a_transitional_legacy_name_is_the_legacy_alert() -> None:
    body = {
        "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
        "type": "AccountCategoriesUpdated",
        "CompanyId": COMPANY,
        "Data": {"modifiedDate": "2019-08-24T14:15:22Z"},
    }
    status, recorder, _, _ = receive(body)
    assert status == 200
    assert recorder.names() == [RuleType.ACCOUNT_CATEGORIES_UPDATED.hook, "on_alert"]


def test_legacy_shaped_body_with_an_unknown_lowercase_type_stays_an_unknown_alert() -> None:
    body = {"AlertId": "1b1b2ed4-f5a7-4a1b-a5c0-7ce5d1f0cd69", "type": "Something New", "Data": {}}
    status, recorder, _, _ = receive(body)
    assert status == 200
    assert recorder.names() == ["on_unknown_alert", "on_alert"]


# --- 2. company.product.added / removed ------------------------------------------------------


@pytest.mark.parametrize("event_type", ["company.product.added", "company.product.removed"])
def test_company_product_payload_follows_the_spec(event_type: str) -> None:
    body = PRODUCT_ADDED | {"eventType": event_type}
    event = parse_event(body)
    assert isinstance(event, models.CompanyProductEvent)
    payload = event.payload
    assert event.company_id == uuid.UUID(COMPANY)
    assert (payload.id, payload.name) == (uuid.UUID(COMPANY), "Bank of Dave")
    assert payload.description == "Requested early access to the new financing scheme."
    assert (payload.product_id, payload.product_name) == ("lending", "Lending")
    assert payload.products == ["accounting", "banking", "lending"]
    assert payload.model_extra == {}  # nothing left over in extras
    status, recorder, store, key = receive(body)
    assert status == 200
    assert recorder.names() == [EventType.parse(event_type).hook, "on_event"]  # type: ignore[union-attr]
    record = store.get(key)
    assert record is not None
    assert record.company_id == COMPANY


# --- 3. IDs are GUIDs only where the schema says format: uuid ---------------------------------


def test_write_request_id_is_a_plain_string() -> None:
    # dataTypeWriteWebhookPayload.id: "Unique identifier of the write request", no format.
    body = with_changes(WRITE_SUCCESSFUL, id="push-7f3a")
    status, recorder, _, _ = receive(body)
    assert status == 200
    [call] = recorder.calls_to("on_write_successful")
    assert call.event.payload.id == "push-7f3a"
    assert parse_event(WRITE_SUCCESSFUL).payload.id == "a9367074-b5c3-42c4-9be4-be129f43577e"


def test_expenses_sync_id_is_a_plain_string() -> None:
    # expensesSyncWebhookPayload.syncId: {"type": "string"}, no format.
    body = with_changes(EXPENSES_UNSUCCESSFUL, syncId="sync-2024-09-01")
    status, recorder, _, _ = receive(body)
    assert status == 200
    [call] = recorder.calls_to("on_expenses_sync_unsuccessful")
    assert call.event.payload.sync_id == "sync-2024-09-01"


def test_report_id_is_modelled_and_is_a_guid_as_the_spec_says() -> None:
    # ReportGenerationPayload.id: "Unique identifier of the report", format: uuid.
    event = parse_event(REPORT_SUCCESSFUL)
    assert isinstance(event, models.ReportEvent)
    assert event.payload.id == uuid.UUID("bb42ce7e-720a-4ac5-b640-f24f53ff47c8")
    assert event.report_type == "spendAnalysis"
    assert event.payload.model_extra == {}
    status, _, store, key = receive(with_changes(REPORT_SUCCESSFUL, id="report-1"))
    assert status == 422  # a documented GUID that is not one: parked, not half-delivered
    record = store.get(key)
    assert record is not None
    assert record.state is State.PARKED


# --- 4. What used to be extras -----------------------------------------------------------------


def test_company_parent_and_subsidiaries_are_modelled() -> None:
    # Platform, companyDetails: referenceParentCompany and referenceSubsidiaryCompanies, each a
    # companyReference.
    child: dict[str, Any] = {
        "id": "7e2d3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6",
        "name": "Dave Junior",
        "links": {},
    }
    body = with_changes(
        COMPANY_CREATED_WITH_TYPE,
        referenceParentCompany=REFERENCE_COMPANY,
        referenceSubsidiaryCompanies=[child],
    )
    payload = parse_event(body).payload
    assert isinstance(payload, models.CompanyPayload)
    assert payload.reference_parent_company is not None
    assert payload.reference_parent_company.id == uuid.UUID(COMPANY)
    assert payload.reference_parent_company.tags == REFERENCE_COMPANY["tags"]
    assert [c.id for c in payload.reference_subsidiary_companies or ()] == [uuid.UUID(child["id"])]
    assert payload.model_extra == {}


def test_connection_errors_and_info_are_typed() -> None:
    # Platform, Connection: dataConnectionErrors[] (dataConnectionError), connectionInfo.
    resolved = {
        "statusCode": "429",
        "statusText": "Too many requests",
        "errorMessage": "Rate limited",
        "erroredOnUtc": "2022-10-27T09:53:29",
        "status": "Resolved",
        "resolvedOnUtc": "2022-10-27T10:00:00Z",
    }
    permanent = {"statusCode": "401", "status": None}
    body = copy.deepcopy(CONNECTION_FAILED_WITH_TYPE)
    connection_body = body["payload"]["connection"]
    connection_body["dataConnectionErrors"] += [resolved, permanent]
    connection_body["connectionInfo"] = {"realmId": "4620816365183957550"}
    connection = parse_event(body).payload.connection
    assert connection is not None
    assert connection.status == ConnectionStatus.PENDING_AUTH
    assert connection.connection_info == {"realmId": "4620816365183957550"}
    errors = connection.data_connection_errors or []
    assert [type(error) for error in errors] == [models.DataConnectionError] * 3
    first, second, third = errors
    assert first.status_code == "403"
    assert first.status == DataConnectionErrorStatus.ACTIVE
    assert first.errored_on_utc == datetime(2022, 10, 27, 9, 53, 29, tzinfo=timezone.utc)
    assert second.status == DataConnectionErrorStatus.RESOLVED
    assert second.errored_on_utc is not None
    assert second.errored_on_utc.tzinfo is not None
    assert second.resolved_on_utc == datetime(2022, 10, 27, 10, tzinfo=timezone.utc)
    assert third.status is None  # documented: null means "not transient"
    assert all(error.model_extra == {} for error in errors)
    assert connection.model_extra == {}


def test_enum_like_fields_accept_values_codat_adds_later() -> None:
    body = copy.deepcopy(CONNECTION_FAILED_WITH_TYPE)
    body["payload"]["connection"]["status"] = "Archived"
    body["payload"]["connection"]["dataConnectionErrors"][0]["status"] = "Escalated"
    connection = parse_event(body).payload.connection
    assert connection is not None
    assert connection.status == "Archived"
    assert connection.status not in ConnectionStatus.DOCUMENTED
    assert (connection.data_connection_errors or [])[0].status == "Escalated"


def test_source_account_v2_fields_are_modelled() -> None:
    event = parse_event(SOURCE_ACCOUNT_V2)
    assert isinstance(event, models.SourceAccountEvent)
    account = event.payload.source_account
    assert account is not None
    assert account.routing_info is not None
    assert (account.routing_info.bank_code, account.routing_info.type) == (
        "021001088",
        RoutingType.BANKCODE,
    )
    assert account.account_info is not None
    assert account.account_info.nickname == "account 123"
    assert account.account_info.account_open_date == date(2023, 5, 6)
    assert account.account_info.available_balance == Decimal(10)
    assert account.feed_start_date == date(2024, 5, 1)
    assert account.status == SourceAccountStatus.PENDING
    assert account.model_extra == {}
    assert event.company_id == uuid.UUID(COMPANY)


def test_expenses_transactions_have_status_and_error_message() -> None:
    payload = parse_event(EXPENSES_UNSUCCESSFUL).payload
    assert isinstance(payload, models.ExpensesSyncPayload)
    rows = [(t.status, t.error_message) for t in payload.transactions or ()]
    assert rows == [
        (ExpensesTransactionStatus.COMPLETED, None),
        (ExpensesTransactionStatus.FAILED, "Insufficient funds"),
    ]
    assert all(t.model_extra == {} for t in payload.transactions or ())


# --- 5. The migration bridge uses Codat's list of error statuses ------------------------------


def read_completed(status: str) -> dict[str, Any]:
    """Platform, ReadCompletedWebhook / dataTypeReadSummary, with one data type's status."""
    return {
        "id": "743ec94a-8aa4-44bb-8bd4-e1855ee0e74b",
        "eventType": "read.completed",
        "generatedDate": "2022-10-23T00:00:00.000Z",
        "payload": {
            "referenceCompany": {"id": COMPANY, "name": "Toft stores"},
            "modifiedFromDate": "2022-10-23T00:00:00.000Z",
            "dataTypes": [
                {
                    "connectionId": "2e9d2c44-f675-40ba-8049-353bfcb5e171",
                    "dataType": "invoices",
                    "recordsModified": False,
                    "status": status,
                }
            ],
        },
    }


@pytest.mark.parametrize("status", DatasetErrorStatus.DOCUMENTED)
def test_bridge_maps_every_listed_error_status(status: str) -> None:
    # Webhooks.json, DataSyncStatusChangedToError: the deprecation note lists these nine.
    rules = [alert.kind for alert in translate(parse_event(read_completed(status)))]
    assert rules == [RuleType.DATA_SYNC_COMPLETED, RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR]
    [errored] = translate(parse_event(read_completed(status)))[1:]
    assert errored.data.dataset_status == status


@pytest.mark.parametrize("status", ["Complete", "Queued", "NotSupported", "SomethingError"])
def test_bridge_does_not_invent_error_statuses(status: str) -> None:
    rules = [alert.kind for alert in translate(parse_event(read_completed(status)))]
    assert rules == [RuleType.DATA_SYNC_COMPLETED]


def test_bridge_survives_a_write_id_that_is_not_a_guid() -> None:
    event = parse_event(with_changes(WRITE_SUCCESSFUL, id="push-7f3a"))
    [alert] = translate(event)
    assert alert.kind is RuleType.PUSH_OPERATION_STATUS_CHANGED
    assert alert.data.push_operation_key is None  # the legacy field is a GUID
    [guid] = translate(parse_event(WRITE_SUCCESSFUL))
    assert guid.data.push_operation_key == uuid.UUID("a9367074-b5c3-42c4-9be4-be129f43577e")


# --- 6. Date-times and the pre-2025 bank-feed body ---------------------------------------------


def test_documented_utc_timestamps_are_aware_and_platform_dates_stay_as_sent() -> None:
    # Zone-less values: generatedDate is "the date time in UTC the event was generated";
    # companyDetails.created / lastSync are plain DateTime ("may be unqualified local time").
    body = copy.deepcopy(COMPANY_CREATED_WITH_TYPE)
    body["generatedDate"] = "2024-08-08T17:10:34"
    body["payload"]["created"] = "2022-01-01T12:00:00"
    body["payload"]["lastSync"] = "2022-01-01T12:00:00-05:00"
    event = parse_event(body)
    assert event.generated_date == datetime(2024, 8, 8, 17, 10, 34, tzinfo=timezone.utc)
    payload = event.payload
    assert isinstance(payload, models.CompanyPayload)
    assert payload.created == datetime(2022, 1, 1, 12)
    assert payload.created is not None
    assert payload.created.tzinfo is None
    assert payload.last_sync is not None
    assert payload.last_sync.utcoffset() is not None
    assert payload.last_sync.hour == 12  # the offset is kept, not converted
    assert parse_event(event.model_dump(by_alias=True, mode="json")) == event

    write = with_changes(WRITE_SUCCESSFUL, requestedOnDate="2023-05-03T10:00:00")
    requested = parse_event(write).payload.requested_on_date
    assert requested == datetime(2023, 5, 3, 10, tzinfo=timezone.utc)  # documented UTC

    account = copy.deepcopy(SOURCE_ACCOUNT_V2)
    account["payload"]["sourceAccount"]["modifiedDate"] = "2023-01-09T14:14:14"
    modified = parse_event(account).payload.source_account.modified_date
    assert modified == datetime(2023, 1, 9, 14, 14, 14)  # plain DateTime: naive kept naive


def test_pre_2025_bank_account_key_parses_and_round_trips() -> None:
    body = {
        "id": "ba29118f-5406-4e59-b05c-ba307ca38d01",
        "eventType": "bankFeeds.sourceAccount.connected",
        "generatedDate": "2024-10-04T00:00:00Z",
        "payload": PRE_2025_SOURCE_ACCOUNT,
    }
    event = parse_event(body)
    assert isinstance(event, models.SourceAccountEvent)
    account = event.payload.source_account
    assert account is not None
    assert (account.id, account.account_type, account.balance) == (
        "acc-002",
        "Credit",
        Decimal("99.99"),
    )
    assert event.company_id == uuid.UUID(PRE_2025_SOURCE_ACCOUNT["companyId"])
    assert event.payload.model_extra == {}
    dumped = event.model_dump(by_alias=True, mode="json")
    assert "bankAccount" in dumped["payload"]
    assert "sourceAccount" not in dumped["payload"]
    assert parse_event(dumped) == event
    status, recorder, _, _ = receive(body)
    assert status == 200
    assert recorder.names() == ["on_bank_feeds_source_account_connected", "on_event"]


def test_pre_2025_envelope_less_bank_feed_body_is_parked() -> None:
    status, recorder, store, key = receive(PRE_2025_SOURCE_ACCOUNT)
    assert status == 422
    assert recorder.names() == ["on_rejected"]
    record = store.get(key)
    assert record is not None
    assert record.state is State.PARKED


# --- 7. A wrong field type is parked, never half-delivered --------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        with_changes(PRODUCT_ADDED, products="lending"),
        with_changes(PRODUCT_ADDED, id="not-a-company-guid"),
        with_changes(COMPANY_CREATED_WITH_TYPE, referenceSubsidiaryCompanies={"id": COMPANY}),
        with_changes(CONNECTION_FAILED_WITH_TYPE, connection={"dataConnectionErrors": "403"}),
        with_changes(CONNECTION_FAILED_WITH_TYPE, connection={"connectionInfo": ["x"]}),
        with_changes(SOURCE_ACCOUNT_V2, sourceAccount={"routingInfo": "021001088"}),
        with_changes(SOURCE_ACCOUNT_V2, sourceAccount={"feedStartDate": "soon"}),
        with_changes(EXPENSES_UNSUCCESSFUL, transactions=[{"errorMessage": ["no"]}]),
        with_changes(WRITE_SUCCESSFUL, id={"key": 1}),
        {**COMPANY_CREATED_WITH_TYPE, "generatedDate": "yesterday"},
        {**COMPANY_CREATED_WITH_TYPE, "type": 7},
    ],
    ids=lambda body: json.dumps(body)[:60],
)
def test_wrong_field_types_are_parked(body: dict[str, Any]) -> None:
    status, recorder, store, key = receive(body)
    assert status == 422
    assert recorder.names() == ["on_rejected"]
    record = store.get(key)
    assert record is not None
    assert record.state is State.PARKED
