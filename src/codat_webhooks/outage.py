"""What a receiver knows about its store being down, so an outage costs requests nothing.

A store that is down makes every call wait out its timeout (a PostgreSQL pool waits for a
connection it cannot make; a firewalled Redis waits for its socket). Under gunicorn's sync
workers that is one answer per worker per timeout, with everything else queued behind it, so
a store outage would take the web service down with it. Codat retries a 503 on its own
schedule, so there is nothing to gain by waiting: after the first failure the receiver answers
503 at once, and one background thread pings the store until it answers again.

Health checks read the same state, so a load balancer sees what the senders see.
"""

from __future__ import annotations

import threading

from ._forking import start_over_in_children
from ._logging import library_logger
from .errors import StoreError
from .observe import log_fields
from .stores.base import Store

__all__ = ["StoreOutage"]

logger = library_logger("codat_webhooks.receiver")


class StoreOutage:
    """The store's state as this process last found it: answering, or down since a failure.

    :meth:`check` raises at once while the store is down; :meth:`failed` records a failure and
    starts the watcher, which pings the store every ``ping_every`` seconds (the first at once)
    and clears the outage when a ping succeeds.
    """

    def __init__(self, store: Store, *, ping_every: float = 1.0) -> None:
        self.store = store
        self.ping_every = ping_every
        self._start_over()
        start_over_in_children(self)

    def _start_over(self) -> None:
        self._cause: StoreError | None = None
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def _forked(self) -> None:
        """A child has no watcher thread; it finds out about the store for itself."""
        self._start_over()

    @property
    def down(self) -> StoreError | None:
        """The failure that started the outage, or ``None`` while the store answers."""
        return self._cause

    def check(self) -> None:
        """Raise the outage's :class:`StoreError` while the store is down."""
        cause = self._cause
        if cause is not None:
            raise StoreError(f"store unavailable (waiting for it to answer): {cause}")

    def ping(self) -> None:
        """Ping the store, unless it is known to be down (then raise at once); a failed ping
        starts an outage, as a failed delivery does."""
        self.check()
        try:
            self.store.ping()
        except StoreError as exc:
            self.failed(exc)
            raise

    def failed(self, cause: StoreError) -> None:
        """Answer for the store at once from now on, until a ping succeeds."""
        with self._lock:
            if self._cause is None:
                logger.error(
                    "store unavailable: %s; answering 503 until it answers a ping",
                    cause,
                    extra=log_fields(outcome="unavailable", status=503),
                )
            self._cause = cause
            if self._closed.is_set() or (self._watcher is not None and self._watcher.is_alive()):
                return
            self._watcher = threading.Thread(
                target=self._watch, name="codat-webhooks-store-watch", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        while not self._closed.is_set():
            try:
                self.store.ping()
            except StoreError as exc:
                self._cause = exc
            except Exception as exc:  # a broken store must not end the watch silently
                self._cause = StoreError(f"{type(exc).__name__}: {exc}")
            else:
                with self._lock:
                    self._cause = None
                    self._watcher = None
                logger.warning("store answers again", extra=log_fields())
                return
            self._closed.wait(self.ping_every)

    def close(self) -> None:
        """Stop watching (the receiver is closing)."""
        self._closed.set()
