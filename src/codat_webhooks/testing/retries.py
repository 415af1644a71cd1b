"""Simulate how Codat redelivers: its retry schedules, and duplicates arriving at once.

Time is simulated, not slept: give the store a :class:`FakeClock` (``MemoryStore(clock=...)``)
and :func:`deliver_with_retries` moves it forward by each delay, so leases expire and retention
applies exactly as hours later in production. Signatures are made fresh for every attempt with
the real clock, as Svix signs each attempt anew.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..delivery import Reply
from ..headers import HeaderInput
from ..horizon import CODAT_SCHEDULE
from ..receiver import Receiver

__all__ = [
    "LEGACY_RETRIES",
    "LEGACY_RETRY_STATUSES",
    "SVIX_RETRIES",
    "Attempt",
    "FakeClock",
    "RetrySchedule",
    "deliver_concurrently",
    "deliver_with_retries",
]

LEGACY_RETRY_STATUSES = frozenset({408, 420, 429, 460, 502, 503, 504, 522, 524})
"""The only statuses Codat's legacy sender retries; anything else (400 included) is final."""


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Seconds to wait before each attempt (the first is 0) and which statuses are retried."""

    name: str
    delays: tuple[float, ...]
    retry_statuses: frozenset[int] | None
    """``None``: every non-2xx answer is retried (the new service)."""
    honours_retry_after: bool

    def retries(self, status: int) -> bool:
        if 200 <= status < 300:
            return False
        return self.retry_statuses is None or status in self.retry_statuses


LEGACY_RETRIES = RetrySchedule("legacy", (0, 15, 30, 60), LEGACY_RETRY_STATUSES, True)
"""The legacy service: at most 3 retries over about 2 minutes, intervals growing to 60 s
(exact intervals are undocumented; these follow the documented shape), ``Retry-After`` obeyed."""

SVIX_RETRIES = RetrySchedule("svix", CODAT_SCHEDULE, None, False)
"""The new (Svix) service: eight attempts, the first at once, then after 5 s, 5 min, 30 min,
2 h, 5 h, 10 h and 10 h (about 28 h; :data:`~codat_webhooks.horizon.CODAT_SCHEDULE`). Codat's
example fixes the count: an event that fails three times, then succeeds, is delivered about
35 minutes and 5 seconds after the first attempt."""


class FakeClock:
    """A wall clock that moves only when told; pass it as a store's ``clock``."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: float
    """Simulated seconds since the first attempt."""
    reply: Reply


def deliver_with_retries(
    receiver: Receiver,
    body: bytes,
    headers: HeaderInput | Callable[[], HeaderInput],
    *,
    schedule: RetrySchedule = SVIX_RETRIES,
    clock: FakeClock | None = None,
    before_attempt: Callable[[int], None] | None = None,
) -> list[Attempt]:
    """Deliver ``body`` the way Codat would, until it is accepted or the schedule runs out.

    ``headers`` may be a callable, called per attempt (e.g. to sign each one). ``clock`` is
    advanced by every delay; ``before_attempt(n)`` runs first, e.g. to "deploy a fix".
    """
    attempts: list[Attempt] = []
    elapsed = 0.0
    for number, delay in enumerate(schedule.delays, 1):
        if attempts:
            previous = attempts[-1].reply
            override = _retry_after(previous) if schedule.honours_retry_after else 0.0
            wait = override or delay
            if clock is not None:
                clock.advance(wait)
            elapsed += wait
        if before_attempt is not None:
            before_attempt(number)
        current = headers() if callable(headers) else headers
        reply = receiver.handle("POST", current, body)
        attempts.append(Attempt(number, elapsed, reply))
        if not schedule.retries(reply.status):
            break
    return attempts


def _retry_after(reply: Reply) -> float:
    for name, value in reply.headers:
        if name.lower() == "retry-after" and value.strip().isdigit():
            return float(value)
    return 0.0


def deliver_concurrently(
    receiver: Receiver,
    body: bytes,
    headers: HeaderInput | Callable[[], Mapping[str, str]],
    *,
    copies: int = 8,
) -> list[Reply]:
    """Send ``copies`` identical deliveries at the same instant (a barrier releases them).

    Exactly one should come back ``processed``; the others ``duplicate`` or ``in_progress``.
    """
    barrier = threading.Barrier(copies)

    def deliver(_: int) -> Reply:
        current = headers() if callable(headers) else headers
        barrier.wait()
        return receiver.handle("POST", current, body)

    with ThreadPoolExecutor(max_workers=copies) as pool:
        return list(pool.map(deliver, range(copies)))
