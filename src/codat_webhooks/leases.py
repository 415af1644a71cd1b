"""Keeps the claims of running hooks alive, so a slow but healthy handler is never run twice.

One daemon thread per receiver (started on first use) renews every claim held for more than
half its lease. A worker that dies stops renewing, so its lease still runs out and another
worker takes the delivery over. Registering a claim costs a dict insert, not a thread.
"""

from __future__ import annotations

import logging
import threading

from .clock import Clock, system_clock
from .errors import StoreError
from .stores.base import Store

__all__ = ["LeaseKeeper"]

logger = logging.getLogger("codat_webhooks")


class LeaseKeeper:
    """Renews the claims registered with :meth:`track`; ``clock`` is the store's clock."""

    def __init__(self, store: Store, lease: float, *, clock: Clock = system_clock) -> None:
        self._store = store
        self._lease = lease
        self._clock = clock
        # claim -> [time of the last renewal]: a one-item list, so the renewer can update it in
        # place and never re-inserts a claim that untrack() removed meanwhile.
        self._held: dict[tuple[str, int], list[float]] = {}
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

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

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="codat-webhooks-leases", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        interval = max(self._lease / 4, 0.01)
        while not self._wake.wait(interval):
            self.renew_due(self._clock())

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
                logger.warning("could not renew the lease on %s: %s", key, exc)
                continue
            if not still_ours:
                logger.warning("lost the lease on %s; another worker may run it again", key)
            since[0] = now

    def close(self) -> None:
        self._wake.set()
