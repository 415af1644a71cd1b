"""From a decoded body to the model and the hooks that handle it.

The single place that decides which body shape a delivery has and which hooks it reaches; the
receiver stays ignorant of rule types and event types. The decisions, in order:

1. A ``RuleType`` (or ``Type``) key: a **legacy alert**, whatever else the body holds.
2. An ``eventType`` (or ``type``, the key several of Codat's own examples use for it) naming a
   transitional PascalCase legacy type (``DataConnectionStatusChanged``,
   ``AccountCategoriesUpdated``, ... anything :meth:`RuleType.parse` recognises): a **legacy
   alert** that travelled over the new service. Codat sent legacy-shaped bodies under these names
   in 2024 (and still does for ``AccountCategoriesUpdated``), so a legacy-shaped body is parsed
   as it is. Should one arrive as an envelope instead, it is read as that legacy alert too: a
   ``payload`` holding legacy envelope keys (``CompanyId``, ``Data``, ...) *is* the alert;
   any other ``payload`` becomes the alert's ``Data``, with ``referenceCompany.id`` (or
   ``companyId``) as ``CompanyId`` and the envelope ``id`` as ``AlertId``. Either way the legacy
   per-rule hook and ``on_alert`` run, so handlers written for the rule keep working.
3. Any other ``eventType`` or ``type``: a **new-service event** -> its per-event hook (or
   ``on_unknown_event``), then ``on_event``. The one exception is a lower-case ``type`` on a body
   shaped like a legacy alert (``AlertId``, ``Data``, ... and no ``payload``) holding a string
   that is no known event type: that stays the unknown legacy alert it always was.
4. Anything else is a 422 (parked, so it can be replayed). That includes the envelope-less
   ``bankFeeds.sourceAccount.*`` bodies Codat sent before 2025-01-10
   (``{companyId, connectionId, bankAccount}``): with no event type they cannot tell
   ``connected`` from ``disconnected``, and guessing from the account's ``status`` would run the
   wrong handler. Codat stopped sending them, so parking the stragglers is the safe answer; a
   replay (or a Portal transformation) that wraps one in an envelope parses, because the payload
   model reads ``bankAccount`` as well as ``sourceAccount``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import PayloadError
from .event_types import EventType
from .models._fields import CodatModel
from .models._parse import alert_from_object, parse_alert, rule_type_of
from .models.events import EVENT_TYPE_KEYS, event_type_of, parse_event
from .models.legacy import ALERT_CLASSES, RULE_TYPE_KEYS, Alert
from .rules import RuleType

__all__ = ["Route", "describe", "key_from_body", "legacy_body_from_event", "route"]

_LEGACY_ENVELOPE_KEYS = frozenset(
    {"AlertId", "CompanyId", "ClientId", "DataConnectionId", "RuleId", "Message", "Data"}
)


class Route(NamedTuple):
    payload: CodatModel
    """The parsed alert (or event)."""
    hooks: tuple[str, ...]
    """Hook names to call, in order, until one raises."""
    argument: str
    """The keyword under which ``payload`` is passed to hooks: ``alert`` or ``event``."""
    kind: str | None
    """The rule or event type as received, for the store and logs."""
    company_id: str | None


def key_from_body(obj: Mapping[str, Any]) -> str | None:
    """The body's own ID: ``id`` on new-service events, ``AlertId`` on legacy alerts."""
    for name in ("id", "AlertId", "alertId"):
        value = obj.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


_MAX_LABEL = 200
"""Longest type or company string kept from a body that did not validate."""


