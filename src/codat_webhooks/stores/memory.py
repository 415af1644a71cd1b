"""An in-process store: exact semantics of the protocol, for tests and single-process apps.

Nothing survives a restart and nothing is shared between processes, so production services
with several workers want :class:`SQLiteStore`, :class:`RedisStore` or :class:`PostgresStore`.

Records past the retention window are evicted as the store is used: any write (inline or
queued) that finds the last sweep more than a sixteenth of the retention ago purges first. So a
long-running process holds about one retention window of records (1.9 KB each), and a delivery
pays one comparison, not a scan.

A forked child gets a copy of the records and a lock of its own: the two processes then go on
separately, which is why this store promises exactly-once within one process only.

History entries and verdicts are kept as plain tuples and made into their named types when
read. A plain tuple of numbers and strings is one the garbage collector stops tracking, so a
store of many keys holds about one tracked object per key (its record): the collector's full
passes, which pause every request of the process, stay as short as they can.

A key's history is one flat tuple holding its entries' fields one after another, not a tuple of
entries: each answer then replaces the key's one tuple instead of adding an object that lives
on. Every object that lives on moves the process toward its next collection, so at Codat's
volumes (a duplicate for most keys) the flat form keeps the collector's pauses off the requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeAlias

from .._forking import start_over_in_children
from . import machine, marks
from .base import DEFAULT_RETENTION, Claim, Entry, Record, RecordQuery, State, Store, newest_first
from .history import HISTORY_LIMIT, History, HistoryEntry, answered
from .records import ClaimStatus

__all__ = ["MemoryStore"]


_SWEEPS_PER_RETENTION = 16

_KeptFields: TypeAlias = tuple[float | int | str | None, ...]
"""The fields of a key's history entries, :data:`_ENTRY_SIZE` per entry, oldest first."""
_ENTRY_SIZE = len(HistoryEntry._fields)
_HANDED_OVER = (ClaimStatus.CLAIMED, ClaimStatus.QUEUED)
"""The answers that move a scope's mark: the key was handed to hooks or to the queue."""
_KeptVerdict: TypeAlias = tuple[bool, str | None, float | None, bool, float]
"""A :class:`~.marks.Verdict`'s fields, then when it was written."""


