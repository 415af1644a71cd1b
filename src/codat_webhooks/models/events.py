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
from typing import Any, ClassVar

from pydantic import (
    ValidationError,
    field_validator,
)

from ..errors import PayloadError
from ..event_types import EventMatch, EventType
from ._fields import CodatId, CodatModel, UtcDatetime, codat_field
from ._parse import describe_validation_error, first_string, load_object
from .payloads import (
    AccountInfo,
    ClientRateLimitPayload,
    CompanyLinks,
    CompanyPayload,
    CompanyProductPayload,
    CompanyReference,
    Connection,
    ConnectionPayload,
    DataConnectionError,
    DataTypeReadSummary,
    ExpensesSyncPayload,
    ExpensesTransaction,
    KeepsReceivedKeys,
    Payload,
    ReadCompletedPayload,
    ReportPayload,
    RoutingInfo,
    SourceAccount,
    SourceAccountPayload,
    WritePayload,
    WriteRecord,
)

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
