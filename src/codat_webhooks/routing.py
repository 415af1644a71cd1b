"""From a decoded body to the model and the hooks that handle it.

The single place that decides which body shape a delivery has and which hooks it reaches; the
receiver stays ignorant of rule types and event types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models._fields import CodatModel
from .models._parse import parse_alert

__all__ = ["Route", "key_from_body", "route"]


@dataclass(frozen=True, slots=True)
class Route:
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


def route(obj: Mapping[str, Any]) -> Route:
    """Parse ``obj`` into its model and pick its hooks; raises :class:`PayloadError` (422)."""
    alert = parse_alert(obj)
    kind = alert.kind
    first = kind.hook if kind is not None else "on_unknown_alert"
    return Route(
        payload=alert,
        hooks=(first, "on_alert"),
        argument="alert",
        kind=alert.rule_type,
        company_id=str(alert.company_id) if alert.company_id else None,
    )

