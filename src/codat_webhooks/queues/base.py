"""What a queue engine must do for queued dispatch, and the retry schedule of workers.

A queue moves keys and nothing else. The receiver records a delivery as ``queued`` in its
store and calls :meth:`Queue.enqueue`; whatever runs the jobs calls
:meth:`codat_webhooks.Receiver.process_queued` with the key, which claims it, runs the hooks
and completes it, and answers with a :class:`Work` saying whether (and when) to try again.
Jobs are idempotent: a job for a key that is done, or being run by another worker, is a no-op,
so an engine that delivers a job twice (every at-least-once broker) costs nothing.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from ..errors import ConfigurationError
from ..outcomes import Outcome

if TYPE_CHECKING:
    from ..receiver import Receiver

__all__ = ["Queue", "RetryPolicy", "Work"]


@runtime_checkable
class Queue(Protocol):
    """The engine behind ``Receiver(queue=...)``.

    ``bind`` is called once by the receiver it serves (an engine's workers call that receiver's
    :meth:`~codat_webhooks.Receiver.process_queued`); ``enqueue`` hands a key over and raises if
    the engine cannot take it (the receiver then answers 503, and the sweeper or the sender's
    retry recovers the recorded key); ``blocking`` says whether ``enqueue`` does I/O, so the
    async path runs it in a thread.
    """

    blocking: bool

    def bind(self, receiver: Receiver) -> None: ...

    def enqueue(self, key: str) -> None: ...

    def close(self) -> None: ...


class Work(NamedTuple):
    """What one run of a queued key came to."""

    key: str
    outcome: Outcome
    """``processed``; ``duplicate`` (nothing to run); ``in_progress`` (another worker holds
    it: look again once its lease would run out); ``failed``; ``unavailable`` (the store could
    not be reached)."""
    retry_in: float | None = None
    """Seconds after which the key should be run again; ``None`` when it must not be."""


class RetryPolicy(NamedTuple):
    """Exponential backoff with jitter for hooks that raise on a worker.

    Attempt ``n`` (1-based) that fails waits ``first * 2 ** (n - 1)`` seconds, capped at
    ``cap``, times a random factor in ``[1 - jitter, 1]``; after ``attempts`` attempts the key
    is ``failed``. The default spans about seven hours: once we answered 202, Codat no longer
    retries for us, so an outage of a downstream API must be outlived here.
    """

    attempts: int = 15
    first: float = 10.0
    cap: float = 3600.0
    jitter: float = 0.5

    def validate(self) -> RetryPolicy:
        if self.attempts < 1 or self.first < 0 or self.cap < self.first:
            raise ConfigurationError("retries need attempts >= 1 and 0 <= first <= cap")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("retry jitter is a fraction between 0 and 1")
        return self

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait after failed attempt ``attempt``; ``None`` when none is left."""
        if attempt >= self.attempts:
            return None
        base = min(self.cap, self.first * 2.0 ** min(attempt - 1, 60))
        return base * (1.0 - self.jitter * random.random())  # jitter, not a secret
