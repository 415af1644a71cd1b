"""Typed models of what Codat sends, and the functions that turn raw bodies into them."""

from __future__ import annotations

from ._parse import load_object, parse_alert
from .legacy import ALERT_CLASSES, Alert

__all__ = ["ALERT_CLASSES", "Alert", "load_object", "parse_alert"]