class MemoryStore(Store):
    """A dict behind one lock; ``clock`` lets tests move time instead of sleeping.

    Each operation reads the key's record, asks :mod:`.machine` for the decision and stores
    the record it returns, all under the lock.
    """

    blocking = False

    def __init__(
        self, *, retention: float = DEFAULT_RETENTION, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(retention=retention, clock=clock)
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        self._marks: dict[str, marks.HighWater] = {}
        self._verdicts: dict[str, _KeptVerdict] = {}
        self._histories: dict[str, _KeptFields] = {}
        self._dropped: dict[str, int] = {}
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

    def _answer(
        self,
        entry: Entry,
        decided: tuple[Claim, Record | None],
        now: float,
        attempt: HistoryEntry | None = None,
    ) -> Claim:
        """Store the decided record (if any), note the answer in the key's history and move the
        scope's mark if the key was handed over; lock held."""
        claim, record = decided
        if record is not None:
            self._records[entry.key] = record
        self._note(entry.key, answered(attempt, claim.status, now))
        return self._ordered(entry, claim, now)

    def _note(self, key: str, entry: HistoryEntry | None) -> None:
        """Append ``entry`` to ``key``'s history, dropping the oldest past the limit; lock held."""
        if entry is None:
            return
        at, status, outcome, duration_ms, error, verified_by, process = entry
        kept = self._histories.get(key, ())
        if len(kept) == HISTORY_LIMIT * _ENTRY_SIZE:
            kept = kept[_ENTRY_SIZE:]
            self._dropped[key] = self._dropped.get(key, 0) + 1
        # The outcome as plain text, as the other stores read it back: a member of the
        # Outcome enum is an object the collector would keep tracking, with the tuple.
        fields = (at, status, str(outcome), duration_ms, error, verified_by, process)
        self._histories[key] = kept + fields

    def _claim(
        self, entry: Entry, *, lease: float, force: bool, attempt: HistoryEntry | None = None
    ) -> Claim:
        with self._lock:
            now = self._now_swept()
            record = self._records.get(entry.key)
            decided = machine.claim(
                record, entry, now=now, lease=lease, force=force, retention=self.retention
            )
            return self._answer(entry, decided, now, attempt)

    def _enqueue(self, entry: Entry, *, attempt: HistoryEntry | None = None) -> Claim:
        with self._lock:
            now = self._now_swept()
            record = self._records.get(entry.key)
            decided = machine.enqueue(record, entry, now=now, retention=self.retention)
            return self._answer(entry, decided, now, attempt)

    def _take(self, key: str, *, lease: float) -> Claim:
        with self._lock:
            now = self._now_swept()
            claim, record = machine.take(self._records.get(key), now=now, lease=lease)
            if record is not None:
                self._records[key] = record
            return claim

    def _move(self, key: str, token: int, change: machine.Move) -> bool:
        with self._lock:
            self._now_swept()
            moved = machine.move(self._records.get(key), token, change)
            if moved is None:
                return False
            self._records[key] = moved
            self._note(key, change.attempt)
            return True

    def _park(self, entry: Entry, *, reason: str, attempt: HistoryEntry | None = None) -> bool:
        with self._lock:
            now = self._now_swept()
            parked = machine.park(self._records.get(entry.key), entry, now=now, reason=reason)
            if parked is None:
                return False
            self._records[entry.key] = parked
            self._note(entry.key, attempt)
            return True

    def _get(self, key: str) -> Record | None:
        with self._lock:
            return self._records.get(key)

    def _note_only(self, key: str, entry: HistoryEntry) -> None:
        with self._lock:
            self._note(key, entry)

    def _history(self, key: str) -> History:
        with self._lock:
            kept = self._histories.get(key, ())
            dropped = self._dropped.get(key, 0)
        entries = [
            HistoryEntry._make(kept[start : start + _ENTRY_SIZE])
            for start in range(0, len(kept), _ENTRY_SIZE)
        ]
        return History(entries, dropped)

    def _find(self, query: RecordQuery) -> list[Record]:
        with self._lock:
            records = list(self._records.values())
        matches = [record for record in records if query.matches(record)]
        matches.sort(key=newest_first, reverse=True)
        return matches[: query.limit]

    def _ordered(self, entry: Entry, claim: Claim, now: float) -> Claim:
        """Move the scope's mark if the key was handed over (:func:`.marks.judge`); lock held."""
        mark, status = entry.mark, claim.status
        if mark is None or status not in _HANDED_OVER:
            return claim
        current = self._marks.get(mark.scope)
        verdict, moved = marks.judge(current, mark, entry.key, now, self.retention)
        if moved is not None:
            self._marks[mark.scope] = moved
        if verdict.notable:
            self._verdicts[entry.key] = (*verdict, now)
        return machine.in_scope(claim, verdict)

    def _recheck(self, key: str, mark: marks.Mark) -> marks.Verdict:
        with self._lock:
            now = self._clock()
            kept = self._kept_verdict(key)
            verdict = marks.recheck(self._marks.get(mark.scope), mark, key, kept)
            if verdict.notable and verdict != kept:
                self._verdicts[key] = (*verdict, now)
            return verdict

    def _verdict(self, key: str) -> marks.Verdict | None:
        with self._lock:
            return self._kept_verdict(key)

    def _kept_verdict(self, key: str) -> marks.Verdict | None:
        """``key``'s verdict, if it was stale or gapped; lock held."""
        kept = self._verdicts.get(key)
        return None if kept is None else marks.Verdict._make(kept[:4])

    def _high_water(self, scope: str) -> marks.HighWater | None:
        with self._lock:
            return self._marks.get(scope)

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
            if machine.purgeable(record, cutoff=cutoff, now=now)
        ]
        for key in doomed:
            del self._records[key]
            self._histories.pop(key, None)
            self._dropped.pop(key, None)
        self._evict_marks(cutoff)
        return len(doomed)

    def _evict_marks(self, cutoff: float) -> None:
        """Marks and verdicts last written before ``cutoff`` go with the records; lock held."""
        for scope in [s for s, m in self._marks.items() if m.last_seen < cutoff]:
            del self._marks[scope]
        for key in [k for k, kept in self._verdicts.items() if kept[4] < cutoff]:
            del self._verdicts[key]
