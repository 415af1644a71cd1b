"""Realistic sample bodies, each with fresh IDs so two samples never share a key.

The ``Data`` values follow Codat's documented examples; the envelope is rebuilt per call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import PayloadError
from ..rules import RuleType

__all__ = ["LEGACY_DATA", "legacy_sample", "sample_body"]

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
