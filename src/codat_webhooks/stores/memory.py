"""An in-process store: exact semantics of the protocol, for tests and single-process apps.

Nothing survives a restart and nothing is shared between processes, so production services
with several workers want :class:`SQLiteStore`, :class:`RedisStore` or :class:`PostgresStore`.

Records past the retention window are evicted as the store is used: any write (inline or
queued) that finds the last sweep more than a sixteenth of the retention ago purges first. So a
long-running process holds about one retention window of records (1.9 KB each), and a delivery
pays one comparison, not a scan.

A forked child gets a copy of the records and a lock of its own: the two processes then go on
separately, which is why this store promises exactly-once within one process only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .._forking import start_over_in_children
from ._plan import plan_claim, plan_enqueue, plan_park, plan_take
from .base import (
    DEFAULT_RETENTION,
    Claim,
    Entry,
    Record,
    RecordQuery,
    State,
    Store,
    newest_first,
    storable_text,
)

__all__ = ["MemoryStore"]


_SWEEPS_PER_RETENTION = 16


class MemoryStore(Store):
    """A dict behind one lock; ``clock`` lets tests move time instead of sleeping."""

    blocking = False

    def __init__(
        self, *, retention: float = DEFAULT_RETENTION, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(retention=retention)
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        self._sweep_every = self.retention / _SWEEPS_PER_RETENTION
        self._next_sweep = clock() + self._sweep_every
        start_over_in_children(self)

    def _forked(self) -> None:
        self._lock = threading.Lock()  # the parent's may have been copied held

    def _now_swept(self) -> float:
        """The time, after evicting what retention let go if a sweep is due; lock held."""
        now = self._clock()
        if now >= self._next_sweep:
            self._evict(now, None)
        return now

    def claim(self, entry: Entry, *, lease: float, force: bool = False) -> Claim:
        entry = entry.storable()
        with self._lock:
            now = self._now_swept()
            claim, record = plan_claim(
                self._records.get(entry.key),
                entry,
                now=now,
                lease=lease,
                force=force,
                retention=self.retention,
            )
            if record is not None:
                self._records[entry.key] = record
            return claim

    def _held(self, key: str, token: int) -> Record | None:
        """The record if ``token`` still holds its lease; call with the lock held."""
        record = self._records.get(key)
        if record is None or record.token != token or record.state is not State.PROCESSING:
            return None
        return record

    def renew(self, key: str, token: int, *, lease: float) -> bool:
        expires = self._clock() + lease
        with self._lock:
            record = self._held(key, token)
            if record is None:
                return False
            self._records[key] = record._replace(lease_expires=expires)
            return True

    def complete(self, key: str, token: int) -> bool:
        return self._finish(key, token, State.DONE, None)

    def release(self, key: str, token: int, *, error: str) -> bool:
        return self._finish(key, token, State.FAILED, storable_text(error))

    def _finish(self, key: str, token: int, state: State, error: str | None) -> bool:
        with self._lock:
            now = self._now_swept()
            record = self._held(key, token)
            if record is None:
                return False
            # Same key, fingerprint, attempts and first_seen; the new state is final for this
            # claim, so the lease goes and last_seen starts the retention period.
            self._records[key] = Record._make(
                (
                    *record[:1],
                    state,
                    *record[2:5],
                    now,
                    *record[6:10],
                    error,
                    token,
                    0.0,
                    record[13],
                )
            )
            return True

    def enqueue(self, entry: Entry) -> Claim:
        entry = entry.storable()
        with self._lock:
            now = self._now_swept()
            claim, record = plan_enqueue(
                self._records.get(entry.key), entry, now=now, retention=self.retention
            )
            if record is not None:
                self._records[entry.key] = record
            return claim

    def take(self, key: str, *, lease: float) -> Claim:
        with self._lock:
            now = self._now_swept()
            claim, record = plan_take(self._records.get(key), now=now, lease=lease)
            if record is not None:
                self._records[key] = record
            return claim

    def defer(self, key: str, token: int, *, due: float, error: str) -> bool:
        with self._lock:
            now = self._now_swept()
            record = self._held(key, token)
            if record is None:
                return False
            self._records[key] = record._replace(
                state=State.QUEUED,
                last_seen=now,
                lease_expires=due,
                last_error=storable_text(error),
            )
            return True

    def park(self, entry: Entry, *, reason: str) -> None:
        entry, reason = entry.storable(), storable_text(reason) or ""
        with self._lock:
            now = self._now_swept()
            record = self._records.get(entry.key)
            self._records[entry.key] = plan_park(record, entry, now=now, reason=reason)

    def get(self, key: str) -> Record | None:
        with self._lock:
            return self._records.get(key)

    def _find(self, query: RecordQuery) -> list[Record]:
        with self._lock:
            records = list(self._records.values())
        matches = [record for record in records if query.matches(record)]
        matches.sort(key=newest_first, reverse=True)
        return matches[: query.limit]

    def ping(self) -> None:
        """Always answers: the records live in this process."""

    def counts(self) -> dict[State, int]:
        found = dict.fromkeys(State, 0)
        with self._lock:
            for record in self._records.values():
                found[record.state] += 1
        return found

    def purge(self, *, older_than: float | None = None) -> int:
        now = self._clock()
        with self._lock:
            return self._evict(now, older_than)

    def _evict(self, now: float, older_than: float | None) -> int:
        """:meth:`purge` with the lock held; also called every ``retention / 16`` seconds."""
        if older_than is None:
            self._next_sweep = now + self._sweep_every
        cutoff = self._purge_cutoff(now, older_than)
        doomed = [
            key
            for key, record in self._records.items()
            if record.last_seen < cutoff
            and not (record.state is State.PROCESSING and record.lease_expires > now)
        ]
        for key in doomed:
            del self._records[key]
        return len(doomed)
