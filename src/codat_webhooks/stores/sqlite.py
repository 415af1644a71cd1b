"""The default store: one SQLite file that every worker process on a machine shares.

WAL mode lets readers run beside the one writer. The statements, and the protocol over them,
are shared with PostgreSQL (:mod:`.sql`): a new key is claimed by one ``INSERT ... ON CONFLICT
DO NOTHING``, which exactly one connection wins; a known key is read and decided inside
``BEGIN IMMEDIATE``, which takes the write lock before the read, so two processes can never both
decide a key is theirs. This module brings the connections and the waiting: each thread (and
each forked process) opens its own connection, because a sqlite3 connection must not be shared
across threads or across ``fork`` (and a fork waits until no thread is inside SQLite:
:mod:`.sqlite_connections`); the threads of a process write one at a time (a lock of the
process, which a forked child makes anew), and processes wait for each other in short steps.

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
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

from .._forking import start_over_in_children
from ..errors import ConfigurationError, StoreError
from . import machine, sql_marks, sqlite_history
from .base import DEFAULT_RETENTION
from .history import History, HistoryEntry
from .records import Claim, Entry, Record
from .sql import COLUMNS, SQLITE, Execute, Row, SQLStore, Statements, move_params, record_to_row
from .sql_marks import MarkStatements
from .sqlite_connections import Connection, Connections

__all__ = ["DEFAULT_DB_PATH", "SQLiteStore", "default_store"]

DEFAULT_DB_PATH = "codat-webhooks.sqlite3"
"""The file a receiver (and the CLI) uses when no store is given: in the working directory."""

_SQL = Statements(SQLITE, "deliveries", sqlite_history.COLUMNS_SQL)
_MARKS = MarkStatements(SQLITE, "deliveries")
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35)
_ROW_HISTORY = sqlite_history.RowHistory("deliveries", COLUMNS)


_CHECKPOINT_PAGES = 2500
"""Copy the WAL back into the database (two fsyncs) once it holds this many pages.

