"""The payloads of new-service events, and the pieces they share.

Each model follows its schema in Codat's published specs (``codatio/oas``); the rules every
field follows (optional fields, UUIDs only where the schema says ``format: uuid``, UTC only where
Codat documents it) are in :mod:`codat_webhooks.models.events`, which re-exports these names.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import (
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from ._fields import CodatDate, CodatId, CodatModel, LocalDatetime, UtcDatetime, codat_field

__all__ = [
    "AccountInfo",
    "ClientRateLimitPayload",
    "CompanyLinks",
    "CompanyPayload",
    "CompanyProductPayload",
    "CompanyReference",
    "Connection",
    "ConnectionPayload",
    "DataConnectionError",
    "DataTypeReadSummary",
    "ExpensesSyncPayload",
    "ExpensesTransaction",
    "KeepsReceivedKeys",
    "Payload",
    "ReadCompletedPayload",
    "ReportPayload",
    "RoutingInfo",
    "SourceAccount",
    "SourceAccountPayload",
    "WritePayload",
    "WriteRecord",
]


# --- Shared pieces --------------------------------------------------------------------------


_RECEIVED_KEYS = "received_keys"
"""Where :class:`KeepsReceivedKeys` keeps, in ``__pydantic_private__``, the keys Codat used."""


class KeepsReceivedKeys(CodatModel):
    """A model with fields Codat has sent under more than one key, written back as received.

    ``_ALTERNATIVE_KEYS`` maps a field's documented key to the other keys Codat has used for it.
    Without this, ``model_dump(by_alias=True)`` would rename ``type`` to ``eventType`` (or
    ``bankAccount`` to ``sourceAccount``) and a dump would no longer be what Codat sent.

    The keys used are kept in ``__pydantic_private__`` (where pydantic keeps private values, so
    ``==``, copies and pickles see them), written only on the rare model that used another key:
    a declared private attribute would be set up on every event, which costs a fifth of an
    event's validation.
    """

    _ALTERNATIVE_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {}

    @model_validator(mode="wrap")
    @classmethod
    def _note_received_keys(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, Mapping):
            received = {}
            for documented, others in cls._ALTERNATIVE_KEYS.items():
                if documented in data:
                    continue
                for key in others:
                    if key in data:
                        received[documented] = key
                        break
            if received:
                object.__setattr__(model, "__pydantic_private__", {_RECEIVED_KEYS: received})
        return model

    @model_serializer(mode="wrap")
    def _write_received_keys(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        dumped = handler(self)
        kept = self.__pydantic_private__
        received = kept.get(_RECEIVED_KEYS) if kept else None
        if received and info.by_alias and isinstance(dumped, dict):
            return {received.get(key, key): value for key, value in dumped.items()}
        return dumped


class CompanyLinks(CodatModel):
    portal: str | None = codat_field("portal")


class CompanyReference(CodatModel):
    """``payload.referenceCompany`` (schema ``companyReference``): which company an event is
    about; also each entry of a company's parent and subsidiary references."""

    id: CodatId = codat_field("id")
    name: str | None = codat_field("name")
    description: str | None = codat_field("description")
    links: CompanyLinks | None = codat_field("links")
    tags: dict[str, Any] | None = codat_field("tags")


class Payload(CodatModel):
    """Base of every payload: the company reference most events carry."""

    reference_company: CompanyReference | None = codat_field("referenceCompany")

    def _about_company(self) -> uuid.UUID | None:
        """The company this payload is about, wherever this event type puts it."""
        return self.reference_company.id if self.reference_company else None


# --- Payloads -------------------------------------------------------------------------------


