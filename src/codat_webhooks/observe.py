"""What ``on_outcome`` learns about a delivery, gathered while the receiver's pipeline runs.

The receiver's pipeline yields every piece of I/O it needs as an effect (a store call, a hook
call, a notification) and gets the result back. When a plugin implements ``on_outcome``, the
receiver runs the pipeline through a driver that shows each effect, result and exception to a
:class:`Watch`, which keeps the few facts worth reporting: the key, type and company the store
was given, the delivery the hooks saw, the attempt, the error, and each hook's timing. So the
pipeline itself needs no reporting code, and a receiver whose plugins do not implement
``on_outcome`` pays nothing for it.

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

__all__ = ["LOG_FIELDS", "HookTiming", "Watch", "log_fields"]

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


_FAILED = Outcome.FAILED
_TEXT: dict[str, str] = {outcome: outcome.value for outcome in Outcome}
"""Each outcome's plain string, read without the enum's ``__str__`` (a Python call)."""


class Watch:
    """One delivery's facts, as the driver shows them effect by effect (see the module doc)."""

    __slots__ = (
        "company_id",
        "delivery",
        "error",
        "hooks",
        "key",
        "kind",
        "started",
        "worker",
    )

    def __init__(self, timed: bool, worker: bool) -> None:
        self.started = time.perf_counter()
        self.worker = worker
        self.key: str | None = None
        self.kind: str | None = None
        self.company_id: str | None = None
        self.delivery: Delivery | None = None
        self.error: BaseException | None = None
        self.hooks: list[HookTiming] | None = [] if timed else None
        """Hook timings, kept only when an implementation asks for them."""

    def store_call(self, args: tuple[Any, ...]) -> None:
        """A store call about to be made: one that records a delivery carries its entry."""
        if args and type(args[0]) is Entry:
            entry: Entry = args[0]
            self.key, self.kind, self.company_id = entry[0], entry[4], entry[5]

    def hook_call(self, kwargs: dict[str, Any]) -> list[HookTiming] | None:
        """Hooks about to be called: they carry the delivery (and its attempt), and a
        rejection its error. On a worker, no entry passed by: the payload tells the type.
        Returns the list their timings go to, when an implementation asks for them."""
        delivery = kwargs.get("delivery")
        if delivery is not None:
            self.delivery = delivery
        error = kwargs.get("error")
        if error is not None:
            self.error = error
        if self.worker and self.kind is None:
            payload = kwargs.get("alert") or kwargs.get("event")
            if payload is not None:
                self.kind = getattr(payload, "rule_type", None) or payload.event_type
                company = payload.company_id
                self.company_id = None if company is None else str(company)
        return self.hooks

    def arguments(self, final: Reply | Work) -> dict[str, Any]:
        """The keyword arguments of ``on_outcome`` for the pipeline's final value."""
        duration = time.perf_counter() - self.started
        if type(final) is Reply:
            reply: Reply | None = final
            outcome, status, key = _TEXT.get(final.outcome, final.outcome), final.status, final.key
        else:
            work: Work = final  # type: ignore[assignment]
            reply, status, key = None, None, work.key
            retry = work.outcome is _FAILED and work.retry_in is not None
            outcome = "retry" if retry else _TEXT.get(work.outcome, work.outcome)
        delivery = self.delivery
        return {
            "outcome": outcome,
            "status": status,
            "key": key if key is not None else self.key,
            "kind": self.kind,
            "company_id": self.company_id,
            "attempt": 0 if delivery is None else delivery.attempt,
            "duration": duration,
            "hooks": tuple(self.hooks or ()),
            "error": self.error,
            "delivery": delivery,
            "reply": reply,
            "worker": self.worker,
        }