A delivery writes about six pages (claim: the row, the key index, the ``last_seen`` index;
complete: the row and ``last_seen`` again), so SQLite's default of 1000 meant a checkpoint,
fsyncs included, every ~170 deliveries inside some request. At 2500 it comes every ~400, as
often per write as for a one-column table at the default: the same commits are at risk on a
power loss as with a hand-written ``INSERT OR IGNORE`` receiver, and the WAL grows to ~10 MB.
"""

_T = TypeVar("_T")

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


_ADDED_COLUMNS = (("verified_by", "TEXT"), *sqlite_history.COLUMNS)
"""Columns a table made by an earlier version lacks: ``verified_by`` came with queues, the
history columns with the attempt history."""


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a table made by an earlier version up to date.

    Two processes may both find a column missing; the second one's ``ALTER`` fails as a
    duplicate, which is the state it wanted.
    """
    columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(deliveries)")}
    for name, kind in _ADDED_COLUMNS:
        if name in columns:
            continue
        try:
            conn.execute(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise


class SQLiteStore(SQLStore):
    """Exactly-once across the threads and processes of one machine that share ``path``.

    ``timeout`` is how long a call waits for another thread's write, then as long for another
    process's write lock, before it gives up with :class:`StoreError` (so the receiver answers
    503 and Codat retries). The file is created and checked at construction, so a bad path
    fails at start; ``connect=False`` defers that to the first call (the default store of a
    receiver built in a REPL or a test writes nothing until a delivery arrives).
    """

    blocking = True
    _sql = _SQL
    _marks_sql = _MARKS
    _returning = _HAS_RETURNING

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention: float = DEFAULT_RETENTION,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        connect: bool = True,
    ) -> None:
        super().__init__(retention=retention, clock=clock)
        text = os.fspath(path)
        if text == ":memory:" or text.startswith("file:") or "mode=memory" in text:
            raise ConfigurationError(
                "SQLiteStore needs a file path that every thread and process can open; "
                "use MemoryStore for an in-process store"
            )
        self.path = Path(text)
        self.timeout = float(timeout)
        self._connections = Connections(self._open)
        self._writer = threading.RLock()  # see _run
        self._closed = False
        self._opened = False  # the file has been opened (by this process or its parent)
        start_over_in_children(self)
        if connect:
            with self._errors():
                self._connection()

    # --- connections -------------------------------------------------------------------------

    def _forked(self) -> None:
        self._writer = threading.RLock()  # the parent's may have been copied held

    def _connection(self) -> sqlite3.Connection:
        """This thread's sqlite3 connection (to trace its statements in a test, say)."""
        return self._connections.get().sqlite

    def _open(self) -> sqlite3.Connection:
        """A new connection, with the file made ready for it (by :class:`Connections`, holding
        the lock that keeps a fork out while it is inside SQLite)."""
        if self._closed:
            raise StoreError("the store is closed")
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._into_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
            conn.executescript(f"{_SQL.schema};\n{_SQL.due_index}")
            conn.executescript(_MARKS.schema)
            conn.execute(f'DROP INDEX IF EXISTS "{_MARKS.unused_index}"')  # no lock if absent
            conn.execute(self._history_sql.schema)
            _add_missing_columns(conn)
            # From here on a busy database is waited for by _run, not by SQLite (see there).
            conn.execute("PRAGMA busy_timeout=0")
        except BaseException:
            conn.close()
            raise
        self._opened = True
        return conn

    def _into_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL, waiting (up to ``timeout``) while another process does the same.

        Turning a new file to WAL takes an exclusive lock, and SQLite answers "database is
        locked" at once instead of calling the busy handler: two gunicorn workers opening a
        fresh file together would otherwise see one of them fail to start.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.005)

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        """The error to raise; this thread's connection is closed first after a fault that a
        fresh one may not have.

        A connection opened while the file could not be written (permissions, an immutable or
        read-only mounted file) is read-only for good, and one whose file hit an I/O error may
        be broken: keeping it would answer 503 until the process restarts, long after the file
        is writable again.
        """
        if _error_code(exc) & 0xFF in _REOPEN_AFTER:
            self._connections.drop()
        return StoreError(f"SQLite store {self.path}: {exc}")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _run(
        self,
        how: Callable[[Connection, str, Sequence[object]], _T],
        sql: str,
        params: Sequence[object] = (),
    ) -> _T:
        """Execute one statement with this thread's connection (``how``: :meth:`Connection.rows`
        or :meth:`Connection.count`), waiting while another connection holds the write lock.

        SQLite's own busy handler sleeps 1 ms, then 2, 5, 10... before it looks again, while a
        write here holds the lock for tens of microseconds: with two worker processes, every
        collision cost a worker a millisecond or more of doing nothing. So connections run with
        ``busy_timeout=0`` and the wait is done here, looking again after 20 microseconds and
        backing off to 1 ms, until ``timeout`` seconds have passed. Only statements that start a
        write (or run alone) ever find the database busy, and such a statement did nothing when
        it failed, so running it again is safe.

        The threads of one process never wait for each other that way: a write takes the
        process's ``_writer`` lock first (see :meth:`_writing`), which wakes the next thread as
        soon as it is let go, so only one connection per process ever polls. With queued
        dispatch a web process's request thread and its four worker threads all write; polling
        among them was most of the waiting (issue 25's SQLite figures, docs/performance.md).
        """
        connection = self._connections.get()
        try:
            return how(connection, sql, params)
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
                return how(connection, sql, params)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise self._failure(exc) from exc
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            delay = min(delay * 2, _LONGEST_WAIT)

    def _writing(self) -> None:
        """Wait (up to ``timeout``) until no other thread of this process is writing.

        Reentrant, so a write inside a transaction of the same thread goes on. Released by
        :meth:`_written` on every path, so no thread can keep the others waiting after its
        statement or transaction has ended, whatever it raised.
        """
        if not self._writer.acquire(timeout=self.timeout):
            raise StoreError(f"SQLite store {self.path}: another thread's write took too long")

    def _written(self) -> None:
        self._writer.release()

    # --- what SQLStore performs the protocol with -------------------------------------------

    def _rows(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        if statement.startswith("SELECT"):  # a reader: WAL lets it run beside the writer
            with self._errors():
                return self._run(Connection.rows, statement, params)
        self._writing()  # a take: UPDATE ... RETURNING
        try:
            with self._errors():
                return self._run(Connection.rows, statement, params)
        finally:
            self._written()

    def _count(self, statement: str, params: Sequence[object] = ()) -> int:
        self._writing()
        try:
            return self._run(Connection.count, statement, params)
        finally:
            self._written()

    def _locked(self) -> AbstractContextManager[Execute]:
        return _Transaction(self)

    # --- the history in the record's row (see .sqlite_history) -------------------------------

    def _note(self, execute: Execute, key: str, entry: HistoryEntry) -> None:
        encoded = sqlite_history.encode(entry)
        if execute(_ROW_HISTORY.append, (encoded, key)).rowcount != 1:
            super()._note(execute, key, entry)  # no record: the table apart

    def _first(
        self, entry: Entry, claim: Claim, fresh: Record, note: HistoryEntry | None
    ) -> Claim | None:
        """A first record inserted with its history entry in the same statement (the mark, if
        any, judged in its transaction)."""
        if note is None:
            return super()._first(entry, claim, fresh, note)
        row = (*record_to_row(fresh), sqlite_history.encode(note))
        if entry.mark is None:
            return claim if self._count(_ROW_HISTORY.insert_new, row) == 1 else None
        return sql_marks.first_judged(
            self, entry.key, entry.mark, claim, row, insert=_ROW_HISTORY.insert_new
        )

    def _history(self, key: str) -> History:
        rows = self._rows(_ROW_HISTORY.select, (key,))
        own = sqlite_history.history_from_row(rows[0]) if rows else History([])
        return sqlite_history.combined(super()._history(key), own)

    def _move(self, key: str, token: int, change: machine.Move) -> bool:
        """A move and its history entry: one autocommit UPDATE of the row."""
        if change.attempt is None:
            return super()._move(key, token, change)
        statement = _SQL.move(change, _ROW_HISTORY.sets)
        params = move_params(key, token, change, (sqlite_history.encode(change.attempt),))
        return self._count(statement, params) == 1

    def ping(self) -> None:
        """The file is still there and the write lock can be taken (then let go at once).

        A connection keeps working on a file deleted under it, writing to nothing anyone will
        read again, so the path is checked first, once the file has been opened. Before that
        (the default store is created on first use) the ping creates it: a readiness probe
        must pass before the first delivery can arrive.
        """
        if self._opened and not self.path.exists():
            raise StoreError(f"SQLite store {self.path}: the database file is gone")
        with self._errors(), _Transaction(self):
            pass

    def close(self) -> None:
        self._closed = True
        self._connections.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"


class _Transaction:
    """A write transaction on this thread's connection: the process's writer lock, then
    ``BEGIN IMMEDIATE``, which takes the database's write lock before the first read; ``COMMIT``
    at the end, ``ROLLBACK`` on any exception, and the writer lock let go on every path.
    Entered, it gives the connection's :meth:`~.sqlite_connections.Connection.run`."""

    __slots__ = ("_conn", "_store")

    _conn: Connection

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def __enter__(self) -> Execute:
        store = self._store
        store._writing()
        try:
            store._run(Connection.count, "BEGIN IMMEDIATE")
            self._conn = conn = store._connections.get()
        except BaseException:
            store._written()
            raise
        return conn.run

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        store = self._store
        try:
            if kind is None:
                store._run(Connection.count, "COMMIT")
                return
            conn = self._conn
            try:
                if store._connections.holds(conn):  # a dropped one rolled back as it closed
                    conn.count("ROLLBACK")
            except sqlite3.Error as failed:
                raise store._failure(failed) from failed
            if isinstance(exc, sqlite3.Error):
                raise store._failure(exc) from exc
        finally:
            store._written()


def default_store(clock: Callable[[], float] = time.time) -> SQLiteStore:
    """The store of a receiver built without one: ``codat-webhooks.sqlite3`` in the working
    directory, created on the first delivery rather than when the receiver is built."""
    return SQLiteStore(DEFAULT_DB_PATH, clock=clock, connect=False)
