"""Keeps the claims of running hooks alive, so a slow but healthy handler is never run twice.

One daemon thread per receiver (started on first use) renews every claim held for more than
half its lease. A worker that dies stops renewing, so its lease still runs out and another
worker takes the delivery over. Registering a claim costs a dict insert, not a thread.

The same thread finishes what the store refused to record: when ``complete`` fails after the
hooks ran (a store outage), the claim stays held and renewed while ``complete`` is tried again
with backoff, until it lands or ``completion_retry`` seconds pass. Without that, the record would
stay ``processing`` and the first copy delivered after the lease would run the hooks again; now
only a crash of this process in that time can.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ._forking import start_over_in_children
from ._logging import library_logger
from .clock import Clock, system_clock
from .errors import StoreError
from .observe import log_fields
from .stores.base import CODAT_RETRY_WINDOW, Store

__all__ = ["LeaseKeeper"]

logger = library_logger("codat_webhooks.store")

_FIRST_RETRY = 0.05
"""Seconds before the first new try of a completion; doubled after each failure."""


class LeaseKeeper:
    """Renews the claims registered with :meth:`track`; ``clock`` is the store's clock."""

    def __init__(
        self,
        store: Store,
        lease: float,
        *,
        clock: Clock = system_clock,
        completion_retry: float = CODAT_RETRY_WINDOW,
    ) -> None:
        self._store = store
        self._lease = lease
        self._clock = clock
        self._completion_retry = completion_retry
        self._interval = max(lease / 4, 0.01)
        # claim -> [time of the last renewal]: a one-item list, so the renewer can update it in
        # place and never re-inserts a claim that untrack() removed meanwhile.
        self._held: dict[tuple[str, int], list[float]] = {}
        # claim -> [time of the next try, delay after that, time to give up]
        self._unfinished: dict[tuple[str, int], list[float]] = {}
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.listeners: list[Callable[[str], None]] = []
        """Called from the renewer thread after each renewal with ``renewed``, ``lost`` (the
        claim was taken over) or ``error`` (the store failed); for metrics."""
        start_over_in_children(self)

    def _forked(self) -> None:
        """A forked child renews only its own claims, on a renewer of its own (see _forking)."""
        self._held, self._unfinished = {}, {}
        self._start_lock, self._wake, self._thread = threading.Lock(), threading.Event(), None

    def track(self, key: str, token: int) -> None:
        """Start renewing the claim ``(key, token)`` in the background until :meth:`untrack`.

        No lock: a single dict insert or pop is atomic, so the renewer thread and any number
        of request threads share the table safely.
        """
        self._held[(key, token)] = [self._clock()]
        if self._thread is None:
            self._start()

    def untrack(self, key: str, token: int) -> None:
        self._held.pop((key, token), None)

    def complete_later(self, key: str, token: int) -> None:
        """Keep the claim and retry :meth:`Store.complete` in the background (see module doc)."""
        now = self._clock()
        self._held[(key, token)] = [now]
        self._unfinished[(key, token)] = [now, _FIRST_RETRY, now + self._completion_retry]
        if self._thread is None:
            self._start()
        self._wake.set()

    @property
    def unfinished(self) -> int:
        """How many processed deliveries still wait to be recorded as done."""
        return len(self._unfinished)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="codat-webhooks-leases", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            if self._closed:
                return
            now = self._clock()
            self.retry_completions(now)
            self.renew_due(now)

    def _next_wait(self) -> float:
        """Real seconds until the next renewal round, or sooner if a completion is due."""
        if not self._unfinished:
            return self._interval
        now = self._clock()
        soonest = min(retry[0] for retry in self._unfinished.copy().values())
        return min(self._interval, max(soonest - now, 0.01))

    def renew_due(self, now: float) -> None:
        """Renew every claim whose last renewal is more than half a lease old."""
        held = self._held.copy()  # a snapshot: request threads add and remove claims meanwhile
        due = [(claim, since) for claim, since in held.items() if now - since[0] >= self._lease / 2]
        for (key, token), since in due:
            if (key, token) not in self._held:
                continue  # finished since the copy: renewing would only warn of a lost lease
            try:
                still_ours = self._store.renew(key, token, lease=self._lease)
            except StoreError as exc:
                logger.warning(
                    "could not renew the lease on %s: %s", key, exc, extra=log_fields(key)
                )
                self._tell("error")
                continue
            if not still_ours:
                logger.warning(
                    "lost the lease on %s; another worker may run it again",
                    key,
                    extra=log_fields(key),
                )
            self._tell("renewed" if still_ours else "lost")
            since[0] = now

    def _tell(self, event: str) -> None:
        """Tell each of :attr:`listeners` about a renewal: ``renewed``, ``lost`` or ``error``."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("lease listener raised; ignored", extra=log_fields())

    def retry_completions(self, now: float) -> None:
        """Try again to record as done each processed delivery whose next try is due."""
        for claim, retry in list(self._unfinished.items()):
            next_try, delay, give_up = retry
            if now < next_try:
                continue
            key, token = claim
            try:
                ours = self._store.complete(key, token)
            except StoreError as exc:
                if now >= give_up:
                    self._forget(claim)
                    logger.error(
                        "gave up recording %s as processed (%s); a redelivery will run its "
                        "hooks again",
                        key,
                        exc,
                        extra=log_fields(key),
                    )
                else:
                    retry[0], retry[1] = now + delay, min(delay * 2, self._interval)
                    logger.debug(
                        "still cannot record %s as processed: %s", key, exc, extra=log_fields(key)
                    )
                continue
            self._forget(claim)
            if ours:
                logger.info(
                    "recorded %s as processed now that the store answers",
                    key,
                    extra=log_fields(key),
                )
            else:
                logger.warning(
                    "%s completed after its lease was taken over", key, extra=log_fields(key)
                )

    def _forget(self, claim: tuple[str, int]) -> None:
        self._unfinished.pop(claim, None)
        self._held.pop(claim, None)

    def close(self) -> None:
        if self._unfinished:
            logger.error(
                "closing with %d processed deliveries not recorded as done: redeliveries will "
                "run their hooks again",
                len(self._unfinished),
                extra=log_fields(),
            )
        self._closed = True
        self._wake.set()
