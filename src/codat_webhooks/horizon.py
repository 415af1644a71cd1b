"""The sender's horizon: from a key's history, how many more attempts are coming, and when.

Codat's new webhook service (Svix) treats any answer but a 2xx within 15 seconds as a failed
attempt and tries again on a fixed schedule: at once, then after 5 s, 5 min, 30 min, 2 h, 5 h,
10 h and 10 h, eight attempts over about 28 hours (codat-docs
``docs/using-the-api/webhooks/troubleshooting.md``). After the last one only a replay from our
store, or a resend from the Codat Portal, runs the delivery again: such a key is *abandoned by
the sender*. An endpoint whose every attempt fails for 5 days is disabled by Codat.

Queued dispatch answered 202, so Codat is done with the key at once: there the horizon is our
own :class:`~codat_webhooks.queues.RetryPolicy`, and a key is abandoned once its worker
attempts are spent (state ``failed``).

Everything here is a pure function of a record, its history and the time, so the CLI, the
console and the tests compute the same answer.
"""

from __future__ import annotations

from typing import NamedTuple

from .queues.base import RetryPolicy
from .stores.history import History
from .stores.records import Record, State

__all__ = [
    "CODAT_ATTEMPTS",
    "CODAT_DISABLES_AFTER",
    "CODAT_GIVES_UP_AFTER",
    "CODAT_SCHEDULE",
    "Horizon",
    "sender_horizon",
]

CODAT_SCHEDULE: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
"""Seconds Codat waits before each attempt, counted from the one before: 8 attempts."""

CODAT_ATTEMPTS = len(CODAT_SCHEDULE)
"""How many times Codat sends one message before it gives up."""

CODAT_GIVES_UP_AFTER = 28 * 3600.0
"""Seconds after the first attempt when Codat has made its last one (the schedule's sum,
27 h 35 min, rounded up as Codat's documentation does)."""

CODAT_DISABLES_AFTER = 5 * 24 * 3600.0
"""Seconds of nothing but failed attempts after which Codat disables the endpoint."""

_UNFINISHED = (State.FAILED, State.PARKED)
"""The states a sender that gave up leaves a key in: only a replay runs it now."""


class Horizon(NamedTuple):
    """What the sender will still do for one key (the ``sender`` object of ``show --json``)."""

    attempts_seen: int
    """Attempts the receiver answered (for a queued key: worker runs of this round)."""
    attempts_left: int
    """Attempts the sender (or our queue) will still make, at most."""
    next_attempt_after: float | None
    """Unix time before which the next attempt will not come; ``None`` when none will."""
    abandoned: bool
    """Not done, and no attempt is left: only a replay will run it now."""
    sender: str = "codat"
    """``codat`` (inline dispatch: Codat retries) or ``queue`` (our workers retry)."""


def sender_horizon(
    record: Record, history: History, now: float, retries: RetryPolicy | None = None
) -> Horizon:
    """The horizon of ``record`` given its ``history``, at Unix time ``now``.

    ``retries`` is the receiver's policy for queued keys (the default policy if not given).
    """
    answers = [entry for entry in history.entries if entry.status is not None]
    queued = any(entry.status == 202 for entry in answers) or record.state is State.QUEUED
    if queued:
        return _queue_horizon(record, retries or RetryPolicy())
    done = record.state is State.DONE
    seen = len(answers) + history.dropped
    left = max(0, CODAT_ATTEMPTS - seen)
    if now - record.first_seen >= CODAT_GIVES_UP_AFTER:
        left = 0
    if done or left == 0 or not answers:
        return Horizon(seen, 0 if done else left, None, not done and left == 0 and _stuck(record))
    return Horizon(seen, left, answers[-1].at + CODAT_SCHEDULE[seen], False)


def _stuck(record: Record) -> bool:
    return record.state in _UNFINISHED


def _queue_horizon(record: Record, retries: RetryPolicy) -> Horizon:
    """Our own queue retries: ``attempts`` worker runs of this round, out of the policy's."""
    if record.state is State.DONE:
        return Horizon(record.attempts, 0, None, False, "queue")
    if record.state in _UNFINISHED:
        return Horizon(record.attempts, 0, None, True, "queue")
    left = max(0, retries.attempts - record.attempts)
    due = record.lease_expires if record.state is State.QUEUED else None
    return Horizon(record.attempts, left, due, False, "queue")