class CompanyPayload(Payload):
    """``company.created|deleted`` (schema ``companyDetails``): the company object itself.

    ``last_sync`` and ``created`` are Codat ``DateTime`` values with no documented zone: kept as
    sent, naive when Codat sends no offset.
    """

    id: CodatId = codat_field("id")
    name: str | None = codat_field("name")
    description: str | None = codat_field("description")
    redirect: str | None = codat_field("redirect")
    last_sync: LocalDatetime = codat_field("lastSync")
    created: LocalDatetime = codat_field("created")
    created_by_user_name: str | None = codat_field("createdByUserName")
    products: list[str] | None = codat_field("products")
    tags: dict[str, Any] | None = codat_field("tags")
    reference_parent_company: CompanyReference | None = codat_field("referenceParentCompany")
    """The company that owns or controls this one, if any."""
    reference_subsidiary_companies: list[CompanyReference] | None = codat_field(
        "referenceSubsidiaryCompanies"
    )
    """Companies this one owns or controls (empty when it has none)."""

    def _about_company(self) -> uuid.UUID | None:
        return self.id or super()._about_company()


class CompanyProductPayload(Payload):
    """``company.product.added|removed`` (schema ``companyProductWebhookPayload``).

    ``id`` is the company the product change applies to (so ``event.company_id`` is set);
    ``products`` is the full list of products enabled after the change.
    """

    id: CodatId = codat_field("id")
    name: str | None = codat_field("name")
    description: str | None = codat_field("description")
    product_id: str | None = codat_field("productId")
    """The product added or removed (``lending``): an identifier, not a GUID."""
    product_name: str | None = codat_field("productName")
    products: list[str] | None = codat_field("products")

    def _about_company(self) -> uuid.UUID | None:
        return self.id or super()._about_company()


class DataConnectionError(CodatModel):
    """One entry of ``connection.dataConnectionErrors`` (schema ``dataConnectionError``)."""

    status_code: str | None = codat_field("statusCode")
    """The source platform's HTTP status code, as a string (``"403"``)."""
    status_text: str | None = codat_field("statusText")
    error_message: str | None = codat_field("errorMessage")
    errored_on_utc: UtcDatetime = codat_field("erroredOnUtc")
    status: str | None = codat_field("status")
    """``Active`` or ``Resolved`` for a transient error, ``None`` for one that is not transient
    (:class:`~codat_webhooks.models.values.DataConnectionErrorStatus`)."""
    resolved_on_utc: UtcDatetime = codat_field("resolvedOnUtc")


class Connection(CodatModel):
    """The full connection object, as ``GET /companies/{id}/connections/{id}`` returns it."""

    id: CodatId = codat_field("id")
    integration_id: CodatId = codat_field("integrationId")
    integration_key: str | None = codat_field("integrationKey")
    source_id: str | None = codat_field("sourceId")
    source_type: str | None = codat_field("sourceType")
    platform_name: str | None = codat_field("platformName")
    link_url: str | None = codat_field("linkUrl")
    status: str | None = codat_field("status")
    """PendingAuth, Linked, Unlinked or Deauthorized
    (:class:`~codat_webhooks.models.values.ConnectionStatus`)."""
    last_sync: LocalDatetime = codat_field("lastSync")
    created: LocalDatetime = codat_field("created")
    data_connection_errors: list[DataConnectionError] | None = codat_field("dataConnectionErrors")
    connection_info: dict[str, Any] | None = codat_field("connectionInfo")
    """Integration-specific details, free-form in Codat's schema."""


class ConnectionPayload(Payload):
    connection: Connection | None = codat_field("connection")


class DataTypeReadSummary(CodatModel):
    """One entry of ``read.completed``'s ``dataTypes``: handle every entry, not just the first."""

    connection_id: CodatId = codat_field("connectionId")
    data_type: str | None = codat_field("dataType")
    records_modified: bool | None = codat_field("recordsModified")
    status: str | None = codat_field("status")
    """``Complete``, or an error status such as ``ProcessingError``."""
    issues: list[Any] | None = codat_field("issues")


class ReadCompletedPayload(Payload):
    modified_from_date: UtcDatetime = codat_field("modifiedFromDate")
    data_types: list[DataTypeReadSummary] | None = codat_field("dataTypes")


class WriteRecord(CodatModel):
    id: str | None = codat_field("id")
    """The platform's record ID (not a GUID): set on success, and always for attachments."""


