"""Ordering: which deliveries report the state of the same thing, and how they are ordered.

Codat delivers each message at least once and retries each on its own schedule (immediately,
then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h; codat-docs
``docs/using-the-api/webhooks/troubleshooting.md``), and documents no ordering between messages.
So a ``connection.disconnected`` whose first attempt failed can arrive after the
``connection.reconnected`` that followed it. An app that applies events as they come would then
show a live connection as disconnected.

Events that report the *state* of one thing belong to an **ordering scope**, read from the
typed payload by :data:`SCOPES`, the one table of them. The store keeps a high-water mark per
scope (:mod:`codat_webhooks.stores.marks`): the newest ``generatedDate`` received and the key
that carried it. A delivery older than the mark is **stale** (``delivery.stale``, with
``delivery.newer`` naming the newer event); equal timestamps are not stale. Events that report
independent facts (a read, a write, a report, an expenses sync, the other legacy rules) have no
scope and are never stale.

Legacy alerts carry no timestamp, but ``DataConnectionStatusChanged`` says ``OldStatus`` ->
``NewStatus``, and consecutive changes chain: a delivery whose ``OldStatus`` is not the last
``NewStatus`` received for its data connection has ``delivery.gap`` set (a change was missed or
came out of order). It is never skipped: only Codat's API can say what the status is now.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal, NamedTuple

from .event_types import EventType
from .models.events import EVENT_CLASSES
from .models.legacy import ALERT_CLASSES
from .rules import RuleType
from .stores.marks import Mark, Verdict

__all__ = [
    "IN_ORDER",
    "SCOPES",
    "STALE_POLICIES",
    "Newer",
    "Order",
    "ScopeSpec",
    "StalePolicy",
    "mark_of",
    "order_of",
]

StalePolicy = Literal["deliver", "skip"]
STALE_POLICIES: tuple[StalePolicy, ...] = ("deliver", "skip")
"""``Receiver(stale=...)``: ``deliver`` runs the hooks with ``delivery.stale`` set (the
default); ``skip`` runs ``on_stale`` instead and answers 200 ``stale``."""


class Newer(NamedTuple):
    """The newer event already received for a stale delivery's scope."""

    key: str
    """Its idempotency key (``webhook-id``)."""
    generated_date: datetime
    """Its ``generatedDate`` (UTC)."""


class Order(NamedTuple):
    """Where a delivery stands in its scope: what ``delivery.stale``, ``.newer``, ``.gap`` say."""

    stale: bool = False
    newer: Newer | None = None
    gap: bool = False


IN_ORDER = Order()


def order_of(verdict: Verdict | None) -> Order:
    """A store's :class:`~codat_webhooks.stores.marks.Verdict` as hooks see it."""
    if verdict is None or not verdict.notable:
        return IN_ORDER
    newer = None
    if verdict.newer_key is not None and verdict.newer_at is not None:
        newer = Newer(verdict.newer_key, datetime.fromtimestamp(verdict.newer_at, timezone.utc))
    return Order(verdict.stale, newer, verdict.gap)


class ScopeSpec(NamedTuple):
    """One row of :data:`SCOPES`: a family of types, and what identifies its scope."""

    name: str
    """The first part of every scope text of the family (``connection:<company>:<id>``)."""
    family: str
    """The types, as the docs name them (``connection.*``)."""
    types: tuple[EventType | RuleType, ...]
    identity: str
    """What the scope is, in words, for the docs."""
    ordered_by: str
    """``generatedDate``, or the legacy status chain."""
    scope: Callable[[Any], str | None]
    """The scope's text (``name:id:id``), read from the typed payload (``None``: cannot tell).
    UUIDs are written as their 32 hex digits; other identifiers as sent, unless a store could
    not hold them (then the text's SHA-256)."""


def _id(value: uuid.UUID | None) -> str:
    """A Codat ID (the models parse every one into a UUID) as scope text: its 32 hex digits,
    so every spelling Codat may send of one UUID (case, braces) names one scope. The digits
    of ``UUID.hex``, read off the integer's bytes: about half the instructions of its
    ``%``-formatting, on every scoped delivery."""
    return "" if value is None else value.int.to_bytes(16, "big").hex()


def _connection(event: Any) -> str | None:
    payload = event.payload
    connection = payload.connection
    connection_id = None if connection is None else connection.id
    if connection_id is None:
        return None
    reference = payload.reference_company
    company = _id(None if reference is None else reference.id)
    return f"connection:{company}:{_id(connection_id)}"


def _company(event: Any) -> str | None:
    company = event.company_id
    return None if company is None else f"company:{_id(company)}"


def _company_product(event: Any) -> str | None:
    company, product = event.company_id, event.payload.product_id
    if company is None or not product:
        return None
    return _checked(f"company.product:{_id(company)}:{product}")


def _source_account(event: Any) -> str | None:
    payload = event.payload
    account = payload.source_account
    if account is None or not account.id:
        return None
    company, connection = _id(event.company_id), _id(payload.connection_id)
    return _checked(f"bankFeeds.sourceAccount:{company}:{connection}:{account.id}")


