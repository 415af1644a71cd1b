"""New-service events: the ``{id, eventType, generatedDate, payload}`` envelope and payloads.

Every field is optional, for the same reason as in the legacy models: Codat adds, renames and
omits fields without notice, and a receiver that rejects a real event loses it. The models follow
Codat's published schemas (``codatio/oas`` ``json/Codat-Platform.json`` and the other product
specs; the tests cite the schema of each body they build):

* IDs are ``uuid.UUID | None`` exactly where the schema says ``format: uuid`` (``""`` and all
  zeros become ``None``); every other ID (the write request ID, an expenses ``syncId``, platform
  record and account IDs) is the string Codat sent.
* The event type is read from ``eventType`` or from ``type``, the key several of Codat's own
  examples use; a dump writes it back under the key it came in.
* Timestamps Codat documents as UTC (the envelope's ``generatedDate``, ``requestedOnDate``,
  ``completedOnDate``, ``modifiedFromDate``, ``expiryDate``, ``...Utc``) are aware, UTC when Codat
  left the zone out. Every other date-time (a company's ``created`` and ``lastSync``, a source
  account's ``modifiedDate``) is kept as sent: Codat documents that such values may be
  *unqualified local times of the business*, so a naive value stays naive.
* Enum-like fields are plain strings; :mod:`codat_webhooks.models.values` lists the documented
  values as constants.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import (
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from ..errors import PayloadError
from ..event_types import EventMatch, EventType
from ._fields import CodatDate, CodatId, CodatModel, LocalDatetime, UtcDatetime, codat_field
from ._parse import describe_validation_error, first_string, load_object

__all__ = [
    "EVENT_CLASSES",
    "AccountInfo",
    "ClientRateLimitEvent",
    "ClientRateLimitPayload",
    "CompanyEvent",
    "CompanyLinks",
    "CompanyPayload",
    "CompanyProductEvent",
    "CompanyProductPayload",
    "CompanyReference",
    "Connection",
    "ConnectionEvent",
    "ConnectionPayload",
    "DataConnectionError",
    "DataTypeReadSummary",
    "Event",
    "ExpensesSyncEvent",
    "ExpensesSyncPayload",
    "ExpensesTransaction",
    "ReadCompletedEvent",
    "ReadCompletedPayload",
    "ReportEvent",
    "ReportPayload",
    "RoutingInfo",
    "SourceAccount",
    "SourceAccountEvent",
    "SourceAccountPayload",
    "WriteEvent",
    "WritePayload",
    "WriteRecord",
    "event_type_of",
    "parse_event",
]

EVENT_TYPE_KEYS = ("eventType", "EventType", "event_type", "type")
"""Where the event type may sit: the schemas say ``eventType``, several of Codat's own examples
(``company.created`` and every ``connection.*`` in codat-docs ``static/oas/Webhooks.json``) say
``type``. ``Type`` is not here: it is the legacy ``RuleType`` spelling."""


# --- Shared pieces --------------------------------------------------------------------------


class KeepsReceivedKeys(CodatModel):
    """A model with fields Codat has sent under more than one key, written back as received.

    ``_ALTERNATIVE_KEYS`` maps a field's documented key to the other keys Codat has used for it.
    Without this, ``model_dump(by_alias=True)`` would rename ``type`` to ``eventType`` (or
    ``bankAccount`` to ``sourceAccount``) and a dump would no longer be what Codat sent.
    """

    _ALTERNATIVE_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {}
    _received_keys: dict[str, str] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _note_received_keys(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, Mapping):
            received = {}
            for documented, others in cls._ALTERNATIVE_KEYS.items():
                if documented not in data:
                    used = next((key for key in others if key in data), None)
                    if used is not None:
                        received[documented] = used
            if received:
                model._received_keys = received
        return model

    @model_serializer(mode="wrap")
    def _write_received_keys(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        dumped = handler(self)
        received = self._received_keys
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


# --- The envelope ---------------------------------------------------------------------------


class Event(KeepsReceivedKeys):
    """A new-service event. Instances of this class itself are events of an unknown type.

    ``event_type`` is read from ``eventType`` or ``type`` and dumped back under the same key.
    ``generated_date`` is documented as UTC and always aware.
    """

    _ALTERNATIVE_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {"eventType": EVENT_TYPE_KEYS[1:]}

    id: CodatId = codat_field("id")
    event_type: str = codat_field("eventType", *EVENT_TYPE_KEYS[1:], default=...)
    generated_date: UtcDatetime = codat_field("generatedDate")
    payload: Any = codat_field("payload", default_factory=dict)
    """The event type's payload model; a plain ``dict`` on events of an unknown type."""

    @field_validator("payload", mode="before")
    @classmethod
    def _payload_is_an_object(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping | CodatModel):
            raise ValueError("payload must be a JSON object")
        return value

    @property
    def match(self) -> EventMatch | None:
        """The recognised event type with its placeholder value, or ``None`` when unknown."""
        return EventType.match(self.event_type)

    @property
    def kind(self) -> EventType | None:
        """The recognised event type, or ``None`` for an unknown one."""
        found = self.match
        return found.type if found is not None else None

    @property
    def _placeholder(self) -> str | None:
        """What fills the type's ``{placeholder}`` segment, for write and report events."""
        found = self.match
        return found.parameter if found is not None else None

    @property
    def company_id(self) -> uuid.UUID | None:
        """The company the event is about, or ``None`` (client-wide and unknown events)."""
        if isinstance(self.payload, Payload):
            return self.payload._about_company()
        reference = self.payload.get("referenceCompany") if isinstance(self.payload, dict) else None
        value = reference.get("id") if isinstance(reference, dict) else None
        try:
            return uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            return None


