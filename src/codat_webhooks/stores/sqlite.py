"""The default store: one SQLite file that every worker process on a machine shares.

WAL mode lets readers run beside the one writer. A new key is claimed by one ``INSERT OR
IGNORE``, which exactly one connection wins; a known key is read and decided inside
``BEGIN IMMEDIATE``, which takes the write lock before the read, so two processes can never both
decide a key is theirs. Each thread (and each forked process) opens its own connection, because
a sqlite3 connection must not be shared across threads or across ``fork``.

``synchronous=NORMAL``: in WAL mode a commit survives any crash of the process; only a power
loss or kernel crash can roll back the last few commits. The worst that does here is run a
hook again for an alert that was just processed (Codat redelivers anyway), which is the same
failure as a crash before completing. ``FULL`` would fsync twice per delivery.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .._forking import leave_to_parent, start_over_in_children
from ..errors import ConfigurationError, StoreError
from ._plan import (
    plan_claim,
    plan_enqueue,
    plan_first_claim,
    plan_park,
    plan_take,
    record_from_row,
    record_to_row,
)
from .base import (
    DEFAULT_RETENTION,
    Claim,
    ClaimStatus,
    Entry,
    Record,
    RecordQuery,
    State,
    Store,
    key_problem,
    storable_text,
)

__all__ = ["DEFAULT_DB_PATH", "SQLiteStore"]

DEFAULT_DB_PATH = "codat-webhooks.sqlite3"
"""The file a receiver (and the CLI) uses when no store is given: in the working directory."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    kind TEXT,
    company_id TEXT,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    last_error TEXT,
    token INTEGER NOT NULL,
    lease_expires REAL NOT NULL,
    verified_by TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_last_seen ON deliveries (last_seen);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (lease_expires)
    WHERE state IN ('queued', 'processing');
"""
_COLUMNS = (
    "key, state, fingerprint, attempts, first_seen, last_seen, kind, company_id, body, headers,"
    " last_error, token, lease_expires, verified_by"
)
_SELECT = f"SELECT {_COLUMNS} FROM deliveries"  # noqa: S608 - constant column list
_UPSERT = f"INSERT OR REPLACE INTO deliveries ({_COLUMNS}) VALUES ({', '.join('?' * 14)})"  # noqa: S608
_INSERT_NEW = f"INSERT OR IGNORE INTO deliveries ({_COLUMNS}) VALUES ({', '.join('?' * 14)})"  # noqa: S608
# Each UPDATE applies only while ``token`` still holds the record (fencing), and writes only the
# columns that change.
_RENEW = (
    "UPDATE deliveries SET lease_expires = ? WHERE key = ? AND token = ? AND state = 'processing'"
)
_COMPLETE = (
    "UPDATE deliveries SET state = 'done', last_seen = ?, lease_expires = 0, last_error = NULL"
    " WHERE key = ? AND token = ? AND state = 'processing'"
)
_RELEASE = (
    "UPDATE deliveries SET state = 'failed', last_seen = ?, lease_expires = 0, last_error = ?"
    " WHERE key = ? AND token = ? AND state = 'processing'"
)
_DEFER = (
    "UPDATE deliveries SET state = 'queued', last_seen = ?, lease_expires = ?, last_error = ?"
    " WHERE key = ? AND token = ? AND state = 'processing'"
)
_TAKE = (
    "UPDATE deliveries SET state = 'processing', attempts = attempts + 1, last_seen = ?,"
    " token = token + 1, lease_expires = ? WHERE key = ? AND (state = 'queued'"
    " OR (state = 'processing' AND lease_expires <= ?)) RETURNING token, attempts"
)
_TAKE_RECORD = _TAKE.replace("RETURNING token, attempts", f"RETURNING {_COLUMNS}")
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35)
_DUE = (
    "SELECT key FROM deliveries WHERE state IN ('queued', 'processing') AND lease_expires <= ?"
    " ORDER BY lease_expires LIMIT ?"
)


_CHECKPOINT_PAGES = 2500
"""Copy the WAL back into the database (two fsyncs) once it holds this many pages.