def _client(event: Any) -> str:
    # The payload names no client: one receiver serves one Codat client account.
    return "client.rateLimit"


def _data_connection(alert: Any) -> str | None:
    connection = alert.data.data_connection_id or alert.data_connection_id
    if connection is None:
        return None
    return f"DataConnectionStatusChanged:{_id(alert.company_id)}:{_id(connection)}"


_MAX_SCOPE = 200
"""Longer scope texts (or ones a store cannot hold) are kept as their SHA-256 instead."""

_E, _R = EventType, RuleType
_CHAIN = "status chain: `OldStatus` must be the last `NewStatus` (sets `gap`, never `stale`)"

SCOPES: tuple[ScopeSpec, ...] = (
    ScopeSpec(
        "connection",
        "connection.*",
        (
            _E.CONNECTION_CREATED,
            _E.CONNECTION_CONNECTED,
            _E.CONNECTION_DISCONNECTED,
            _E.CONNECTION_RECONNECTED,
            _E.CONNECTION_FAILED,
            _E.CONNECTION_DELETED,
        ),
        "the connection: company + `payload.connection.id`",
        "`generatedDate`",
        _connection,
    ),
    ScopeSpec(
        "company",
        "company.created, company.deleted",
        (_E.COMPANY_CREATED, _E.COMPANY_DELETED),
        "the company: `payload.id`",
        "`generatedDate`",
        _company,
    ),
    ScopeSpec(
        "company.product",
        "company.product.*",
        (_E.COMPANY_PRODUCT_ADDED, _E.COMPANY_PRODUCT_REMOVED),
        "company + product: `payload.id`, `payload.productId`",
        "`generatedDate`",
        _company_product,
    ),
    ScopeSpec(
        "bankFeeds.sourceAccount",
        "bankFeeds.sourceAccount.*",
        (_E.BANK_FEEDS_SOURCE_ACCOUNT_CONNECTED, _E.BANK_FEEDS_SOURCE_ACCOUNT_DISCONNECTED),
        "company + connection + source account: `companyId`, `connectionId`, `sourceAccount.id`",
        "`generatedDate`",
        _source_account,
    ),
    ScopeSpec(
        "client.rateLimit",
        "client.rateLimit.*",
        (_E.CLIENT_RATE_LIMIT_REACHED, _E.CLIENT_RATE_LIMIT_RESET),
        "the client (one per receiver: the payload names none)",
        "`generatedDate`",
        _client,
    ),
    ScopeSpec(
        "DataConnectionStatusChanged",
        "DataConnectionStatusChanged (legacy)",
        (_R.DATA_CONNECTION_STATUS_CHANGED,),
        "company + data connection: `CompanyId`, `Data.dataConnectionId`",
        _CHAIN,
        _data_connection,
    ),
)
"""Every ordering scope. A type not listed here has no scope: its deliveries are never stale."""


def _by_model() -> dict[type, ScopeSpec]:
    """Each scoped type's model class -> its scope. A model serves the types of one scope
    only (checked here), so a payload's class finds its scope without reading its type."""
    found: dict[type, ScopeSpec] = {}
    for spec in SCOPES:
        for kind in spec.types:
            model = ALERT_CLASSES[kind] if isinstance(kind, RuleType) else EVENT_CLASSES[kind]
            assert found.setdefault(model, spec) is spec, f"{model} serves two scopes"
    return found


_BY_MODEL = _by_model()


def _checked(text: str) -> str:
    """``text`` if every store holds it as it is; else its family and SHA-256."""
    if len(text) <= _MAX_SCOPE and text.isascii() and "\x00" not in text:
        return text
    family = text.split(":", 1)[0]
    return f"{family}:sha256:{hashlib.sha256(text.encode('utf-8', 'replace')).hexdigest()}"


def mark_of(payload: Any, obj: Mapping[str, Any] | None = None) -> Mark | None:
    """What ``payload`` (a parsed alert or event) tells its ordering scope, or ``None``.

    ``None`` for a type without a scope, and for a scoped one that lacks what identifies or
    orders it (no connection ID, no ``generatedDate``): such a delivery is never stale.

    ``obj`` is the JSON object ``payload`` was parsed from, if at hand. Codat writes
    ``generatedDate`` in ISO 8601, in UTC (``2026-11-24T14:15:27Z``, at times with seven
    fractional digits): :meth:`datetime.fromisoformat` reads that text as the model's parser
    does (both drop digits past the microsecond), so the text and the model give one instant.
    A date without a zone, or in a form only the model reads, comes from the model (UTC).
    """
    spec = _BY_MODEL.get(type(payload))
    if spec is None:
        return None
    scope = spec.scope(payload)
    if scope is None:
        return None
    if spec.ordered_by is _CHAIN:
        data = payload.data
        return Mark(scope, None, data.old_status, data.new_status)
    text = obj.get("generatedDate") if obj is not None else None
    if type(text) is str:
        try:
            parsed: datetime | None = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return Mark(scope, parsed.timestamp())
    generated: datetime | None = payload.generated_date
    return None if generated is None else Mark(scope, generated.timestamp())
