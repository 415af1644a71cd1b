"""How a stored delivery is described to an operator: by the CLI's ``events`` and ``show``
and by the deliveries console, so both say the same thing in the same words."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from .horizon import Horizon
from .stores.base import Record, State
from .stores.history import HistoryEntry
from .stores.marks import Verdict

__all__ = [
    "ago",
    "format_time",
    "history_json",
    "horizon_line",
    "order_json",
    "order_label",
    "parse_time",
    "pretty_body",
    "queue_json",
    "record_json",
    "sender_json",
]


def format_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """The Unix time of an ISO 8601 date or time an operator typed, UTC unless it says otherwise.

    ``Z`` is accepted on every Python version (3.10's parser refuses it), since that is how
    :func:`format_time` writes times. Raises ``ValueError`` for anything else.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def record_json(record: Record, *, with_body: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": record.key,
        "state": record.state.value,
        "type": record.kind,
        "company_id": record.company_id,
        "attempts": record.attempts,
        "first_seen": format_time(record.first_seen),
        "last_seen": format_time(record.last_seen),
        "last_error": record.last_error,
        "sha256": record.fingerprint,
    }
    if with_body:
        data["verified_by"] = record.verified_by
        data["headers"] = [list(pair) for pair in record.headers]
        data["body"] = record.body.decode("utf-8", "replace")
    return data


def queue_json(record: Record, stale_after: float | None, now: float) -> dict[str, Any] | None:
    """When a delivery waiting for a worker is due, and from when a sweep takes it as lost.

    A delivery answered 503 because the queue's broker was down is recorded ``queued`` with no
    job anywhere to run it: only a sweep finds it, ``stale_after`` seconds after it was due
    (``LocalQueue`` 60 s, ``CeleryQueue`` 300 s by default), at the sweep's next run. Until then
    it sits ``queued`` for minutes, and this is what tells the operator why and until when.
    The same holds for a ``processing`` key whose worker died: due when its lease ran out.
    ``None`` for a delivery not waiting (done, failed, parked, or running under a live lease).
    ``stale_after`` is the queue's, when known (the CLI knows it with ``--app``).
    """
    waiting = record.state is State.QUEUED or (
        record.state is State.PROCESSING and record.lease_expires <= now
    )
    if not waiting:
        return None
    due = record.lease_expires
    return {
        "due": format_time(due),
        "stale_after": stale_after,
        "swept_from": None if stale_after is None else format_time(due + stale_after),
    }


def pretty_body(body: bytes) -> str:
    """JSON indented for reading; anything else as text (undecodable bytes replaced).

    The result is still the sender's text: whoever shows it in HTML must escape it.
    """
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", "replace")


def order_json(verdict: Verdict | None) -> dict[str, Any]:
    """Where a delivery stood in its ordering scope (:mod:`codat_webhooks.ordering`):
    ``stale`` (and the ``newer`` event received first), and ``gap`` in a legacy status chain."""
    if verdict is None:
        return {"stale": False, "gap": False, "newer": None}
    newer = None
    if verdict.newer_key is not None and verdict.newer_at is not None:
        newer = {"key": verdict.newer_key, "generated_date": format_time(verdict.newer_at)}
    return {"stale": verdict.stale, "gap": verdict.gap, "newer": newer}


def order_label(verdict: Verdict | None) -> str:
    """``stale``, ``gap``, both, or nothing: the ORDER column and the console's mark."""
    if verdict is None:
        return ""
    return ", ".join(name for name, on in (("stale", verdict.stale), ("gap", verdict.gap)) if on)


def history_json(entries: list[HistoryEntry]) -> list[dict[str, Any]]:
    """A key's history as ``show --json`` prints it, oldest first."""
    return [
        {
            "at": format_time(entry.at),
            "status": entry.status,
            "outcome": entry.outcome,
            "duration_ms": entry.duration_ms,
            "error": entry.error,
            "verified_by": entry.verified_by,
            "process": entry.process,
        }
        for entry in entries
    ]


def sender_json(horizon: Horizon) -> dict[str, Any]:
    """The sender's horizon as ``show --json`` prints it (``sender``)."""
    after = horizon.next_attempt_after
    return {
        "attempts_seen": horizon.attempts_seen,
        "attempts_left": horizon.attempts_left,
        "next_attempt_after": None if after is None else format_time(after),
        "abandoned": horizon.abandoned,
        "by": horizon.sender,
    }


def horizon_line(horizon: Horizon, state: State, now: float) -> str:
    """The horizon in words: "Codat's next attempt in about 2.0 h; 3 left", "Codat has given
    up: replay to run it", or that nothing more is coming."""
    who = "Codat" if horizon.sender == "codat" else "our queue"
    if horizon.abandoned:
        return f"{who} has given up after {horizon.attempts_seen} attempts: replay to run it"
    if state is State.DONE:
        return f"done after {horizon.attempts_seen} answered attempts; nothing more to come"
    after = horizon.next_attempt_after
    if after is None or not horizon.attempts_left:
        return f"{horizon.attempts_seen} attempts seen; {horizon.attempts_left} left from {who}"
    when = f"in about {ago(after - now)}" if after > now else "due now"
    return f"{who}'s next attempt {when} (after {format_time(after)}); {horizon.attempts_left} left"


def ago(seconds: float) -> str:
    """A duration as people say it: ``40 s``, ``12 min``, ``3.5 h``, ``2.1 days``."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
