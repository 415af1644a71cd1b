"""What the receiver writes to a key's history as it answers (see :mod:`.stores.history`).

The pipeline hands the store one :class:`~.stores.history.HistoryEntry` with each state change:
a *template* with a claim or enqueue (the store's decision fills in the answer), and a whole
entry with complete, release, defer and park, whose answer the pipeline already knows. The
duration is the receiver's time on the delivery so far, from the moment it arrived (so the
hooks are in it), which is what Codat's 15-second deadline is measured against.
"""

from __future__ import annotations

import logging
import time

from .clock import Clock
from .horizon import CODAT_ATTEMPTS
from .observe import Facts, log_fields
from .outcomes import Outcome
from .stores.history import HistoryEntry, process_name

__all__ = ["abandoned_by_sender", "asked", "ended"]

logger = logging.getLogger("codat_webhooks.receiver")


def asked(clock: Clock, verified_by: str | None) -> HistoryEntry:
    """The template for a claim or enqueue: when, by which credential, in which process."""
    return HistoryEntry(clock(), None, "", None, None, verified_by, process_name())


def ended(
    clock: Clock,
    started: float,
    status: int | None,
    outcome: str,
    verified_by: str | None,
    error: BaseException | str | None = None,
) -> HistoryEntry:
    """The entry for an answer (``status``) or a worker run (``None``) that ends an attempt.

    ``started`` is the ``time.perf_counter()`` reading when the delivery arrived.
    """
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    return HistoryEntry(clock(), status, outcome, duration_ms, error, verified_by, process_name())


def abandoned_by_sender(facts: Facts, key: str, attempt: int) -> None:
    """A hook failed on Codat's last attempt: say so once, at ERROR, and tell ``on_outcome``.

    Counted on the claim's attempt number, which is Codat's as long as every attempt reached
    the hooks; a key that reaches the end by Codat's 28 hours instead is found by
    :func:`~codat_webhooks.horizon.sender_horizon` (``codat-webhooks status``, the console).
    """
    facts.abandoned = True
    fields = log_fields(key, facts.kind, facts.company_id, Outcome.ABANDONED, 503, None, attempt)
    logger.error(
        "%s failed on Codat's last attempt (%d of %d): only a replay will run it now"
        " (codat-webhooks replay %s)",
        key,
        attempt,
        CODAT_ATTEMPTS,
        key,
        extra=fields,
    )
