"""The rule table: canonical strings, every known spelling, hook names, and agreement with specs."""

from __future__ import annotations

import inspect

import pytest

from codat_webhooks import RuleType
from codat_webhooks.hooks import alert_specs
from codat_webhooks.models import ALERT_CLASSES
from codat_webhooks.rules import RULES

CONTRACT_TABLE = {
    "DataConnectionStatusChanged": "on_data_connection_status_changed",
    "New company synchronised": "on_new_company_synchronised",
    "Data sync completed": "on_data_sync_completed",
    "Dataset data changed": "on_dataset_data_changed",
    "Data Sync Status Changed To Error": "on_data_sync_status_changed_to_error",
    "Push Operation Status Changed()": "on_push_operation_status_changed",
    "Push Operation Timed Out": "on_push_operation_timed_out",
    "Account Categories Updated": "on_account_categories_updated",
    "Sync Connection Deleted": "on_sync_connection_deleted",
    "Sync Started": "on_expenses_sync_started",
    "Sync Completed": "on_expenses_sync_completed",
    "Sync Failed": "on_expenses_sync_failed",
    "Rate Limit Reached": "on_rate_limit_reached",
    "Rate Limit Reset": "on_rate_limit_reset",
}


def test_rule_types_and_hooks_match_the_contract() -> None:
    assert {kind.value: kind.hook for kind in RuleType} == CONTRACT_TABLE
    assert all(isinstance(kind, str) for kind in RuleType)


def test_table_hookspecs_and_models_agree() -> None:
    assert [rule.type for rule in RULES] == list(RuleType)
    for kind in RuleType:
        spec = getattr(alert_specs, kind.hook)
        assert list(inspect.signature(spec).parameters) == ["alert", "delivery"]
        assert spec.__doc__, f"{kind.hook} is undocumented"
        assert ALERT_CLASSES[kind].model_validate({"RuleType": kind.value}).kind is kind
    rule_hooks = {name for name in dir(alert_specs) if name.startswith("on_")} - {
        "on_alert",
        "on_unknown_alert",
        "on_duplicate",
        "on_rejected",
        "on_handler_error",
        "on_outcome",
        "on_stale",
    }
    assert rule_hooks == {kind.hook for kind in RuleType}


SPELLINGS = [
    # canonical strings, as the seed prints them
    *[(kind.value, kind) for kind in RuleType],
    # case and spacing
    ("dataconnectionstatuschanged", RuleType.DATA_CONNECTION_STATUS_CHANGED),
    ("  Data  sync   completed ", RuleType.DATA_SYNC_COMPLETED),
    ("DATASET DATA CHANGED", RuleType.DATASET_DATA_CHANGED),
    ("rate_limit_reset", RuleType.RATE_LIMIT_RESET),
    # the trailing () or its absence
    ("Push Operation Status Changed", RuleType.PUSH_OPERATION_STATUS_CHANGED),
    ("push operation status changed ()", RuleType.PUSH_OPERATION_STATUS_CHANGED),
    # British and American spelling
    ("New company synchronized", RuleType.NEW_COMPANY_SYNCHRONISED),
    ("New Company Synchronised", RuleType.NEW_COMPANY_SYNCHRONISED),
    # To / to Error
    ("Data Sync Status Changed to Error", RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR),
    # PascalCase names used over the new service in 2024
    ("NewCompanySynchronized", RuleType.NEW_COMPANY_SYNCHRONISED),
    ("DataSyncCompleted", RuleType.DATA_SYNC_COMPLETED),
    ("DatasetDataChanged", RuleType.DATASET_DATA_CHANGED),
    ("DataSyncStatusChangedToError", RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR),
    ("PushOperationStatusChanged", RuleType.PUSH_OPERATION_STATUS_CHANGED),
    ("PushOperationTimedOut", RuleType.PUSH_OPERATION_TIMED_OUT),
    ("AccountCategoriesUpdated", RuleType.ACCOUNT_CATEGORIES_UPDATED),
    ("SyncConnectionDeleted", RuleType.SYNC_CONNECTION_DELETED),
    ("SyncStarted", RuleType.EXPENSES_SYNC_STARTED),
    ("SyncCompleted", RuleType.EXPENSES_SYNC_COMPLETED),
    ("SyncFailed", RuleType.EXPENSES_SYNC_FAILED),
    ("ClientRateLimitReached", RuleType.RATE_LIMIT_REACHED),
    ("ClientRateLimitReset", RuleType.RATE_LIMIT_RESET),
]


@pytest.mark.parametrize(("text", "expected"), SPELLINGS)
def test_parse_recognises_every_spelling(text: str, expected: RuleType) -> None:
    assert RuleType.parse(text) is expected


@pytest.mark.parametrize(
    "text",
    ["", "Data sync", "DatasetStatusChangedToError", "read.completed", "Sync", None, 42],
)
def test_parse_returns_none_for_unknown_rule_types(text: object) -> None:
    assert RuleType.parse(text) is None


def test_expenses_and_data_sync_completed_stay_distinct() -> None:
    assert RuleType.parse("Sync Completed") is RuleType.EXPENSES_SYNC_COMPLETED
    assert RuleType.parse("Data sync completed") is RuleType.DATA_SYNC_COMPLETED