class WritePayload(Payload):
    """``{dataType}.write.*`` (schema ``dataTypeWriteWebhookPayload``)."""

    id: str | None = codat_field("id")
    """The write request (push operation) ID, what legacy alerts called ``pushOperationKey``.
    A plain string: the schema does not promise a GUID."""
    type: str | None = codat_field("type")
    """Create, Update, Delete or UploadAttachment
    (:class:`~codat_webhooks.models.values.WriteType`)."""
    connection_id: CodatId = codat_field("connectionId")
    requested_on_date: UtcDatetime = codat_field("requestedOnDate")
    completed_on_date: UtcDatetime = codat_field("completedOnDate")
    status: str | None = codat_field("status")
    record: WriteRecord | None = codat_field("record")
    attachment_id: str | None = codat_field("attachmentId")


class ClientRateLimitPayload(Payload):
    """``client.rateLimit.*``: client-wide, so there is no company."""

    daily_quota: int | None = codat_field("dailyQuota")
    quota_remaining: int | None = codat_field("quotaRemaining")
    expiry_date: UtcDatetime = codat_field("expiryDate")


class RoutingInfo(CodatModel):
    """A V2 source account's ``routingInfo`` (schema ``routingInfo``)."""

    bank_code: str | None = codat_field("bankCode")
    type: str | None = codat_field("type")
    """The routing scheme (:class:`~codat_webhooks.models.values.RoutingType`)."""


class AccountInfo(CodatModel):
    """A V2 source account's ``accountInfo`` (schema ``accountInfo``)."""

    nickname: str | None = codat_field("nickname")
    account_open_date: CodatDate = codat_field("accountOpenDate")
    available_balance: Decimal | None = codat_field("availableBalance")


class SourceAccount(CodatModel):
    """A bank-feed source account: V1 (schema ``SourceAccount``) or V2 (``SourceAccountv2``)."""

    id: str | None = codat_field("id")
    account_name: str | None = codat_field("accountName")
    account_number: str | None = codat_field("accountNumber")
    sort_code: str | None = codat_field("sortCode")
    account_type: str | None = codat_field("accountType")
    currency: str | None = codat_field("currency")
    balance: Decimal | None = codat_field("balance")
    modified_date: LocalDatetime = codat_field("modifiedDate")
    status: str | None = codat_field("status")
    """:class:`~codat_webhooks.models.values.SourceAccountStatus`."""
    routing_info: RoutingInfo | None = codat_field("routingInfo")
    account_info: AccountInfo | None = codat_field("accountInfo")
    feed_start_date: CodatDate = codat_field("feedStartDate")


class SourceAccountPayload(KeepsReceivedKeys, Payload):
    """``bankFeeds.sourceAccount.*``: ``companyId`` as well as (or instead of) a reference.

    Bodies from before 2025-01-10 called the account ``bankAccount``; it is read into
    ``source_account`` and written back as ``bankAccount``.
    """

    _ALTERNATIVE_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "sourceAccount": ("SourceAccount", "bankAccount", "BankAccount")
    }

    company_id: CodatId = codat_field("companyId")
    connection_id: CodatId = codat_field("connectionId")
    source_account: SourceAccount | None = codat_field(
        "sourceAccount", "bankAccount", "BankAccount"
    )

    def _about_company(self) -> uuid.UUID | None:
        return self.company_id or super()._about_company()


class ExpensesTransaction(CodatModel):
    """One entry of ``transactions`` (schema ``ExpensesSyncWebhook`` ``transaction``)."""

    id: str | None = codat_field("id")
    status: str | None = codat_field("status")
    """:class:`~codat_webhooks.models.values.ExpensesTransactionStatus`."""
    error_message: str | None = codat_field("errorMessage")


class ExpensesSyncPayload(Payload):
    """``expenses.sync.*`` (schema ``expensesSyncWebhookPayload``)."""

    sync_id: str | None = codat_field("syncId")
    """A plain string: the schema does not promise a GUID."""
    transactions: list[ExpensesTransaction] | None = codat_field("transactions")


class ReportPayload(Payload):
    """Lending and Spend Insights report events (schema ``ReportGenerationPayload``)."""

    id: CodatId = codat_field("id")
    """The report's ID (``format: uuid`` in Codat-Lending and Codat-Spend-Insights)."""
