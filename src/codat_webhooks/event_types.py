"""New-service event types: the one table where Codat's event-type strings and hook names live.

Codat's new (Svix) webhook service names events with dotted strings (``connection.connected``,
``client.rateLimit.reached``). Two families carry a variable segment: ``{dataType}.write.*``
(``invoices.write.successful``) and the Lending / Spend Insights report events
(``report.categorizedBankStatement.generate.successful``,
``reports.spendAnalysis.generate.unsuccessful``). Hook names follow mechanically from the table:
placeholders are dropped, camelCase becomes snake_case, dots become underscores, ``on_`` goes in
front (``{dataType}.write.successful`` -> ``on_write_successful``).

The PascalCase transitional names that carried legacy bodies over the new service in 2024
(``DataConnectionStatusChanged``, ``AccountCategoriesUpdated``, ...) are *not* here: they are
legacy rule types, recognised by :meth:`codat_webhooks.RuleType.parse`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text_enum import TextEnum

__all__ = ["EVENTS", "EventMatch", "EventSpec", "EventType", "hook_name_for"]


class EventType(TextEnum):
    """Every documented event type, valued by the string (or pattern) Codat's docs print."""

    COMPANY_CREATED = "company.created"
    COMPANY_DELETED = "company.deleted"
    COMPANY_PRODUCT_ADDED = "company.product.added"
    COMPANY_PRODUCT_REMOVED = "company.product.removed"
    CONNECTION_CREATED = "connection.created"
    CONNECTION_CONNECTED = "connection.connected"
    CONNECTION_DISCONNECTED = "connection.disconnected"
    CONNECTION_RECONNECTED = "connection.reconnected"
    CONNECTION_FAILED = "connection.failed"
    CONNECTION_DELETED = "connection.deleted"
    READ_COMPLETED = "read.completed"
    READ_COMPLETED_INITIAL = "read.completed.initial"
    WRITE_SUCCESSFUL = "{dataType}.write.successful"
    WRITE_UNSUCCESSFUL = "{dataType}.write.unsuccessful"
    CLIENT_RATE_LIMIT_REACHED = "client.rateLimit.reached"
    CLIENT_RATE_LIMIT_RESET = "client.rateLimit.reset"
    BANK_FEEDS_SOURCE_ACCOUNT_CONNECTED = "bankFeeds.sourceAccount.connected"
    BANK_FEEDS_SOURCE_ACCOUNT_DISCONNECTED = "bankFeeds.sourceAccount.disconnected"
    EXPENSES_SYNC_SUCCESSFUL = "expenses.sync.successful"
    EXPENSES_SYNC_UNSUCCESSFUL = "expenses.sync.unsuccessful"
    REPORT_GENERATE_SUCCESSFUL = "report.{reportType}.generate.successful"
    REPORT_GENERATE_UNSUCCESSFUL = "report.{reportType}.generate.unsuccessful"

    @property
    def hook(self) -> str:
        """The hookspec called for this event type (derived by :func:`hook_name_for`)."""
        return _HOOKS[self]

    @property
    def spec(self) -> EventSpec:
        """This event type's row of :data:`EVENTS`."""
        return _ROWS[self]

    @property
    def is_pattern(self) -> bool:
        """Whether the value has a ``{placeholder}`` segment (write and report events)."""
        return "{" in self.value

    @classmethod
    def match(cls, text: object) -> EventMatch | None:
        """Recognise ``text`` as a documented event type; ``None`` means an unknown event.

        Case is ignored, because a sender that changes ``bankFeeds`` to ``bankfeeds`` still means
        the same event; the placeholder's value keeps its case.
        """
        if not isinstance(text, str):
            return None
        text = text.strip()
        exact = _EXACT.get(text.lower())
        if exact is not None:
            return EventMatch(exact)
        for member, pattern in _PATTERNS:
            found = pattern.fullmatch(text)
            if found is not None:
                return EventMatch(member, found.group("parameter"))
        return None

    @classmethod
    def parse(cls, text: object) -> EventType | None:
        """The recognised event type of ``text``, or ``None`` (an unknown event, not an error)."""
        found = cls.match(text)
        return found.type if found is not None else None


