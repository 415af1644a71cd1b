"""Raw bytes to models, with every failure turned into a :class:`PayloadError`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from ..errors import PayloadError
from ..rules import RuleType
from .legacy import ALERT_CLASSES, RULE_TYPE_KEYS, Alert

__all__ = [
    "alert_from_object",
    "describe_validation_error",
    "first_string",
    "load_object",
    "parse_alert",
    "rule_type_of",
]


def load_object(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """Decode a body that must be a JSON object; anything else is a 400-class ``PayloadError``."""
    if not isinstance(body, bytes | str | bytearray):
        if isinstance(body, Mapping):
            return body
        raise PayloadError("body must be bytes, str or a mapping", status_hint=400)
    try:
        obj = from_json(body)
    except ValueError:
        # pydantic-core's parser is ~3x faster than json.loads but refuses a few things the
        # standard library accepts (a UTF-8 BOM, UTF-16/32 bodies, lone surrogate escapes):
        # json.loads gets the final say, so nothing that used to parse is rejected.
        obj = _strict_loads(body)
    if not isinstance(obj, dict):
        raise PayloadError(
            f"body is JSON {type(obj).__name__}, not an object", status_hint=400
        ) from None
    return obj


def _strict_loads(body: bytes | str | bytearray) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise PayloadError(f"body is not valid JSON: {exc}", status_hint=400) from None
    except RecursionError:
        raise PayloadError("body is not valid JSON: nested too deeply", status_hint=400) from None


def first_string(obj: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """The value under the first of ``keys`` present, if it is a string.

    Senders have named the same envelope field differently (``RuleType`` or ``Type``,
    ``eventType`` or ``EventType``); the first one present decides.
    """
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value if isinstance(value, str) else None
    return None


def rule_type_of(obj: Mapping[str, Any]) -> str | None:
    """The rule-type string under whichever key this sender used, if it is a string."""
    return first_string(obj, RULE_TYPE_KEYS)


def describe_validation_error(exc: ValidationError) -> str:
    """A short, value-free summary: field locations and what was wrong, never the input."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        location = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def parse_alert(body: bytes | str | Mapping[str, Any]) -> Alert:
    """Parse a legacy alert into the model for its rule type (``Alert`` itself when unknown).

    Raises :class:`PayloadError` (``status_hint`` 400) when the body is not a JSON object and
    (422) when it is an object without a rule type or with fields of the wrong type.
    """
    obj = load_object(body)
    rule_type = rule_type_of(obj)
    if rule_type is None:
        raise PayloadError("JSON object has no RuleType (or Type) string")
    return alert_from_object(obj, rule_type)


_MODEL_BY_SPELLING: dict[str, type[Alert]] = {}
"""Rule-type strings as received -> model: one dict hit per alert instead of RuleType.parse."""


def _model_for(rule_type: str) -> type[Alert]:
    model = _MODEL_BY_SPELLING.get(rule_type)
    if model is None:
        model = ALERT_CLASSES.get(RuleType.parse(rule_type), Alert)  # type: ignore[arg-type]
        if len(_MODEL_BY_SPELLING) < 1024:  # bounded: senders can invent rule types freely
            _MODEL_BY_SPELLING[rule_type] = model
    return model


def alert_from_object(obj: Mapping[str, Any], rule_type: str) -> Alert:
    """Validate a decoded body whose rule-type string is already known (the receiver's path)."""
    model = _model_for(rule_type)
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise PayloadError(
            f"{rule_type!r} alert is invalid: {describe_validation_error(exc)}"
        ) from None
