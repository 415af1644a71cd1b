"""The SQLite connections of one store in one process: one per thread, never caught by a fork.

A sqlite3 connection must not be shared across threads or carried across ``fork``, so each
thread opens its own and a forked child opens new ones, leaving the parent's untouched. That is
not enough when threads of the parent are busy (the embedded queue's workers and sweeper, the
lease renewer): SQLite takes process-wide mutexes inside every call, Python lets other threads
run meanwhile, and a fork in that moment copies a mutex held, so the child's first call into
SQLite waits forever. Each thread's connection therefore has a lock held only while a call is
inside SQLite, and a fork takes every one of them first (see :mod:`.._forking`): it waits for
the calls under way (a statement here lasts microseconds) and keeps new ones out until it is
done. The lock is the thread's own, so threads never wait for each other's reads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .._forking import hold_forks_while_inside, leave_to_parent

__all__ = ["Connection", "Connections", "Result"]


class Result(NamedTuple):
    """A finished statement: every row it returned, and how many rows it changed.

    The rows are read before the call leaves SQLite, so no cursor is left half-read for a fork
    to find inside SQLite. ``fetchall`` gives the shape the shared SQL code reads a cursor with.
    """

    rows: list[Any]
    rowcount: int

    def fetchall(self) -> list[Any]:
        return self.rows


class Connection:
    """One thread's connection, and the lock it holds while a call is inside SQLite."""

    __slots__ = ("inside", "sqlite")

    sqlite: sqlite3.Connection
    """Set once opened; use it only holding :attr:`inside`, or through the methods below."""

    def __init__(self) -> None:
        self.inside = threading.Lock()

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Execute a statement that returns rows (a SELECT, a RETURNING) and read them all."""
        with self.inside:
            return self.sqlite.execute(sql, params).fetchall()

    def count(self, sql: str, params: Sequence[object] = ()) -> int:
        """Execute a statement that returns no rows; how many rows it changed."""
        with self.inside:
            return self.sqlite.execute(sql, params).rowcount

    def run(self, sql: str, params: Sequence[object] = ()) -> Result:
        """Execute one statement of either kind (the shared SQL code in a transaction reads
        rows of some and counts of others)."""
        with self.inside:
            cursor = self.sqlite.execute(sql, params)
            return Result(cursor.fetchall(), cursor.rowcount)


class Connections:
    """This process's connections of one store: the calling thread's is opened on first use."""

    def __init__(self, opener: Callable[[], sqlite3.Connection]) -> None:
        self._open = opener
        self._local = threading.local()
        self._all: list[Connection] = []
        self._all_lock = threading.Lock()
        hold_forks_while_inside(self)

    def get(self) -> Connection:
        """This thread's connection, opened now if it has none."""
        cached: Connection | None = getattr(self._local, "connection", None)
        if cached is not None:
            return cached
        connection = Connection()
        with self._all_lock:  # listed before it enters SQLite, so a fork waits for the opening
            self._all.append(connection)
        try:
            with connection.inside:
                connection.sqlite = self._open()
        except BaseException:
            self._forget(connection)
            raise
        self._local.connection = connection
        return connection

    def holds(self, connection: Connection) -> bool:
        """Whether ``connection`` is still this thread's (not dropped since it was got)."""
        return getattr(self._local, "connection", None) is connection

    def drop(self) -> None:
        """Close this thread's connection, so its next :meth:`get` opens a fresh one."""
        cached: Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if cached is not None:
            _close(cached)
            self._forget(cached)

    def close(self) -> None:
        """Close every connection this process opened (a child's list starts empty)."""
        with self._all_lock:
            connections = list(self._all)
        for connection in connections:
            _close(connection)
            self._forget(connection)

    def _forget(self, connection: Connection) -> None:
        with self._all_lock:
            self._all = [each for each in self._all if each is not connection]

    # --- around a fork (see .._forking) ---------------------------------------------------------

    def _before_fork(self) -> None:
        self._all_lock.acquire()  # no connection is listed or opened until the fork is done
        for connection in self._all:
            connection.inside.acquire()

    def _after_fork_in_parent(self) -> None:
        for connection in self._all:
            connection.inside.release()
        self._all_lock.release()

    def _forked(self) -> None:
        """The child's copies of the parent's connections are left alone (SQLite forbids using
        them, and closing one could release the parent's file locks); it opens its own."""
        leave_to_parent((self._local, self._all))
        self._local = threading.local()
        self._all = []
        self._all_lock = threading.Lock()


def _close(connection: Connection) -> None:
    """Close it while it is still listed, so that a fork waits for the close as for any call."""
    with connection.inside:
        opened: sqlite3.Connection | None = getattr(connection, "sqlite", None)
        if opened is not None:  # None: its opening failed
            opened.close()
