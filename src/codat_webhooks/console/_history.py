"""What the console shows of attempts: the status panel on the listing, the timeline and the
sender's horizon on a delivery's page, and the search by key."""

from __future__ import annotations

import time
from typing import Any

from ..describe import ago, format_time, horizon_line
from ..outcomes import Outcome
from ..queues.base import RetryPolicy
from ..status_report import key_reports, status_report
from ..stores.base import Record, Store, key_problem

__all__ = ["PANEL_SCAN", "key_search", "status_panel", "timeline"]

PANEL_SCAN = 200
"""Records the listing's status panel reads (the newest): a page must stay quick."""


def status_panel(store: Store, retries: RetryPolicy | None) -> list[dict[str, Any]]:
    """The findings of ``codat-webhooks status``, most urgent first."""
    findings = status_report(store, retries=retries, scan=PANEL_SCAN)
    return [finding._asdict() for finding in findings]


def key_search(store: Store, key: str) -> str | None:
    """The key typed in the search box, if a delivery has it (then its page is shown)."""
    key = key.strip()
    if not key or key_problem(key) is not None:
        return None
    return key if store.get(key) is not None else None


def timeline(store: Store, record: Record, retries: RetryPolicy | None) -> dict[str, Any]:
    """The attempts of a delivery, oldest first, with times relative to the first and to
    now, and the sender's horizon in words."""
    now = time.time()
    (report,) = key_reports(store, [record], now, retries)
    first = report.history[0].at if report.history else record.first_seen
    attempts = [
        {
            "at": format_time(entry.at),
            "after_first": "first" if entry.at == first else f"+{ago(entry.at - first)}",
            "ago": f"{ago(now - entry.at)} ago",
            "status": "-" if entry.status is None else str(entry.status),
            "outcome": entry.outcome,
            "failure": entry.outcome in _FAILURES,
            "duration": "-" if entry.duration_ms is None else f"{entry.duration_ms:.1f} ms",
            "error": entry.error or "",
            "by": ", ".join(part for part in (entry.verified_by, entry.process) if part),
        }
        for entry in report.history
    ]
    return {
        "attempts": attempts,
        "dropped": report.dropped,
        "horizon": horizon_line(report.horizon, record.state, now),
        "abandoned": report.horizon.abandoned,
    }


_FAILURES = frozenset(
    {
        Outcome.FAILED,
        Outcome.RETRY,
        Outcome.IN_PROGRESS,
        Outcome.CONFLICT,
        Outcome.INVALID,
        Outcome.UNAUTHORIZED,
        Outcome.ABANDONED,
    }
)
"""Outcomes the timeline marks as failures (a history entry keeps the outcome's text)."""