@dataclass(frozen=True, slots=True)
class EventMatch:
    """A recognised event type and, for pattern types, the value of its placeholder.

    ``parameter`` is the data type of a write event (``invoices``, or a dotted one such as
    ``bankFeeds.accounts``) or the report type of a report event (``spendAnalysis``).
    """

    type: EventType
    parameter: str | None = None


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One row of the event table: the event type and the one-line trigger for docs and CLI.

    ``legacy`` names the legacy rule types Codat's migration guide maps to this event (for the
    docs; the translation itself lives in :mod:`codat_webhooks.plugins.bridge`).
    """

    type: EventType
    summary: str
    legacy: tuple[str, ...] = ()

    @property
    def hook(self) -> str:
        return self.type.hook


EVENTS: tuple[EventSpec, ...] = (
    EventSpec(EventType.COMPANY_CREATED, "A company was created."),
    EventSpec(EventType.COMPANY_DELETED, "A company was deleted."),
    EventSpec(EventType.COMPANY_PRODUCT_ADDED, "A product was enabled for a company."),
    EventSpec(EventType.COMPANY_PRODUCT_REMOVED, "A product was disabled for a company."),
    EventSpec(
        EventType.CONNECTION_CREATED,
        "A connection was created (status PendingAuth).",
        ("DataConnectionStatusChanged",),
    ),
    EventSpec(
        EventType.CONNECTION_CONNECTED,
        "A connection was linked by the SMB.",
        ("DataConnectionStatusChanged",),
    ),
    EventSpec(
        EventType.CONNECTION_DISCONNECTED,
        "A connection was unlinked or deauthorized.",
        ("DataConnectionStatusChanged",),
    ),
    EventSpec(
        EventType.CONNECTION_RECONNECTED,
        "A disconnected connection was linked again.",
        ("DataConnectionStatusChanged",),
    ),
    EventSpec(EventType.CONNECTION_FAILED, "Linking a connection failed."),
    EventSpec(
        EventType.CONNECTION_DELETED,
        "A connection was deleted.",
        ("DataConnectionStatusChanged", "Sync Connection Deleted"),
    ),
    EventSpec(
        EventType.READ_COMPLETED,
        "A read of one or more data types completed (check each data type's status).",
        ("Data sync completed", "Data Sync Status Changed To Error", "Dataset data changed"),
    ),
    EventSpec(
        EventType.READ_COMPLETED_INITIAL,
        "The first read after a connection was authorized completed.",
        ("New company synchronised",),
    ),
    EventSpec(
        EventType.WRITE_SUCCESSFUL,
        "A create, update, delete or attachment upload succeeded.",
        ("Push Operation Status Changed()",),
    ),
    EventSpec(
        EventType.WRITE_UNSUCCESSFUL,
        "A create, update, delete or attachment upload failed or timed out.",
        ("Push Operation Status Changed()", "Push Operation Timed Out"),
    ),
    EventSpec(
        EventType.CLIENT_RATE_LIMIT_REACHED,
        "The client's daily API quota was used up.",
        ("Rate Limit Reached",),
    ),
    EventSpec(
        EventType.CLIENT_RATE_LIMIT_RESET,
        "The client's daily API quota was reset.",
        ("Rate Limit Reset",),
    ),
    EventSpec(
        EventType.BANK_FEEDS_SOURCE_ACCOUNT_CONNECTED, "A bank-feed source account connected."
    ),
    EventSpec(
        EventType.BANK_FEEDS_SOURCE_ACCOUNT_DISCONNECTED,
        "A bank-feed source account disconnected.",
    ),
    EventSpec(
        EventType.EXPENSES_SYNC_SUCCESSFUL,
        "An expenses sync completed without errors.",
        ("Sync Completed",),
    ),
    EventSpec(
        EventType.EXPENSES_SYNC_UNSUCCESSFUL,
        "An expenses sync finished with at least one error or warning.",
        ("Sync Failed",),
    ),
    EventSpec(
        EventType.REPORT_GENERATE_SUCCESSFUL,
        "A Lending or Spend Insights report was generated (``event.report_type`` says which).",
    ),
    EventSpec(
        EventType.REPORT_GENERATE_UNSUCCESSFUL,
        "Generating a Lending or Spend Insights report failed.",
    ),
)

_PLACEHOLDER = re.compile(r"\{[^}]*\}")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_REPORT_PREFIXES = r"reports?"
"""Lending says ``report.``, Spend Insights ``reports.``; both are the same family."""


def hook_name_for(event_type: str) -> str:
    """``on_`` + the event type with placeholders dropped, snake_cased, dots as underscores."""
    segments = [part for part in event_type.split(".") if not _PLACEHOLDER.fullmatch(part)]
    return "on_" + "_".join(_CAMEL_BOUNDARY.sub("_", part).lower() for part in segments)


def _compile(member: EventType) -> re.Pattern[str]:
    parts = []
    for index, segment in enumerate(member.value.split(".")):
        if _PLACEHOLDER.fullmatch(segment):
            parts.append(r"(?P<parameter>[^\s]+?)")
        elif index == 0 and segment == "report":
            parts.append(_REPORT_PREFIXES)
        else:
            parts.append(re.escape(segment))
    return re.compile(r"\.".join(parts), re.IGNORECASE)


_ROWS: dict[EventType, EventSpec] = {spec.type: spec for spec in EVENTS}
_HOOKS: dict[EventType, str] = {member: hook_name_for(member.value) for member in EventType}
_EXACT: dict[str, EventType] = {m.value.lower(): m for m in EventType if not m.is_pattern}
_PATTERNS: tuple[tuple[EventType, re.Pattern[str]], ...] = tuple(
    (member, _compile(member)) for member in EventType if member.is_pattern
)