def _payload_field(model: type[CodatModel]) -> Any:
    return codat_field("payload", default_factory=model)


class CompanyEvent(Event):
    payload: CompanyPayload = _payload_field(CompanyPayload)


class CompanyProductEvent(Event):
    payload: CompanyProductPayload = _payload_field(CompanyProductPayload)


class ConnectionEvent(Event):
    payload: ConnectionPayload = _payload_field(ConnectionPayload)


class ReadCompletedEvent(Event):
    payload: ReadCompletedPayload = _payload_field(ReadCompletedPayload)


class WriteEvent(Event):
    payload: WritePayload = _payload_field(WritePayload)

    @property
    def data_type(self) -> str | None:
        """The data type written, from the event type (``invoices.write.successful``)."""
        return self._placeholder


class ClientRateLimitEvent(Event):
    payload: ClientRateLimitPayload = _payload_field(ClientRateLimitPayload)


class SourceAccountEvent(Event):
    payload: SourceAccountPayload = _payload_field(SourceAccountPayload)


class ExpensesSyncEvent(Event):
    payload: ExpensesSyncPayload = _payload_field(ExpensesSyncPayload)


class ReportEvent(Event):
    payload: ReportPayload = _payload_field(ReportPayload)

    @property
    def report_type(self) -> str | None:
        """The report, from the event type (``spendAnalysis``, ``categorizedBankStatement``)."""
        return self._placeholder


EVENT_CLASSES: dict[EventType, type[Event]] = {
    EventType.COMPANY_CREATED: CompanyEvent,
    EventType.COMPANY_DELETED: CompanyEvent,
    EventType.COMPANY_PRODUCT_ADDED: CompanyProductEvent,
    EventType.COMPANY_PRODUCT_REMOVED: CompanyProductEvent,
    EventType.CONNECTION_CREATED: ConnectionEvent,
    EventType.CONNECTION_CONNECTED: ConnectionEvent,
    EventType.CONNECTION_DISCONNECTED: ConnectionEvent,
    EventType.CONNECTION_RECONNECTED: ConnectionEvent,
    EventType.CONNECTION_FAILED: ConnectionEvent,
    EventType.CONNECTION_DELETED: ConnectionEvent,
    EventType.READ_COMPLETED: ReadCompletedEvent,
    EventType.READ_COMPLETED_INITIAL: ReadCompletedEvent,
    EventType.WRITE_SUCCESSFUL: WriteEvent,
    EventType.WRITE_UNSUCCESSFUL: WriteEvent,
    EventType.CLIENT_RATE_LIMIT_REACHED: ClientRateLimitEvent,
    EventType.CLIENT_RATE_LIMIT_RESET: ClientRateLimitEvent,
    EventType.BANK_FEEDS_SOURCE_ACCOUNT_CONNECTED: SourceAccountEvent,
    EventType.BANK_FEEDS_SOURCE_ACCOUNT_DISCONNECTED: SourceAccountEvent,
    EventType.EXPENSES_SYNC_SUCCESSFUL: ExpensesSyncEvent,
    EventType.EXPENSES_SYNC_UNSUCCESSFUL: ExpensesSyncEvent,
    EventType.REPORT_GENERATE_SUCCESSFUL: ReportEvent,
    EventType.REPORT_GENERATE_UNSUCCESSFUL: ReportEvent,
}
"""The model for each event type; a test proves every :class:`EventType` has one."""


def event_type_of(obj: Mapping[str, Any]) -> str | None:
    """The event-type string under whichever key this sender used, if it is a string."""
    return first_string(obj, EVENT_TYPE_KEYS)


def parse_event(body: bytes | str | Mapping[str, Any]) -> Event:
    """Parse a new-service event into the model for its type (``Event`` itself when unknown).

    Raises :class:`PayloadError` (``status_hint`` 400) when the body is not a JSON object and
    (422) when it is an object without an ``eventType`` (or ``type``) string or with fields of
    the wrong type.
    Transitional PascalCase types are not special here: :func:`codat_webhooks.routing.route`
    sends those to the legacy models before this is called.
    """
    obj = load_object(body)
    event_type = event_type_of(obj)
    if event_type is None:
        raise PayloadError("JSON object has no eventType string")
    model = EVENT_CLASSES.get(EventType.parse(event_type), Event)  # type: ignore[arg-type]
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        reason = describe_validation_error(exc)
        raise PayloadError(f"{event_type!r} event is invalid: {reason}") from None
