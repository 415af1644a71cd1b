"""Typed models of what Codat sends, and the functions that turn raw bodies into them."""

from __future__ import annotations

from ._parse import load_object, parse_alert
from .events import EVENT_CLASSES, Event, parse_event
from .legacy import ALERT_CLASSES, Alert

__all__ = [
    "ALERT_CLASSES",
    "EVENT_CLASSES",
    "Alert",
    "Event",
    "load_object",
    "parse_alert",
    "parse_event",
]
