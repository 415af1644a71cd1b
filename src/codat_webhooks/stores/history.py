"""Every attempt on the record: what a store keeps of each answer and worker run for a key.

Codat offers no API that lists the messages, attempts or failures of its webhook service; the
Portal can resend one message or "recover" failed ones, two weeks back at most. So the store is
the only record a customer's scripts can read of what arrived and what it was answered. Beside
each key's :class:`~codat_webhooks.stores.Record` a store keeps a short history: one
:class:`HistoryEntry` per answer the receiver gave for the key (HTTP status and outcome) and per
worker run (status ``None``), oldest first, the newest :data:`HISTORY_LIMIT` kept and the older
ones counted (:class:`History`). The history goes when the record is purged.

An entry is written by the same store operation as the state change it describes (one SQL
transaction, one Lua script, one lock), so after a crash the two never disagree:

- renew, complete, release, defer and park are handed their entry whole: the caller knows the
  answer it gives once the store agrees (the store appends it only if the move happened);
- claim and enqueue are handed a *template* (time, credential, process), because the answer is
  the store's decision: :func:`answered` turns the template into the entry for that decision
  (:data:`ANSWERS`), and the Lua scripts follow the same table. A claim that hands the key over
  writes nothing yet: its entry comes with the complete or release that ends the attempt.

Where entries are numbered per key from 1 (Redis, the SQL history table), the number of the
oldest one kept says how many were dropped; ``MemoryStore`` and SQLite (which keeps them in the
record's row, :mod:`.sqlite_history`) count the dropped ones instead.
"""

from __future__ import annotations

import json
import os
import socket
from typing import NamedTuple

from .records import ClaimStatus, storable, storable_text

__all__ = [
    "ANSWERS",
    "HISTORY_LIMIT",
    "UNAUTHORIZED_KEY",
    "History",
    "HistoryEntry",
    "answered",
    "decode_entry",
    "encode_entry",
    "process_name",
]

UNAUTHORIZED_KEY = "~unauthorized"
"""The history (with no record) where the receiver notes its 401 answers: a request it could
not authenticate is never stored, but the share of them is how a rotated secret shows."""

HISTORY_LIMIT = 50
"""Entries kept per key: Codat's 8 attempts, a queue's retries and a few manual replays."""


class HistoryEntry(NamedTuple):
    """One answer the receiver gave for a key, or one worker run of it."""

    at: float
    """Unix seconds when the store recorded it."""
    status: int | None
    """The HTTP status answered; ``None`` for a worker run (nobody was answered)."""
    outcome: str
    """The :class:`~codat_webhooks.outcomes.Outcome` of the answer or the run."""
    duration_ms: float | None = None
    """How long the receiver worked on it, hooks included; ``None`` when no hook ran."""
    error: str | None = None
    """What a hook raised, or why the body was refused, cleaned like ``Record.last_error``."""
    verified_by: str | None = None
    """The name of the credential that authenticated it (never its value)."""
    process: str | None = None
    """Which process answered: ``host:pid`` (see :func:`process_name`)."""


class History(NamedTuple):
    """A key's kept entries, oldest first, and how many older ones were dropped."""

    entries: list[HistoryEntry]
    dropped: int = 0


ANSWERS: dict[ClaimStatus, tuple[int, str]] = {
    ClaimStatus.DUPLICATE: (200, "duplicate"),
    ClaimStatus.IN_PROGRESS: (503, "in_progress"),
    ClaimStatus.CONFLICT: (422, "conflict"),
    ClaimStatus.QUEUED: (202, "queued"),
}
"""The HTTP status and outcome the receiver answers for each claim or enqueue decision (the
status policy of :mod:`codat_webhooks.replies`). ``CLAIMED`` is absent: the attempt's entry
comes when it ends, with the hooks' result."""


def answered(template: HistoryEntry | None, status: ClaimStatus, now: float) -> HistoryEntry | None:
    """The entry a claim or enqueue that decided ``status`` at ``now`` appends, or ``None``.

    The template's own ``at`` is not used: the store's clock dates the answer, so one
    template serves every delivery verified by the same credential in a process. The entry is
    cleaned here (:func:`cleaned`), so a template is cleaned only when it is used.
    """
    answer = ANSWERS.get(status)  # none for CLAIMED: that entry comes when the attempt ends
    if template is None or answer is None:
        return None
    status_code, outcome = answer
    return cleaned(
        HistoryEntry(
            now,
            status_code,
            outcome,
            template.duration_ms,
            template.error,
            template.verified_by,
            template.process,
        )
    )


def cleaned(entry: HistoryEntry) -> HistoryEntry:
    """``entry`` with its texts made storable (see :func:`~.records.storable_text`)."""
    error, by, process = entry.error, entry.verified_by, entry.process
    if (
        (error is None or storable(error))
        and (by is None or storable(by))
        and (process is None or storable(process))
    ):
        return entry
    return entry._replace(
        error=storable_text(error), verified_by=storable_text(by), process=storable_text(process)
    )


_process: list[str] = []
"""This process's name once known; emptied in a forked child, whose pid differs."""
os.register_at_fork(after_in_child=_process.clear)


def process_name() -> str:
    """``host:pid`` of this process."""
    if not _process:
        _process.append(f"{socket.gethostname()}:{os.getpid()}")
    return _process[0]


def encode_entry(seq: int, entry: HistoryEntry) -> str:
    """An entry as Redis keeps it: a JSON array led by its number."""
    return json.dumps([seq, *entry], separators=(",", ":"))


def decode_entry(text: str | bytes) -> tuple[int, HistoryEntry]:
    """:func:`encode_entry` reversed."""
    seq, at, status, outcome, duration_ms, error, verified_by, process = json.loads(text)
    return int(seq), HistoryEntry(
        float(at),
        None if status is None else int(status),
        str(outcome),
        None if duration_ms is None else float(duration_ms),
        error,
        verified_by,
        process,
    )
