"""How ``show`` and ``events`` print a key's history and the sender's horizon."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..describe import format_time, horizon_line, sender_json
from ..queues.base import RetryPolicy
from ..status_report import KeyReport, key_reports
from ..stores.base import Record, State, Store

__all__ = ["print_history", "with_sender"]


def print_history(report: KeyReport, now: float) -> None:
    """The attempts, oldest first, then what the sender will still do."""
    record, entries, horizon, dropped = report
    print(f"{'sender:':<12}{horizon_line(horizon, record.state, now)}")
    older = f"; {dropped} older not kept" if dropped else ""
    print(f"\nhistory (oldest first{older}):" if entries else "\nhistory: none kept")
    for entry in entries:
        status = "-" if entry.status is None else str(entry.status)
        took = "" if entry.duration_ms is None else f"{entry.duration_ms:.1f} ms"
        who = ", ".join(part for part in (entry.verified_by, entry.process) if part)
        line = f"  {format_time(entry.at)}  {status:>3}  {entry.outcome:<12} {took:>10}"
        if who:
            line += f"  [{who}]"
        if entry.error:
            line += f"  {entry.error}"
        print(line.rstrip())


def with_sender(
    store: Store, records: Sequence[Record], retries: RetryPolicy | None
) -> dict[str, dict[str, Any]]:
    """For each record not done: its ``sender`` object and a short line for the table.

    Done ones expect nothing more, so their history is not read (a listing stays one query
    plus one per unfinished delivery).
    """
    now = time.time()
    pending = [record for record in records if record.state is not State.DONE]
    found: dict[str, dict[str, Any]] = {}
    for report in key_reports(store, pending, now, retries):
        horizon = report.horizon
        if horizon.abandoned:
            line = "abandoned: replay"
        elif horizon.next_attempt_after is not None:
            line = f"{horizon.attempts_left} left, next {format_time(horizon.next_attempt_after)}"
        else:
            line = f"{horizon.attempts_left} left"
        found[report.record.key] = {"sender": sender_json(horizon), "sender_line": line}
    return found
