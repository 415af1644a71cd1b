"""Queued dispatch with no broker: worker threads in this process, and a sweeper over the store.

The store is the queue's memory: every accepted key is recorded as ``queued`` before it is
handed to a thread here, so a crash loses only this process's list of pending keys. The
sweeper finds what was lost (keys ``queued`` or with a dead worker's lease for longer than
``stale_after`` seconds) and runs them again, in this process or in any other sharing the
store: a ``codat-webhooks worker`` process is a :class:`LocalQueue` that only sweeps, with no
grace period, and so drains the store that web processes fill.

    receiver = Receiver(authorization=..., store=SQLiteStore("hooks.sqlite3"), queue=LocalQueue())
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from typing import TYPE_CHECKING

from .._forking import start_over_in_children
from .._logging import library_logger
from ..errors import ConfigurationError, StoreError
from ..observe import log_fields

if TYPE_CHECKING:
    from ..receiver import Receiver

__all__ = ["LocalQueue"]

logger = library_logger("codat_webhooks.queue")


class LocalQueue:
    """``workers`` threads run queued keys; a sweeper re-enqueues stale ones.

    ``stale_after``: seconds a key may stay ``queued`` (or a lease stay expired) before the
    sweeper takes it as lost; longer than the backlog you expect, or keys are run twice as often
    as they need (harmlessly: a second job for a key is a no-op). ``sweep_every``: seconds
    between sweeps. Threads start when the receiver binds the queue, and again in every child
    forked from this process afterwards (gunicorn's workers under ``--preload``), so each
    process sweeps whether or not a delivery reaches it. ``workers=0`` only records: web
    processes answer 202 and ``codat-webhooks worker`` processes run everything.
    """

    blocking = False

    def __init__(
        self, *, workers: int = 4, stale_after: float = 60.0, sweep_every: float = 5.0
    ) -> None:
        if workers < 0 or stale_after < 0 or sweep_every <= 0:
            raise ConfigurationError("LocalQueue needs workers >= 0, stale_after >= 0 and a sweep")
        self.workers = workers
        self.stale_after = float(stale_after)
        self.sweep_every = float(sweep_every)
        self._receiver: Receiver | None = None
        self._ready = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []  # (due, sequence, key)
        self._pending: set[str] = set()
        self._sequence = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid = 0
        self._closed = False

    def bind(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._start()
        start_over_in_children(self)

    def enqueue(self, key: str, delay: float = 0.0) -> None:
        """Run ``key`` on a worker thread after ``delay`` seconds (once, however often asked)."""
        if not self.workers:
            return  # recorded as queued: a worker process will find it
        if self._pid != os.getpid():
            self._start()
        with self._ready:
            if key in self._pending:
                return
            self._pending.add(key)
            self._sequence += 1
            heapq.heappush(self._heap, (time.monotonic() + delay, self._sequence, key))
            self._ready.notify()

    def sweep(self) -> int:
        """Re-enqueue the keys the store says are stale; how many it found."""
        assert self._receiver is not None, "bind the queue to a receiver first"
        keys = self._receiver.store.due(older_than=self.stale_after, limit=1000)
        for key in keys:
            self.enqueue(key)
        return len(keys)

    def close(self) -> None:
        """Stop the threads after the keys they are running (pending ones stay ``queued``)."""
        self._closed = True
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)
        self._threads = []

    # --- threads -----------------------------------------------------------------------------

    def _forked(self) -> None:
        """In a forked child (a gunicorn worker of a ``--preload`` master): the parent's
        threads, its pending keys and perhaps a held lock were copied; start with fresh ones, so
        the child sweeps and runs keys before (and without) any delivery reaching it."""
        self._ready = threading.Condition()
        self._heap, self._pending, self._threads, self._pid = [], set(), [], 0
        if self._receiver is not None and not self._closed:
            self._start()

    def _start(self) -> None:
        if not self.workers or self._closed:
            return
        with self._ready:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._heap, self._pending = [], set()  # a forked child's copy is its parent's
            self._stop = threading.Event()
            self._threads = [
                threading.Thread(target=self._work, name=f"codat-webhooks-worker-{n}", daemon=True)
                for n in range(self.workers)
            ]
            self._threads.append(
                threading.Thread(target=self._sweep, name="codat-webhooks-sweeper", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def _next(self) -> str | None:
        with self._ready:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    key = heapq.heappop(self._heap)[2]
                    self._pending.discard(key)
                    return key
                self._ready.wait(self._heap[0][0] - now if self._heap else None)
        return None

    def _work(self) -> None:
        receiver = self._receiver
        assert receiver is not None
        while (key := self._next()) is not None:
            try:
                work = receiver.process_queued(key)
            except Exception:  # a bug, not a hook failure (those come back as Work)
                logger.exception(
                    "worker could not run %s; the sweeper will retry it", key, extra=log_fields(key)
                )
                continue
            if work.retry_in is not None:
                self.enqueue(key, work.retry_in)

    def _sweep(self) -> None:
        while not self._stop.wait(self.sweep_every):
            try:
                self.sweep()
            except StoreError as exc:
                logger.warning("sweeper could not read the store: %s", exc, extra=log_fields())
