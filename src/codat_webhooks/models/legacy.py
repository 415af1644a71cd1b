"""Legacy rule alerts: the PascalCase envelope and one ``Data`` model per rule type.

Every ``Data`` field is optional because Codat has shipped each rule with ``Data`` missing,
``{}`` or partially filled at some point; a receiver that rejects those loses real alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import field_validator

from ..rules import RuleType
from ._fields import CodatId, CodatModel, UtcDatetime, codat_field

__all__ = [
    "ALERT_CLASSES",
    "AccountCategoriesUpdatedAlert",
    "AccountCategoriesUpdatedData",
    "Alert",
    "DataConnectionStatusChangedAlert",
    "DataConnectionStatusChangedData",
    "DataSyncCompletedAlert",
    "DataSyncStatusChangedToErrorAlert",
    "DataSyncStatusChangedToErrorData",
    "DatasetData",
    "DatasetDataChangedAlert",
    "ExpensesSyncCompletedAlert",
    "ExpensesSyncData",
    "ExpensesSyncFailedAlert",
    "ExpensesSyncFailedData",
    "ExpensesSyncStartedAlert",
    "NewCompanySynchronisedAlert",
    "NewCompanySynchronisedData",
    "NoData",
    "PushOperationStatusChangedAlert",
    "PushOperationStatusChangedData",
    "PushOperationTimedOutAlert",
    "PushOperationTimedOutData",
    "RateLimitReachedAlert",
    "RateLimitReachedData",
    "RateLimitResetAlert",
    "RateLimitResetData",
    "SyncConnectionDeletedAlert",
]

RULE_TYPE_KEYS = ("RuleType", "Type", "ruleType", "type")
"""Where the rule type may sit: ``Type`` is the older Codat-Common spec's spelling."""


class Alert(CodatModel):
    """A legacy alert. Instances of this class itself are alerts of an unknown rule type."""

    _kind: ClassVar[RuleType | None] = None

    client_id: CodatId = codat_field("ClientId")
    client_name: str | None = codat_field("ClientName")
    company_id: CodatId = codat_field("CompanyId")
    data_connection_id: CodatId = codat_field("DataConnectionId")
    rule_id: CodatId = codat_field("RuleId")
    rule_type: str = codat_field("RuleType", *RULE_TYPE_KEYS, default=...)
    alert_id: CodatId = codat_field("AlertId")
    message: str | None = codat_field("Message")
    data: Any = codat_field("Data", default_factory=dict)
    """The rule's data model; a plain ``dict`` on alerts of an unknown rule type."""

    @field_validator("data", mode="before")
    @classmethod
    def _data_is_an_object(cls, value: Any) -> Any:
        if type(value) is dict:
            return value
        if value is None:
            return {}
        if not isinstance(value, Mapping | CodatModel):
            raise ValueError("Data must be a JSON object")
        return value

    @property
    def kind(self) -> RuleType | None:
        """The recognised rule type, or ``None`` for an unknown one."""
        kind = type(self)._kind
        return kind if kind is not None else RuleType.parse(self.rule_type)


# --- Data models ----------------------------------------------------------------------------


class NoData(CodatModel):
    """``Data`` of a rule that documents none (Sync Connection Deleted); extras are kept."""


class DataConnectionStatusChangedData(CodatModel):
    data_connection_id: CodatId = codat_field("dataConnectionId")
    platform_key: str | None = codat_field("platformKey")
    new_status: str | None = codat_field("newStatus")
    old_status: str | None = codat_field("oldStatus")


class NewCompanySynchronisedData(CodatModel):
    company_name: str | None = codat_field("companyName")
    """Despite the name, Codat's example puts a GUID here; kept as the string it is."""
    source_type: str | None = codat_field("sourceType")


class DatasetData(CodatModel):
    data_type: str | None = codat_field("dataType")
    dataset_id: CodatId = codat_field("datasetId")


class DataSyncStatusChangedToErrorData(DatasetData):
    dataset_status: str | None = codat_field("datasetStatus")


class PushOperationStatusChangedData(CodatModel):
    data_type: str | None = codat_field("dataType")
    status: str | None = codat_field("status")
    push_operation_key: CodatId = codat_field("pushOperationKey")