A delivery writes about six pages (claim: the row, the key index, the ``last_seen`` index;
complete: the row and ``last_seen`` again), so SQLite's default of 1000 meant a checkpoint,
fsyncs included, every ~170 deliveries inside some request. At 2500 it comes every ~400, as
often per write as for a one-column table at the default: the same commits are at risk on a
power loss as with a hand-written ``INSERT OR IGNORE`` receiver, and the WAL grows to ~10 MB.
"""

_FIRST_WAIT = 20e-6
_LONGEST_WAIT = 1e-3
_SQLITE_BUSY = 5  # the primary result code; extended codes keep it in their low byte


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code: int | None = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        return str(exc).startswith("database is locked")
    return code & 0xFF == _SQLITE_BUSY


_REOPEN_AFTER = frozenset({8, 10, 14})
"""SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN: faults a fresh connection may not have."""


_REOPEN_MESSAGES = {
    "attempt to write a readonly database": 8,
    "disk I/O error": 10,
    "unable to open database file": 14,
}


def _error_code(exc: sqlite3.Error) -> int:
    code: int | None = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code
    return _REOPEN_MESSAGES.get(str(exc), -1)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a table made by an earlier version up to date (``verified_by`` came with queues).

    Two processes may both find the column missing; the second one's ``ALTER`` fails as a
    duplicate, which is the state it wanted.
    """
    columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(deliveries)")}
    if "verified_by" in columns:
        return
    try:
        conn.execute("ALTER TABLE deliveries ADD COLUMN verified_by TEXT")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