def describe(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The type string and company ID of a body, read without validating it.

    A parked delivery keeps them so operators can find it by type and company
    (``events --type "Rate Limit Reached" --state parked``) even though its model was invalid.
    Only strings are kept, and only so long: the body failed validation, so nothing else is
    trusted.
    """
    kind = rule_type_of(obj) or event_type_of(obj)
    payload = obj.get("payload")
    company = obj.get("CompanyId") or obj.get("companyId")
    if company is None and isinstance(payload, Mapping):
        company = _company_in(payload)
    return _label(kind), _label(company)


def _label(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:_MAX_LABEL]


def route(obj: Mapping[str, Any]) -> Route:
    """Parse ``obj`` into its model and pick its hooks; raises :class:`PayloadError` (422)."""
    rule_type = obj.get("RuleType")
    if type(rule_type) is str:  # the common legacy case, without the searches below
        return _alert_route(alert_from_object(obj, rule_type))
    if not any(key in obj for key in RULE_TYPE_KEYS if key != "type"):
        event_type = event_type_of(obj)
        if event_type is not None:
            if RuleType.parse(event_type) is not None:
                return _alert_route(parse_alert(legacy_body_from_event(obj, event_type)))
            if not _is_legacy_shaped_with_type(obj, event_type):
                return _event_route(obj)
        elif any(obj.get(key) is not None for key in EVENT_TYPE_KEYS if key != "type"):
            raise PayloadError("eventType must be a string")
    if rule_type_of(obj) is None:
        raise PayloadError(
            "JSON object is neither a legacy alert (no RuleType) nor an event (no eventType)"
        )
    return _alert_route(parse_alert(obj))


def _is_legacy_shaped_with_type(obj: Mapping[str, Any], event_type: str) -> bool:
    """A legacy alert whose rule type sits under ``type``: unknown rule, not an unknown event."""
    return (
        "type" in obj
        and not any(key in obj for key in EVENT_TYPE_KEYS if key != "type")
        and "payload" not in obj
        and EventType.parse(event_type) is None
        and not _LEGACY_ENVELOPE_KEYS.isdisjoint(obj)
    )


def legacy_body_from_event(obj: Mapping[str, Any], event_type: str) -> dict[str, Any]:
    """The legacy alert body carried by a transitional PascalCase event (rule 2 above)."""
    payload = obj.get("payload")
    if not isinstance(payload, Mapping):
        body = {key: value for key, value in obj.items() if key != "payload"}
    elif _LEGACY_ENVELOPE_KEYS.intersection(payload):
        body = {key: value for key, value in obj.items() if key != "payload"} | dict(payload)
    else:
        body = {key: value for key, value in obj.items() if key != "payload"}
        body["Data"] = dict(payload)
        company = _company_in(payload)
        if company is not None:
            body.setdefault("CompanyId", company)
    alert_id = obj.get("id")
    if _is_uuid(alert_id):
        body.setdefault("AlertId", alert_id)
    body.setdefault("RuleType", event_type)
    return body


def _company_in(payload: Mapping[str, Any]) -> Any:
    reference = payload.get("referenceCompany")
    if isinstance(reference, Mapping) and reference.get("id"):
        return reference.get("id")
    return payload.get("companyId")


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_ALERT_HOOKS: dict[type[Alert], tuple[str, str]] = {
    cls: (kind.hook, "on_alert") for kind, cls in ALERT_CLASSES.items()
}
"""Hooks per alert class, so routing an alert needs no rule-type lookups."""


def _alert_route(alert: Alert) -> Route:
    hooks = _ALERT_HOOKS.get(type(alert))
    if hooks is None:
        kind = alert.kind
        hooks = (kind.hook if kind is not None else "on_unknown_alert", "on_alert")
    company = alert.company_id
    company_id = str(company) if company else None
    return Route(alert, hooks, "alert", alert.rule_type, company_id)


def _event_route(obj: Mapping[str, Any]) -> Route:
    event = parse_event(obj)
    kind = event.kind
    first = kind.hook if kind is not None else "on_unknown_event"
    company_id = event.company_id
    return Route(
        payload=event,
        hooks=(first, "on_event"),
        argument="event",
        kind=event.event_type,
        company_id=str(company_id) if company_id else None,
    )
