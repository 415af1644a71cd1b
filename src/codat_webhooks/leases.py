"""Keeps the claims of running hooks alive, so a slow but healthy handler is never run twice.

One daemon thread per receiver (started on first use) renews every claim held for more than
half its lease. A worker that dies stops renewing, so its lease still runs out and another
worker takes the delivery over. Registering a claim costs a dict insert, not a thread.
"""

from __future__ import annotations

import logging
import threading
import time

from .errors import StoreError
from .stores.base import Store

__all__ = ["LeaseKeeper"]

logger = logging.getLogger("codat_webhooks")


class LeaseKeeper:
    def __init__(self, store: Store, lease: float) -> None:
        self._store = store
        self._lease = lease
        self._held: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, key: str, token: int) -> None:
        """Start renewing the claim ``(key, token)`` in the background until :meth:`untrack`.

        A plain call pair rather than a context manager: this sits on every delivery's path.
        """
        with self._lock:
            self._held[(key, token)] = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="codat-webhooks-leases", daemon=True
                )
                self._thread.start()

    def untrack(self, key: str, token: int) -> None:
        with self._lock:
            self._held.pop((key, token), None)

    def _run(self) -> None:
        interval = max(self._lease / 4, 0.01)
        while not self._wake.wait(interval):
            self.renew_due(time.monotonic())

    def renew_due(self, now: float) -> None:
        """Renew every claim whose last renewal is more than half a lease old."""
        with self._lock:
            due = [claim for claim, since in self._held.items() if now - since >= self._lease / 2]
        for key, token in due:
            try:
                still_ours = self._store.renew(key, token, lease=self._lease)
            except StoreError as exc:
                logger.warning("could not renew the lease on %s: %s", key, exc)
                continue
            if not still_ours:
                logger.warning("lost the lease on %s; another worker may run it again", key)
            with self._lock:
                if (key, token) in self._held:
                    self._held[(key, token)] = now

    def close(self) -> None:
        self._wake.set()
