"""What ``on_outcome`` learns about a delivery: the facts the pipeline hands over as it goes.

The receiver's pipeline fills one :class:`Facts` per delivery as it learns each fact: the key,
type and company once the delivery is admitted (or, on a worker, once its record is read), the
delivery the hooks saw and its attempt, the error that decided the outcome, and each hook's
timing. The driver hands them to ``on_outcome`` with the final reply or worker result. Nothing
is guessed from the shape of a call.

:func:`log_fields` is the other half of structured logging: the ``extra`` every log record of
the library carries, so a JSON formatter always finds the same keys.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple

from .delivery import Delivery, Reply
from .outcomes import Outcome
from .stores.base import Entry

if TYPE_CHECKING:
    from .queues.base import Work

__all__ = ["LOG_FIELDS", "Facts", "HookTiming", "log_fields"]

LOG_FIELDS = ("key", "type", "company", "outcome", "status", "duration_ms", "attempt")
"""The ``extra`` attributes on every log record of ``codat_webhooks`` loggers."""


def log_fields(
    key: str | None = None,
    kind: str | None = None,
    company: str | None = None,
    outcome: str | None = None,
    status: int | None = None,
    duration_ms: float | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    """The ``extra=`` of a log call: every field of :data:`LOG_FIELDS`, ``None`` when unknown."""
    return {
        "key": key,
        "type": kind,
        "company": company,
        "outcome": outcome,
        "status": status,
        "duration_ms": duration_ms,
        "attempt": attempt,
    }


class HookTiming(NamedTuple):
    """How long one hook (all of its implementations, in order) took for one delivery."""

    name: str
    """The hook's name, e.g. ``on_alert``."""
    started: float
    """``time.perf_counter()`` when it started (compare with ``time.perf_counter()`` now)."""
    seconds: float
    error: BaseException | None = None
    """What it raised; the hooks after it did not run."""


class Facts:
    """One delivery's facts for ``on_outcome``, set by the pipeline as it learns them.

    Its attributes carry the names of ``on_outcome``'s arguments, so each implementation is
    called with the ones it asks for, read off the facts (:meth:`Dispatcher.observe`).
    """

    __slots__ = (
        "abandoned", "attempt", "company_id", "delivery", "duration", "error", "hooks", "key",
        "kind", "outcome", "reply", "started", "status", "timings", "worker",
    )  # fmt: skip

    # Set by conclude(), once the pipeline has its final value:
    outcome: str
    status: int | None
    attempt: int
    duration: float
    hooks: tuple[HookTiming, ...]
    reply: Reply | None

    def __init__(self, worker: bool, timed: bool) -> None:
        self.started = time.perf_counter()
        self.worker = worker
        self.key: str | None = None
        self.kind: str | None = None
        self.company_id: str | None = None
        self.delivery: Delivery | None = None
        """The delivery as a hook saw it; ``None`` until a hook (or ``on_rejected`` ...) ran."""
        self.error: BaseException | None = None
        self.timings: list[HookTiming] | None = [] if timed else None
        """Hook timings, kept only when an ``on_outcome`` implementation asks for them."""
        self.abandoned = False
        """The answer failed the sender's last attempt: ``on_outcome`` hears ``abandoned``."""

    def admitted(self, entry: Entry) -> None:
        """What the store is given: the key, and the type and company the body names."""
        self.key, self.kind, self.company_id = entry.key, entry.kind, entry.company_id

    def conclude(self, final: Reply | Work) -> Facts:
        """Add what the pipeline's final value tells: ``on_outcome``'s remaining arguments."""
        self.duration = time.perf_counter() - self.started
        if type(final) is Reply:
            self.reply, self.status, key, outcome = final, final.status, final.key, final.outcome
        else:
            work: Work = final  # type: ignore[assignment]
            self.reply, self.status, key, outcome = None, None, work.key, work.outcome
            if outcome is Outcome.FAILED and work.retry_in is not None:
                outcome = Outcome.RETRY
        self.outcome = Outcome.ABANDONED if self.abandoned else outcome
        if key is not None:
            self.key = key
        delivery = self.delivery
        self.attempt = 0 if delivery is None else delivery.attempt
        self.hooks = () if self.timings is None else tuple(self.timings)
        return self
