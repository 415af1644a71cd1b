"""Every type ``samples`` lists and ``trigger`` can send: the legacy rules, plus the
new-service event types when :mod:`codat_webhooks.event_types` is present.

The CLI holds no type strings of its own; it reads the rule table and the event table, so a new
rule or event appears here without touching this file.
"""

from __future__ import annotations

import difflib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..rules import RULES, RuleType
from ..testing.samples import legacy_sample
from ._common import EXIT_USAGE, CommandError

__all__ = ["SampleType", "apply_override", "body_key", "find_type", "parse_override", "types"]


@dataclass(frozen=True, slots=True)
class SampleType:
    name: str
    """The type string as Codat sends it (``RuleType`` value or ``eventType``)."""
    hook: str
    summary: str
    build: Callable[[str | None], dict[str, Any]]
    """Makes a fresh sample body for an optional company ID."""
    aliases: tuple[str, ...] = ()
    example: str = ""
    """A concrete type to send: the name itself, or a pattern filled in (``invoices.write...``)."""

    @property
    def concrete(self) -> str:
        return self.example or self.name


def _legacy_types() -> list[SampleType]:
    def builder(rule: RuleType) -> Callable[[str | None], dict[str, Any]]:
        return lambda company_id: legacy_sample(rule, company_id=company_id)

    return [
        SampleType(rule.type.value, rule.hook, rule.summary, builder(rule.type), rule.spellings)
        for rule in RULES
    ]


def _event_sample_maker() -> Callable[..., dict[str, Any]] | None:
    """The event-sample factory, when the installed version has one."""
    from ..testing import samples

    maker: Callable[..., dict[str, Any]] | None = getattr(samples, "event_sample", None)
    return maker


def _event_types() -> list[SampleType]:
    """New-service event types, read from :mod:`codat_webhooks.event_types` when it exists."""
    try:
        from ..event_types import EVENTS
    except ImportError:
        return []
    make = _event_sample_maker()
    if make is None:
        return []
    return [
        _event_type(spec.type.value, _example(spec.type.value), spec.hook, spec.summary, make)
        for spec in EVENTS
    ]


def _example(pattern: str) -> str:
    return pattern.replace("{dataType}", "invoices").replace("{reportType}", "spendAnalysis")


def _event_type(
    name: str, example: str, hook: str, summary: str, make: Callable[..., dict[str, Any]]
) -> SampleType:
    def build(company_id: str | None) -> dict[str, Any]:
        return dict(make(example, company_id=company_id))

    return SampleType(name, hook, summary, build, example=example)


def types() -> list[SampleType]:
    return [*_legacy_types(), *_event_types()]


def find_type(text: str) -> SampleType:
    """The type named by ``text``: any spelling ``RuleType.parse`` accepts, or an event type.

    Pattern event types are named concretely (``invoices.write.successful``); the sample then
    carries that concrete type.
    """
    rule = RuleType.parse(text)
    if rule is not None:
        return next(t for t in _legacy_types() if t.name == rule.value)
    make = _event_sample_maker()
    try:
        from ..event_types import EventType
    except ImportError:
        EventType = None  # type: ignore[assignment,misc]
    matched = EventType.match(text) if EventType is not None and make is not None else None
    if matched is not None and make is not None:
        member = matched.type
        concrete = text.strip() if member.is_pattern else member.value
        if member.is_pattern and "{" in concrete:
            example = _example(member.value)
            raise CommandError(
                f"{text!r} is a pattern: name a concrete type, e.g. {example!r}", EXIT_USAGE
            )
        return _event_type(concrete, concrete, member.hook, member.spec.summary, make)
    guess = _closest(text)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    raise CommandError(
        f"unknown type {text!r}{hint}; `codat-webhooks samples` lists every rule and event type",
        EXIT_USAGE,
    )


def _closest(text: str) -> str | None:
    """The known type a misspelling most resembles, or ``None`` when nothing is close.

    Compared in lower case, so ``sync faild`` finds ``Sync Failed``; a rule type's other
    spellings count too, and pattern event types are offered as their concrete example.
    """
    names: dict[str, str] = {}
    for known in types():
        for spelling in (known.concrete, known.name, *known.aliases):
            names.setdefault(spelling.lower(), known.concrete)
    found = difflib.get_close_matches(text.strip().lower(), names, n=1, cutoff=0.75)
    return names[found[0]] if found else None


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` where VALUE is JSON when it parses (``5``, ``true``, ``{...}``), else text."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name or any(not part for part in name.split(".")):
        raise CommandError(
            f"malformed --set {text!r}: use KEY=VALUE, e.g. --set Data.newStatus=Unlinked",
            EXIT_USAGE,
        )
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def apply_override(body: dict[str, Any], name: str, value: Any) -> None:
    """Set a dotted path (``Data.newStatus``, ``payload.connection.status``) in ``body``."""
    *parents, leaf = name.split(".")
    node = body
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def body_key(body: dict[str, Any]) -> str:
    """The body's own ID (``id`` or ``AlertId``), the key the receiver would fall back on."""
    for name in ("id", "AlertId"):
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
    return str(uuid.uuid4())


def fresh_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The same sample under a new ID, for ``trigger --new-key``."""
    renewed = dict(body)
    for name in ("id", "AlertId"):
        if name in renewed:
            renewed[name] = str(uuid.uuid4())
    return renewed
