"""A store in PostgreSQL, for services that already run one (extra ``postgres``, psycopg 3).

The statements, and the protocol over them, are SQLite's too (:mod:`.sql`): a new key is
claimed by a single ``INSERT ... ON CONFLICT DO NOTHING``; a known key is read with ``SELECT
... FOR UPDATE`` and decided by :mod:`.machine`, so two workers on two machines serialise on
the row lock. Completion, renewal, release and deferral are one ``UPDATE`` each, fenced on the
claim's token. This module brings the connections: a pool per process, every wait bounded.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool

from .._forking import PerProcess
from ..errors import ConfigurationError, StoreError
from .base import DEFAULT_RETENTION
from .sql import POSTGRES, Execute, Row, SQLStore, Statements
from .sql_marks import MarkStatements

__all__ = ["PostgresStore"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,50}$")
_PURGE_SECONDS = 300
_COLUMN = "verified_by TEXT"
_HAS_VERIFIED_BY = (
    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
    " AND table_name = %s AND column_name = 'verified_by'"
)


def _bound_statements(conn: psycopg.Connection[Any], *, milliseconds: int) -> None:
    """Bound every statement of a new connection, row-lock waits included, on the server."""
    conn.execute(
        "SELECT set_config('statement_timeout', %s, false),"
        " set_config('idle_in_transaction_session_timeout', %s, false)",
        (str(milliseconds), str(milliseconds * 2)),
    )


def _only_here(pool: psycopg_pool.ConnectionPool, owner: int) -> psycopg_pool.ConnectionPool:
    """A ready pool, in the process that made it; in a forked child its sockets are the
    parent's, so using it would mix two processes' replies."""
    if os.getpid() != owner:
        raise StoreError(
            "PostgresStore was given a ready connection pool before this process was forked"
            " (gunicorn --preload, Celery prefork): pass a DSN, or a function that builds the"
            " pool, so each process opens its own"
        )
    return pool


class PostgresStore(SQLStore):
    """Exactly-once across every process and machine that shares one PostgreSQL table.

    ``dsn_or_pool`` is a connection string (each process makes a small pool from it on first
    use), a function that returns a ``psycopg_pool.ConnectionPool`` (called once in each
    process: the way to bring a pool of your own to a server that forks its workers), or a
    ready pool, which only the process that made it may use. Connections must be in autocommit
    mode. The table is created on first use; call :meth:`create_schema` to create it at deploy
    time instead.

    Every wait is bounded by ``timeout``: for a connection from the pool, for the server to
    accept one, and (``statement_timeout``, on pools made here) for a statement, row locks
    included. So a server that is down or stuck costs a 503, never a request held for good.
    """

    blocking = True
    _update_in_with = True

    def __init__(
        self,
        dsn_or_pool: str | psycopg_pool.ConnectionPool | Callable[[], psycopg_pool.ConnectionPool],
        *,
        retention: float = DEFAULT_RETENTION,
        table: str = "codat_webhooks_deliveries",
        timeout: float = 5.0,
        pool_size: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(retention=retention, clock=clock)
        if not _IDENTIFIER.match(table):
            raise ConfigurationError(f"table name {table!r} is not a plain SQL identifier")
        if not timeout > 0:
            raise ConfigurationError("timeout must be a positive number of seconds")
        self.timeout = float(timeout)
        self._owns_pool = isinstance(dsn_or_pool, str)
        opener: Callable[[], psycopg_pool.ConnectionPool]
        if isinstance(dsn_or_pool, str):
            dsn = dsn_or_pool
            opener = functools.partial(self._open_pool, dsn, pool_size)
        elif isinstance(dsn_or_pool, psycopg_pool.ConnectionPool):
            opener = functools.partial(_only_here, dsn_or_pool, os.getpid())
        else:
            opener = dsn_or_pool
        # Made on first use in each process: a child of gunicorn --preload or Celery's prefork
        # pool never writes on its parent's sockets (see codat_webhooks._forking).
        self._pool = PerProcess(opener)
        self._closed = False
        self.table = table
        self._schema_ready = False
        self._sql = Statements(POSTGRES, table)
        self._marks_sql = MarkStatements(POSTGRES, table)

    def _open_pool(self, dsn: str, size: int) -> psycopg_pool.ConnectionPool:
        milliseconds = max(1, round(self.timeout * 1000))
        pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=size,
            timeout=self.timeout,
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, round(self.timeout)),
                # A host that stops answering: unacknowledged data ends the connection.
                "tcp_user_timeout": milliseconds,
            },
            configure=functools.partial(_bound_statements, milliseconds=milliseconds),
            open=False,
        )
        pool.open(wait=False)  # connect in the background: a down server must not stop startup
        return pool

    @property
    def pool(self) -> psycopg_pool.ConnectionPool:
        """This process's connection pool (opened on first use)."""
        if self._closed:  # a closed store never reopens a pool that would retry in the background
            raise StoreError("the store is closed")
        try:
            return self._pool.get()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}: {exc}") from exc

    # --- connections -------------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool.connection(timeout=self.timeout) as conn:
                if not self._schema_ready:
                    self._create_schema(conn)
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}: {exc}") from exc

    def _create_schema(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            # Two workers starting at once would race on CREATE TABLE IF NOT EXISTS.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
            conn.execute(self._sql.schema)
            # ALTER takes the table's exclusive lock even when the column exists, and a worker
            # that started first may be inside a claim: it would deadlock with it.
            if not conn.execute(_HAS_VERIFIED_BY, (self.table,)).fetchone():
                conn.execute(
                    f'ALTER TABLE "{self.table}" ADD COLUMN IF NOT EXISTS verified_by TEXT'
                )
            conn.execute(self._marks_sql.schema)
            conn.execute(self._history_sql.schema)
        self._drop_unused_index(conn)
        self._schema_ready = True

    def _drop_unused_index(self, conn: psycopg.Connection[Any]) -> None:
        """Drop the marks index earlier versions made, in a transaction of its own: DROP takes
        the table's exclusive lock, which a worker inside a claim holds a share of, so inside
        the schema's transaction it could deadlock with it. A worker that cannot have the lock
        soon leaves it to the next start; the index only costs time."""
        name = self._marks_sql.unused_index
        if conn.execute("SELECT to_regclass(quote_ident(%s))", (name,)).fetchone() == (None,):
            return
        try:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '2s'")
                conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        except psycopg.errors.LockNotAvailable:
            pass

    def create_schema(self) -> None:
        """Create the table and its index now (idempotent); otherwise the first call does."""
        self._schema_ready = False
        with self._conn():
            pass

    # --- what SQLStore performs the protocol with -------------------------------------------

    def _rows(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        with self._conn() as conn:
            return conn.execute(statement, params).fetchall()

    def _count(self, statement: str, params: Sequence[object] = ()) -> int:
        with self._conn() as conn:
            return conn.execute(statement, params).rowcount

    @contextmanager
    def _locked(self) -> Iterator[Execute]:
        with self._conn() as conn, conn.transaction():
            yield conn.execute

    def _numbered_meanwhile(self, exc: StoreError) -> bool:
        return isinstance(exc.__cause__, psycopg.errors.UniqueViolation)

    def ping(self) -> None:
        with self._conn() as conn:
            conn.execute("SELECT 1")

    def purge(self, *, older_than: float | None = None) -> int:
        now = self._clock()
        cutoff = self._purge_cutoff(now, older_than)
        with self._conn() as conn, conn.transaction():
            # A purge after a long pause may delete many rows: longer than one delivery's
            # statement may take, still bounded.
            bound = f"{_PURGE_SECONDS}s"
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (bound,))
            for statement in self._marks_sql.purge:
                conn.execute(statement, (cutoff,))
            conn.execute(self._history_sql.purge, (cutoff, now))  # with their records
            return conn.execute(self._sql.purge, (cutoff, now)).rowcount

    def close(self) -> None:
        self._closed = True
        pool = self._pool.take()
        if pool is not None and self._owns_pool:
            pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore(table={self.table!r})"