class PushOperationTimedOutData(CodatModel):
    data_type: str | None = codat_field("dataType")
    push_operation_key: CodatId = codat_field("pushOperationKey")
    push_operation_guid: CodatId = codat_field("pushOperationGuid")


class AccountCategoriesUpdatedData(CodatModel):
    modified_date: UtcDatetime = codat_field("modifiedDate")


class ExpensesSyncData(CodatModel):
    sync_id: str | None = codat_field("syncId")
    """A plain string, as in ``json/Codat-Expenses.json`` (no ``format: uuid``)."""
    sync_type: str | None = codat_field("syncType")
    sync_date_range_start_utc: UtcDatetime = codat_field("SyncDateRangeStartUtc")
    sync_date_range_finish_utc: UtcDatetime = codat_field("SyncDateRangeFinishUtc")


class ExpensesSyncFailedData(ExpensesSyncData):
    failure_stage: str | None = codat_field("FailureStage")


class RateLimitReachedData(CodatModel):
    daily_quota: int | None = codat_field("DailyQuota")
    expires_utc: UtcDatetime = codat_field("ExpiresUtc")


class RateLimitResetData(RateLimitReachedData):
    quota_remaining: int | None = codat_field("QuotaRemaining")
    reset_reason: str | None = codat_field("ResetReason")


# --- One alert class per rule type ----------------------------------------------------------


def _data_field(model: type[CodatModel]) -> Any:
    return codat_field("Data", default_factory=model)


class DataConnectionStatusChangedAlert(Alert):
    _kind = RuleType.DATA_CONNECTION_STATUS_CHANGED
    data: DataConnectionStatusChangedData = _data_field(DataConnectionStatusChangedData)


class NewCompanySynchronisedAlert(Alert):
    _kind = RuleType.NEW_COMPANY_SYNCHRONISED
    data: NewCompanySynchronisedData = _data_field(NewCompanySynchronisedData)


class DataSyncCompletedAlert(Alert):
    _kind = RuleType.DATA_SYNC_COMPLETED
    data: DatasetData = _data_field(DatasetData)


class DatasetDataChangedAlert(Alert):
    _kind = RuleType.DATASET_DATA_CHANGED
    data: DatasetData = _data_field(DatasetData)


class DataSyncStatusChangedToErrorAlert(Alert):
    _kind = RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR
    data: DataSyncStatusChangedToErrorData = _data_field(DataSyncStatusChangedToErrorData)


class PushOperationStatusChangedAlert(Alert):
    _kind = RuleType.PUSH_OPERATION_STATUS_CHANGED
    data: PushOperationStatusChangedData = _data_field(PushOperationStatusChangedData)


class PushOperationTimedOutAlert(Alert):
    _kind = RuleType.PUSH_OPERATION_TIMED_OUT
    data: PushOperationTimedOutData = _data_field(PushOperationTimedOutData)


class AccountCategoriesUpdatedAlert(Alert):
    _kind = RuleType.ACCOUNT_CATEGORIES_UPDATED
    data: AccountCategoriesUpdatedData = _data_field(AccountCategoriesUpdatedData)


class SyncConnectionDeletedAlert(Alert):
    _kind = RuleType.SYNC_CONNECTION_DELETED
    data: NoData = _data_field(NoData)


class ExpensesSyncStartedAlert(Alert):
    _kind = RuleType.EXPENSES_SYNC_STARTED
    data: ExpensesSyncData = _data_field(ExpensesSyncData)


class ExpensesSyncCompletedAlert(Alert):
    _kind = RuleType.EXPENSES_SYNC_COMPLETED
    data: ExpensesSyncData = _data_field(ExpensesSyncData)


class ExpensesSyncFailedAlert(Alert):
    _kind = RuleType.EXPENSES_SYNC_FAILED
    data: ExpensesSyncFailedData = _data_field(ExpensesSyncFailedData)


class RateLimitReachedAlert(Alert):
    _kind = RuleType.RATE_LIMIT_REACHED
    data: RateLimitReachedData = _data_field(RateLimitReachedData)


class RateLimitResetAlert(Alert):
    _kind = RuleType.RATE_LIMIT_RESET
    data: RateLimitResetData = _data_field(RateLimitResetData)


ALERT_CLASSES: dict[RuleType, type[Alert]] = {
    cls._kind: cls
    for cls in Alert.__subclasses__()
    if cls._kind is not None  # pragma: no branch - every subclass above names its rule
}
