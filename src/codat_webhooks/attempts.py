"""What the receiver writes to a key's history as it answers (see :mod:`.stores.history`).

The pipeline hands the store one :class:`~.stores.history.HistoryEntry` with each state change:
a *template* with a claim or enqueue (the store's decision fills in the answer), and a whole
entry with complete, release, defer and park, whose answer the pipeline already knows. The
duration is the receiver's time on the delivery so far, from the moment it arrived (so the
hooks are in it), which is what Codat's 15-second deadline is measured against.
"""

from __future__ import annotations

import os
import time

from .clock import Clock
from .stores.history import HistoryEntry, process_name

__all__ = ["asked", "ended", "unauthorized"]


_TEMPLATES: dict[str | None, HistoryEntry] = {}
"""One template per credential name: the store dates the answer, so it is never rebuilt."""
os.register_at_fork(after_in_child=_TEMPLATES.clear)  # a child is another process


def asked(verified_by: str | None) -> HistoryEntry:
    """The template for a claim or enqueue: which credential, which process (the store fills
    in the time and the answer; see :func:`~.stores.history.answered`)."""
    template = _TEMPLATES.get(verified_by)
    if template is None:
        template = HistoryEntry(0.0, None, "", None, None, verified_by, process_name())
        if len(_TEMPLATES) < 64:  # names come from the configuration: a handful
            _TEMPLATES[verified_by] = template
    return template


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
    if error is not None and not isinstance(error, str):
        error = f"{type(error).__name__}: {error}"
    duration_ms = (time.perf_counter() - started) * 1000.0
    return HistoryEntry(clock(), status, outcome, duration_ms, error, verified_by, process_name())


def unauthorized(clock: Clock, reason: str) -> HistoryEntry:
    """The entry noting a 401 answer (see :data:`~.stores.history.UNAUTHORIZED_KEY`)."""
    return HistoryEntry(clock(), 401, "unauthorized", None, reason, None, process_name())
