"""Realistic sample bodies, each with fresh IDs so two samples never share a key.

Legacy ``Data`` values and new-service payloads follow Codat's documented examples (the rule-types
page, the migration guide, the OAS); the envelope is rebuilt per call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import PayloadError
from ..event_types import EventType
from ..rules import RuleType

__all__ = [
    "LEGACY_DATA",
    "event_body",
    "event_sample",
    "event_type_string",
    "legacy_sample",
    "sample_body",
]

_LEGACY_DATA: dict[RuleType, dict[str, Any] | None] = {
    RuleType.DATA_CONNECTION_STATUS_CHANGED: {
        "dataConnectionId": "{data_connection_id}",
        "newStatus": "Linked",
        "oldStatus": "PendingAuth",
        "platformKey": "gbol",
    },
    RuleType.NEW_COMPANY_SYNCHRONISED: {"companyName": "{company_id}", "sourceType": "Accounting"},
    RuleType.DATA_SYNC_COMPLETED: {"dataType": "invoices", "datasetId": "{new}"},
    RuleType.DATASET_DATA_CHANGED: {"dataType": "invoices", "datasetId": "{new}"},
    RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR: {
        "dataType": "invoices",
        "datasetStatus": "ProcessingError",
        "datasetId": "{new}",
    },
    RuleType.PUSH_OPERATION_STATUS_CHANGED: {
        "dataType": "invoices",
        "status": "Success",
        "pushOperationKey": "{new}",
    },
    RuleType.PUSH_OPERATION_TIMED_OUT: {
        "dataType": "invoices",
        "pushOperationKey": "{push}",
        "pushOperationGuid": "{push}",
    },
    RuleType.ACCOUNT_CATEGORIES_UPDATED: {"modifiedDate": "2026-11-24T14:15:22Z"},
    RuleType.SYNC_CONNECTION_DELETED: None,
    RuleType.EXPENSES_SYNC_STARTED: {
        "syncId": "{new}",
        "syncType": "Expense",
        "SyncDateRangeStartUtc": "2026-11-01T00:00:00Z",
        "SyncDateRangeFinishUtc": "2026-11-24T00:00:00Z",
    },
    RuleType.EXPENSES_SYNC_COMPLETED: {"syncId": "{new}", "syncType": "Expense"},
    RuleType.EXPENSES_SYNC_FAILED: {
        "syncId": "{new}",
        "syncType": "Expense",
        "FailureStage": "Pushing",
    },
    RuleType.RATE_LIMIT_REACHED: {"DailyQuota": 1000, "ExpiresUtc": "2026-11-25T00:00:00Z"},
    RuleType.RATE_LIMIT_RESET: {
        "QuotaRemaining": 1000,
        "ResetReason": "The quota was reset because it is a new day.",
        "DailyQuota": 1000,
        "ExpiresUtc": "2026-11-25T00:00:00Z",
    },
}
LEGACY_DATA: Mapping[RuleType, dict[str, Any] | None] = _LEGACY_DATA
"""Each rule's documented ``Data`` shape, with ``{placeholders}`` filled per sample."""

_CLIENT_ONLY = (RuleType.RATE_LIMIT_REACHED, RuleType.RATE_LIMIT_RESET)