class SQLiteStore(Store):
    """Exactly-once across the threads and processes of one machine that share ``path``.

    ``timeout`` is how long a call waits for another process's write lock before it gives up
    with :class:`StoreError` (so the receiver answers 503 and Codat retries). The file is
    created and checked at construction, so a bad path fails at start; ``connect=False``
    defers that to the first call (the default store of a receiver built in a REPL or a test
    writes nothing until a delivery arrives).
    """

    blocking = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention: float = DEFAULT_RETENTION,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        connect: bool = True,
    ) -> None:
        super().__init__(retention=retention)
        text = os.fspath(path)
        if text == ":memory:" or text.startswith("file:") or "mode=memory" in text:
            raise ConfigurationError(
                "SQLiteStore needs a file path that every thread and process can open; "
                "use MemoryStore for an in-process store"
            )
        self.path = Path(text)
        self.timeout = float(timeout)
        self._clock = clock
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        start_over_in_children(self)
        if connect:
            with self._errors():
                self._connection()

    # --- connections -------------------------------------------------------------------------

    def _forked(self) -> None:
        """A forked child opens connections of its own; the parent's are never touched (SQLite
        forbids carrying one across ``fork``, and closing it could release the parent's locks)."""
        leave_to_parent((self._local, self._all))
        self._local = threading.local()
        self._all = []
        self._all_lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        cached: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if cached is not None:
            return cached
        if self._closed:
            raise StoreError("the store is closed")
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
            conn.executescript(_SCHEMA)
            _add_missing_columns(conn)
            # From here on a busy database is waited for by _run, not by SQLite (see there).
            conn.execute("PRAGMA busy_timeout=0")
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _holds(self, conn: sqlite3.Connection) -> bool:
        return getattr(self._local, "conn", None) is conn

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        if _error_code(exc) & 0xFF in _REOPEN_AFTER:
            self._drop_connection()
        return StoreError(f"SQLite store {self.path}: {exc}")

    def _drop_connection(self) -> None:
        """Close this thread's connection, so the next call opens a fresh one.

        A connection opened while the file could not be written (permissions, an immutable or
        read-only mounted file) is read-only for good, and one whose file hit an I/O error may
        be broken: keeping it would answer 503 until the process restarts, long after the file
        is writable again.
        """
        cached: sqlite3.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if cached is None:
            return
        with self._all_lock:
            self._all = [conn for conn in self._all if conn is not cached]
        cached.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _run(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        """Execute one statement, waiting while another connection holds the write lock.

        SQLite's own busy handler sleeps 1 ms, then 2, 5, 10... before it looks again, while a
        write here holds the lock for tens of microseconds: with two worker processes, every
        collision cost a worker a millisecond or more of doing nothing. So connections run with
        ``busy_timeout=0`` and the wait is done here, looking again after 20 microseconds and
        backing off to 1 ms, until ``timeout`` seconds have passed. Only statements that start a
        write (or run alone) ever find the database busy, and such a statement did nothing when
        it failed, so running it again is safe.
        """
        conn = self._connection()
        try:
            return conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise self._failure(exc) from exc
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        deadline = time.monotonic() + self.timeout  # real waiting, not the records' clock
        delay = _FIRST_WAIT
        while True:
            time.sleep(delay)
            try:
                return conn.execute(sql, params)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise self._failure(exc) from exc
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            delay = min(delay * 2, _LONGEST_WAIT)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A transaction that holds the database write lock from its first statement."""
        self._run("BEGIN IMMEDIATE")
        conn = self._connection()
        with self._errors():
            try:
                yield conn
            except BaseException:
                if self._holds(conn):  # a dropped connection rolled back as it closed
                    conn.execute("ROLLBACK")
                raise
        self._run("COMMIT")

    def _read(self, key: str) -> Record | None:
        row = self._run(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        return None if row is None else record_from_row(row)

    # --- the protocol ------------------------------------------------------------------------

    def claim(self, entry: Entry, *, lease: float, force: bool = False) -> Claim:
        entry = entry.storable()
        # Most deliveries carry a key never seen: one statement, one transaction, no read.
        # INSERT OR IGNORE is atomic, so of two processes racing for a new key exactly one
        # inserts; the other (and any key already known) takes the read-decide-write path.
        claim, fresh = plan_first_claim(entry, self._clock(), lease)
        if self._run(_INSERT_NEW, record_to_row(fresh)).rowcount == 1:
            return claim
        with self._write() as conn:
            now = self._clock()
            record = self._read(entry.key)
            claim, store = plan_claim(
                record, entry, now=now, lease=lease, force=force, retention=self.retention
            )
            if store is not None:
                conn.execute(_UPSERT, record_to_row(store))
        return claim

    def _update_held(self, sql: str, key: str, token: int, *values: object) -> bool:
        """Run ``sql`` (an UPDATE of a record still held by ``token``) in its own transaction."""
        if key_problem(key) is not None:
            return False  # never stored, so never held
        return self._run(sql, (*values, key, token)).rowcount == 1

    def renew(self, key: str, token: int, *, lease: float) -> bool:
        return self._update_held(_RENEW, key, token, self._clock() + lease)

    def complete(self, key: str, token: int) -> bool:
        return self._update_held(_COMPLETE, key, token, self._clock())

    def release(self, key: str, token: int, *, error: str) -> bool:
        return self._update_held(_RELEASE, key, token, self._clock(), storable_text(error))

    def enqueue(self, entry: Entry) -> Claim:
        entry = entry.storable()
        # As in claim: a key never seen is one INSERT OR IGNORE, anything else read-decide-write.
        claim, fresh = plan_enqueue(None, entry, now=self._clock(), retention=self.retention)
        assert fresh is not None
        if self._run(_INSERT_NEW, record_to_row(fresh)).rowcount == 1:
            return claim
        with self._write() as conn:
            record = self._read(entry.key)
            claim, store = plan_enqueue(record, entry, now=self._clock(), retention=self.retention)
            if store is not None:
                conn.execute(_UPSERT, record_to_row(store))
        return claim

    def take(self, key: str, *, lease: float) -> Claim:
        # A key a worker may run is one UPDATE that touches only the columns that change;
        # anything else (done, held, unknown) is decided by plan_take on the row.
        if _HAS_RETURNING:
            now = self._clock()
            rows = self._run(_TAKE, (now, now + lease, key, now)).fetchall()  # all: ends it
            if rows:
                token, attempts = rows[0]
                return Claim(ClaimStatus.CLAIMED, token=int(token), attempts=int(attempts))
        with self._write() as conn:
            claim, store = plan_take(self._read(key), now=self._clock(), lease=lease)
            if store is not None:
                conn.execute(_UPSERT, record_to_row(store))
        return claim

    def take_record(self, key: str, *, lease: float) -> tuple[Claim, Record | None]:
        # The same UPDATE as take, returning the whole row: a worker's claim and read in one.
        if _HAS_RETURNING:
            now = self._clock()
            rows = self._run(_TAKE_RECORD, (now, now + lease, key, now)).fetchall()
            if rows:
                record = record_from_row(rows[0])
                return Claim(ClaimStatus.CLAIMED, record.token, record.attempts), record
        return super().take_record(key, lease=lease)

    def defer(self, key: str, token: int, *, due: float, error: str) -> bool:
        return self._update_held(_DEFER, key, token, self._clock(), due, storable_text(error))

    def due(self, *, older_than: float = 0.0, limit: int = 100) -> list[str]:
        rows = self._run(_DUE, (self._clock() - older_than, limit)).fetchall()
        return [str(row[0]) for row in rows]

    def park(self, entry: Entry, *, reason: str) -> None:
        entry, reason = entry.storable(), storable_text(reason) or ""
        with self._write() as conn:
            record = self._read(entry.key)
            conn.execute(
                _UPSERT, record_to_row(plan_park(record, entry, now=self._clock(), reason=reason))
            )

    def get(self, key: str) -> Record | None:
        if key_problem(key) is not None:
            return None
        return self._read(key)

    def _find(self, query: RecordQuery) -> list[Record]:
        clauses: list[str] = []
        params: list[object] = []
        if query.states:
            clauses.append(f"state IN ({', '.join('?' * len(query.states))})")
            params.extend(state.value for state in query.states)
        for column, value in (("kind", query.kind), ("company_id", query.company_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            clauses.append("last_seen >= ?")
            params.append(query.since)
        if query.before is not None:
            clauses.append("last_seen < ?")
            params.append(query.before)
        if query.cursor is not None:
            # The bound on last_seen alone first, so the index on it starts the scan there.
            clauses.append("last_seen <= ? AND (last_seen < ? OR key < ?)")
            params.extend((query.cursor[0], *query.cursor))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT}{where} ORDER BY last_seen DESC, key DESC"
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(query.limit)
        with self._errors():
            rows = self._run(sql, params).fetchall()
        return [record_from_row(row) for row in rows]

    def ping(self) -> None:
        """The file is still there and the write lock can be taken (then let go at once).

        A connection keeps working on a file deleted under it, writing to nothing anyone will
        read again, so the path is checked first.
        """
        if not self.path.exists():
            raise StoreError(f"SQLite store {self.path}: the database file is gone")
        with self._write():
            pass

    def counts(self) -> dict[State, int]:
        with self._errors():
            rows = self._run("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall()
        return {**dict.fromkeys(State, 0), **{State(state): int(n) for state, n in rows}}

    def purge(self, *, older_than: float | None = None) -> int:
        now = self._clock()
        cutoff = self._purge_cutoff(now, older_than)
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM deliveries WHERE last_seen < ?"
                " AND NOT (state = 'processing' AND lease_expires > ?)",
                (cutoff, now),
            )
            return cursor.rowcount

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            connections, self._all = self._all, []
        for conn in connections:  # this process's own: a child's list starts empty
            conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"
