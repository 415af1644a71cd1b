"""The ``type`` label of metrics: a bounded set of values whatever senders put in a body."""

from __future__ import annotations

from ..event_types import EventType
from ..rules import RuleType

__all__ = ["type_label"]

_KNOWN: dict[str | None, str] = {None: ""}
"""Spellings seen so far -> label; only recognised types are kept, so it stays small."""


def type_label(kind: str | None) -> str:
    """The canonical rule type or event type (its documented pattern for templated ones,
    e.g. ``{dataType}.write.successful``), ``other`` for an unrecognised one, and ``""``
    when the delivery has none (rejected before authentication, or not an alert at all).

    Every spelling of one rule type shares one label, and a sender cannot grow the number
    of time series by inventing types.
    """
    seen = _KNOWN.get(kind)
    if seen is not None:
        return seen
    rule = RuleType.parse(kind)
    event = None if rule is not None else EventType.parse(kind)
    known = rule or event
    if known is None:
        return "other"
    label: str = known.value
    _KNOWN[kind] = label
    return label