def _fill(value: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        name = value[1:-1]
        return str(uuid.uuid4()) if name == "new" else ids[name]
    return value


def legacy_sample(
    rule: RuleType | str,
    *,
    company_id: str | uuid.UUID | None = None,
    alert_id: str | uuid.UUID | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A legacy alert body for ``rule`` (any accepted spelling), as Codat would send it.

    ``overrides`` set envelope keys (``"Message"``) or, with a ``Data.`` prefix, data keys
    (``"Data.newStatus"``). Rate-limit rules carry no ``CompanyId``, as in Codat's examples.
    """
    kind = rule if isinstance(rule, RuleType) else RuleType.parse(rule)
    if kind is None:
        raise PayloadError(f"unknown rule type {rule!r}")
    ids = {
        "company_id": str(company_id or uuid.uuid4()),
        "data_connection_id": str(uuid.uuid4()),
        "push": str(uuid.uuid4()),
    }
    body: dict[str, Any] = {
        "ClientId": "bae71d36-ff47-420a-b4a6-f8c9ddf41140",
        "ClientName": "Bank of Dave",
    }
    if kind not in _CLIENT_ONLY:
        body["CompanyId"] = ids["company_id"]
        body["DataConnectionId"] = ids["data_connection_id"]
    body |= {
        "RuleId": str(uuid.uuid4()),
        "RuleType": kind.value,
        "AlertId": str(alert_id or uuid.uuid4()),
        "Message": f"Sample {kind.value} alert from codat-webhooks",
    }
    template = LEGACY_DATA[kind]
    if template is not None:
        body["Data"] = {name: _fill(value, ids) for name, value in template.items()}
    for name, value in (overrides or {}).items():
        if name.startswith("Data."):
            body.setdefault("Data", {})[name[5:]] = value
        else:
            body[name] = value
    return body


def sample_body(rule: RuleType | str, **kwargs: Any) -> bytes:
    """:func:`legacy_sample` serialised the way Codat sends it (compact UTF-8 JSON)."""
    return json.dumps(legacy_sample(rule, **kwargs), separators=(",", ":")).encode()


# --- New-service events ---------------------------------------------------------------------

_GENERATED = "2026-11-24T14:15:27Z"


def _reference_company(company_id: str) -> dict[str, Any]:
    return {
        "id": company_id,
        "name": "Toft stores",
        "description": "Looking to get a loan for refurb.",
        "links": {"portal": f"https://app.codat.io/companies/{company_id}/summary"},
        "tags": {"region": "uk"},
    }


def _connection(company_id: str, connection_id: str, status: str) -> dict[str, Any]:
    return {
        "id": connection_id,
        "integrationId": "bf083d72-62c7-493e-aec9-81b4dbba7e2c",
        "integrationKey": "gbol",
        "sourceId": "bdd831ce-eebd-4896-89a7-20e5ee8989ee",
        "platformName": "Xero",
        "linkUrl": f"https://link-api.codat.io/companies/{company_id}/connections/"
        f"{connection_id}/start",
        "status": status,
        "lastSync": "2026-11-24T10:22:43.6464237Z",
        "created": "2026-11-20T09:53:29Z",
        "sourceType": "Accounting",
        "dataConnectionErrors": [],
    }


_CONNECTION_STATUS = {
    EventType.CONNECTION_CREATED: "PendingAuth",
    EventType.CONNECTION_CONNECTED: "Linked",
    EventType.CONNECTION_DISCONNECTED: "Deauthorized",
    EventType.CONNECTION_RECONNECTED: "Linked",
    EventType.CONNECTION_FAILED: "PendingAuth",
    EventType.CONNECTION_DELETED: "Unlinked",
}


def _event_payload(kind: EventType, company_id: str, connection_id: str) -> dict[str, Any]:
    """The documented payload of ``kind`` (Codat's docs and OAS examples), fresh IDs filled."""
    reference = {"referenceCompany": _reference_company(company_id)}
    if kind in (EventType.COMPANY_CREATED, EventType.COMPANY_DELETED):
        return {
            "id": company_id,
            "name": "Toft stores",
            "description": "Looking to get a loan for refurb.",
            "redirect": f"https://link.codat.io/company/{company_id}",
            "lastSync": "2026-11-24T12:30:00.000Z",
            "created": "2026-11-20T11:30:00Z",
            "createdByUserName": "Joe Bloggs",
            "products": ["lending", "spend-insights"],
            "tags": {"region": "uk"},
        }
    if kind in (EventType.COMPANY_PRODUCT_ADDED, EventType.COMPANY_PRODUCT_REMOVED):
        added = kind is EventType.COMPANY_PRODUCT_ADDED
        return {  # companyProductWebhookPayload: the company itself plus the product changed
            "id": company_id,
            "name": "Toft stores",
            "description": "Requested early access to the new financing scheme.",
            "productId": "lending",
            "productName": "Lending",
            "products": ["accounting", "banking", "lending"] if added else ["accounting"],
        }
    if kind in _CONNECTION_STATUS:
        return reference | {
            "connection": _connection(company_id, connection_id, _CONNECTION_STATUS[kind])
        }
    if kind in (EventType.READ_COMPLETED, EventType.READ_COMPLETED_INITIAL):
        return reference | {
            "modifiedFromDate": "2026-11-23T12:00:00.00Z",
            "dataTypes": [
                {
                    "connectionId": connection_id,
                    "dataType": "invoices",
                    "recordsModified": True,
                    "status": "Complete",
                    "issues": [],
                }
            ],
        }
    if kind in (EventType.WRITE_SUCCESSFUL, EventType.WRITE_UNSUCCESSFUL):
        success = kind is EventType.WRITE_SUCCESSFUL
        return reference | {
            "id": str(uuid.uuid4()),
            "type": "Create",
            "connectionId": connection_id,
            "requestedOnDate": "2026-11-24T00:00:00.000Z",
            "completedOnDate": "2026-11-24T00:00:05.000Z",
            "status": "Success" if success else "Failed",
            "record": {"id": "inv_sedi984199smdjsua9124"} if success else None,
            "attachmentId": None,
        }
    if kind is EventType.CLIENT_RATE_LIMIT_REACHED:
        return {"dailyQuota": 1000, "quotaRemaining": 0, "expiryDate": "2026-11-25T00:00:00Z"}
    if kind is EventType.CLIENT_RATE_LIMIT_RESET:
        return {"dailyQuota": 1000, "quotaRemaining": 1000, "expiryDate": "2026-11-26T00:00:00Z"}
    if kind in (
        EventType.BANK_FEEDS_SOURCE_ACCOUNT_CONNECTED,
        EventType.BANK_FEEDS_SOURCE_ACCOUNT_DISCONNECTED,
    ):
        connected = kind is EventType.BANK_FEEDS_SOURCE_ACCOUNT_CONNECTED
        return reference | {
            "companyId": company_id,
            "connectionId": connection_id,
            "sourceAccount": {
                "id": "acc-002",
                "accountName": "account-081",
                "sortCode": "123456",
                "accountType": "Credit",
                "accountNumber": "12345670",
                "currency": "GBP",
                "balance": 99.99,
                "modifiedDate": "2026-11-24T14:14:14.1057478Z",
                "status": "connected" if connected else "disconnected",
            },
        }
    if kind in (EventType.EXPENSES_SYNC_SUCCESSFUL, EventType.EXPENSES_SYNC_UNSUCCESSFUL):
        failed = kind is EventType.EXPENSES_SYNC_UNSUCCESSFUL
        transaction = {"id": "txn-001", "status": "Failed" if failed else "Completed"}
        if failed:
            transaction["errorMessage"] = "Insufficient funds"
        return reference | {"syncId": str(uuid.uuid4()), "transactions": [transaction]}
    return reference | {"id": str(uuid.uuid4())}  # report events: the report's ID


def event_type_string(
    kind: EventType, *, data_type: str = "invoices", report_type: str = "spendAnalysis"
) -> str:
    """The concrete ``eventType`` Codat sends for ``kind`` (placeholders filled in).

    Spend Insights spells its report events ``reports.``, Lending ``report.``; the sample follows.
    """
    value: str = str(kind)
    if kind in (EventType.WRITE_SUCCESSFUL, EventType.WRITE_UNSUCCESSFUL):
        return value.replace("{dataType}", data_type)
    if kind in (EventType.REPORT_GENERATE_SUCCESSFUL, EventType.REPORT_GENERATE_UNSUCCESSFUL):
        prefix = "reports" if report_type == "spendAnalysis" else "report"
        return value.replace("report.{reportType}", f"{prefix}.{report_type}")
    return value


def event_sample(
    event_type: EventType | str,
    *,
    company_id: str | uuid.UUID | None = None,
    event_id: str | uuid.UUID | None = None,
    data_type: str = "invoices",
    report_type: str = "spendAnalysis",
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new-service event body for ``event_type`` (an :class:`EventType` or any string Codat
    sends, such as ``"bills.write.unsuccessful"``), with fresh IDs.

    ``overrides`` set envelope keys (``"generatedDate"``) or, with a ``payload.`` prefix, payload
    keys (``"payload.status"``). An unknown string gives an event with an empty payload, for
    testing ``on_unknown_event``.
    """
    if isinstance(event_type, EventType):
        kind: EventType | None = event_type
        type_string = event_type_string(event_type, data_type=data_type, report_type=report_type)
    else:
        kind, type_string = EventType.parse(event_type), event_type
    company = str(company_id or uuid.uuid4())
    payload = _event_payload(kind, company, str(uuid.uuid4())) if kind else {}
    body: dict[str, Any] = {
        "id": str(event_id or uuid.uuid4()),
        "eventType": type_string,
        "generatedDate": _GENERATED,
        "payload": payload,
    }
    for name, value in (overrides or {}).items():
        if name.startswith("payload."):
            body["payload"][name[8:]] = value
        else:
            body[name] = value
    return body


def event_body(event_type: EventType | str, **kwargs: Any) -> bytes:
    """:func:`event_sample` serialised the way Codat sends it (compact UTF-8 JSON)."""
    return json.dumps(event_sample(event_type, **kwargs), separators=(",", ":")).encode()
