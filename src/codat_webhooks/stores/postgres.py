"""A store in PostgreSQL, for services that already run one (extra ``postgres``, psycopg 3).

A new key is claimed by a single ``INSERT ... ON CONFLICT DO NOTHING``; a known key is read
with ``SELECT ... FOR UPDATE`` and decided by the same rules as every other store, so two
workers on two machines serialise on the row lock. Completion, renewal and release are one
``UPDATE`` each, fenced on the claim's token.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql

from .._forking import PerProcess
from ..errors import ConfigurationError, StoreError
from ._plan import plan_claim, plan_enqueue, plan_park, plan_take, record_from_row, record_to_row
from .base import (
    DEFAULT_RETENTION,
    Claim,
    Entry,
    Record,
    RecordQuery,
    State,
    Store,
    key_problem,
    storable_text,
)

__all__ = ["PostgresStore"]

_COLUMNS = (
    "key",
    "state",
    "fingerprint",
    "attempts",
    "first_seen",
    "last_seen",
    "kind",
    "company_id",
    "body",
    "headers",
    "last_error",
    "token",
    "lease_expires",
    "verified_by",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    kind TEXT,
    company_id TEXT,
    body BYTEA NOT NULL,
    headers TEXT NOT NULL,
    last_error TEXT,
    token BIGINT NOT NULL,
    lease_expires DOUBLE PRECISION NOT NULL,
    verified_by TEXT
);
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS verified_by TEXT;
CREATE INDEX IF NOT EXISTS {index} ON {table} (last_seen)
"""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,50}$")
_PURGE_SECONDS = 300
_ATTEMPTS = 5  # a row deleted by purge between our INSERT and SELECT: look again


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


class PostgresStore(Store):
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
        super().__init__(retention=retention)
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
        self.table = table
        self._clock = clock
        self._schema_ready = False
        self._prepare_statements(table)

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
        try:
            return self._pool.get()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}: {exc}") from exc

    def _prepare_statements(self, table: str) -> None:
        ident = sql.Identifier(table)
        columns = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
        placeholders = sql.SQL(", ").join(sql.Placeholder() * len(_COLUMNS))
        self._sql_schema = sql.SQL(_SCHEMA).format(
            table=ident, index=sql.Identifier(f"{table}_last_seen")
        )
        self._sql_select = sql.SQL("SELECT {} FROM {}").format(columns, ident)
        self._sql_insert = sql.SQL(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (key) DO NOTHING RETURNING token"
        ).format(ident, columns, placeholders)
        self._sql_update = sql.SQL("UPDATE {} SET ({}) = ({}) WHERE key = %s").format(
            ident, columns, placeholders
        )
        self._sql_renew = sql.SQL(
            "UPDATE {} SET lease_expires = %s"
            " WHERE key = %s AND token = %s AND state = 'processing'"
        ).format(ident)
        self._sql_complete = sql.SQL(
            "UPDATE {} SET state = 'done', last_seen = %s, lease_expires = 0, last_error = NULL"
            " WHERE key = %s AND token = %s AND state = 'processing'"
        ).format(ident)
        self._sql_release = sql.SQL(
            "UPDATE {} SET state = 'failed', last_seen = %s, lease_expires = 0, last_error = %s"
            " WHERE key = %s AND token = %s AND state = 'processing'"
        ).format(ident)
        self._sql_defer = sql.SQL(
            "UPDATE {} SET state = 'queued', last_seen = %s, lease_expires = %s,"
            " last_error = %s WHERE key = %s AND token = %s AND state = 'processing'"
        ).format(ident)
        self._sql_due = sql.SQL(
            "SELECT key FROM {} WHERE state IN ('queued', 'processing')"
            " AND lease_expires <= %s ORDER BY lease_expires LIMIT %s"
        ).format(ident)
        self._sql_counts = sql.SQL("SELECT state, COUNT(*) FROM {} GROUP BY state").format(ident)
        self._sql_delete = sql.SQL(
            "DELETE FROM {} WHERE last_seen < %s AND NOT (state = 'processing'"
            " AND lease_expires > %s)"
        ).format(ident)

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
            conn.execute(self._sql_schema)
        self._schema_ready = True

    def create_schema(self) -> None:
        """Create the table and its index now (idempotent); otherwise the first call does."""
        self._schema_ready = False
        with self._conn():
            pass

    # --- the protocol ------------------------------------------------------------------------

    def claim(self, entry: Entry, *, lease: float, force: bool = False) -> Claim:
        entry = entry.storable()
        with self._conn() as conn:
            for _ in range(_ATTEMPTS):
                now = self._clock()
                claim, fresh = plan_claim(
                    None, entry, now=now, lease=lease, force=force, retention=self.retention
                )
                assert fresh is not None
                if conn.execute(self._sql_insert, record_to_row(fresh)).fetchone() is not None:
                    return claim
                with conn.transaction():
                    row = conn.execute(
                        self._sql_select + sql.SQL(" WHERE key = %s FOR UPDATE"), (entry.key,)
                    ).fetchone()
                    if row is None:
                        continue  # purged in between: insert again
                    claim, store = plan_claim(
                        record_from_row(row),
                        entry,
                        now=now,
                        lease=lease,
                        force=force,
                        retention=self.retention,
                    )
                    if store is not None:
                        conn.execute(self._sql_update, (*record_to_row(store), entry.key))
                    return claim
        raise StoreError(f"could not claim {entry.key!r}: the row kept disappearing")

    def _update_held(self, query: sql.Composed, key: str, token: int, *values: object) -> bool:
        if key_problem(key) is not None:
            return False  # never stored, so never held
        with self._conn() as conn:
            return conn.execute(query, (*values, key, token)).rowcount == 1

    def renew(self, key: str, token: int, *, lease: float) -> bool:
        return self._update_held(self._sql_renew, key, token, self._clock() + lease)

    def complete(self, key: str, token: int) -> bool:
        return self._update_held(self._sql_complete, key, token, self._clock())

    def release(self, key: str, token: int, *, error: str) -> bool:
        return self._update_held(self._sql_release, key, token, self._clock(), storable_text(error))

    def _decide(
        self, key: str, plan: Callable[[Record | None, float], tuple[Claim, Record | None]]
    ) -> Claim:
        """Decide on ``key``'s row under its lock (an absent row is locked by inserting none:
        ``plan`` must then answer with a record to insert, which loses to a concurrent one)."""
        with self._conn() as conn:
            for _ in range(_ATTEMPTS):
                with conn.transaction():
                    now = self._clock()
                    row = conn.execute(
                        self._sql_select + sql.SQL(" WHERE key = %s FOR UPDATE"), (key,)
                    ).fetchone()
                    claim, store = plan(None if row is None else record_from_row(row), now)
                    if store is None:
                        return claim
                    if row is not None:
                        conn.execute(self._sql_update, (*record_to_row(store), key))
                        return claim
                    if conn.execute(self._sql_insert, record_to_row(store)).fetchone():
                        return claim
                # another worker inserted the key meanwhile: decide again on its row
        raise StoreError(f"could not decide on {key!r}: the row kept changing")

    def enqueue(self, entry: Entry) -> Claim:
        entry = entry.storable()
        return self._decide(
            entry.key,
            lambda record, now: plan_enqueue(record, entry, now=now, retention=self.retention),
        )

    def take(self, key: str, *, lease: float) -> Claim:
        return self._decide(key, lambda record, now: plan_take(record, now=now, lease=lease))

    def defer(self, key: str, token: int, *, due: float, error: str) -> bool:
        return self._update_held(
            self._sql_defer, key, token, self._clock(), due, storable_text(error)
        )

    def due(self, *, older_than: float = 0.0, limit: int = 100) -> list[str]:
        with self._conn() as conn:
            rows = conn.execute(self._sql_due, (self._clock() - older_than, limit)).fetchall()
        return [str(row[0]) for row in rows]

    def park(self, entry: Entry, *, reason: str) -> None:
        entry, reason = entry.storable(), storable_text(reason) or ""
        with self._conn() as conn:
            for _ in range(_ATTEMPTS):
                now = self._clock()
                fresh = plan_park(None, entry, now=now, reason=reason)
                if conn.execute(self._sql_insert, record_to_row(fresh)).fetchone() is not None:
                    return
                with conn.transaction():
                    row = conn.execute(
                        self._sql_select + sql.SQL(" WHERE key = %s FOR UPDATE"), (entry.key,)
                    ).fetchone()
                    if row is None:
                        continue
                    parked = plan_park(record_from_row(row), entry, now=now, reason=reason)
                    conn.execute(self._sql_update, (*record_to_row(parked), entry.key))
                    return
        raise StoreError(f"could not park {entry.key!r}: the row kept disappearing")

    def get(self, key: str) -> Record | None:
        if key_problem(key) is not None:
            return None
        with self._conn() as conn:
            row = conn.execute(self._sql_select + sql.SQL(" WHERE key = %s"), (key,)).fetchone()
        return None if row is None else record_from_row(row)

    def _find(self, query: RecordQuery) -> list[Record]:
        clauses: list[sql.Composable] = []
        params: list[Any] = []
        if query.states:
            clauses.append(sql.SQL("state = ANY(%s)"))
            params.append([state.value for state in query.states])
        for column, value in (("kind", query.kind), ("company_id", query.company_id)):
            if value is not None:
                clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        if query.since is not None:
            clauses.append(sql.SQL("last_seen >= %s"))
            params.append(query.since)
        if query.before is not None:
            clauses.append(sql.SQL("last_seen < %s"))
            params.append(query.before)
        if query.cursor is not None:
            # Keys compare by code point (COLLATE "C"), as Python and the other stores do; the
            # bound on last_seen alone comes first, so the index on it starts the scan there.
            clauses.append(sql.SQL('last_seen <= %s AND (last_seen < %s OR key COLLATE "C" < %s)'))
            params.extend((query.cursor[0], *query.cursor))
        statement = self._sql_select
        if clauses:
            statement += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)
        statement += sql.SQL(' ORDER BY last_seen DESC, key COLLATE "C" DESC')
        if query.limit is not None:
            statement += sql.SQL(" LIMIT %s")
            params.append(query.limit)
        with self._conn() as conn:
            rows = conn.execute(statement, params).fetchall()
        return [record_from_row(row) for row in rows]

    def ping(self) -> None:
        with self._conn() as conn:
            conn.execute("SELECT 1")

    def counts(self) -> dict[State, int]:
        with self._conn() as conn:
            rows = conn.execute(self._sql_counts).fetchall()
        return {**dict.fromkeys(State, 0), **{State(state): int(n) for state, n in rows}}

    def purge(self, *, older_than: float | None = None) -> int:
        now = self._clock()
        cutoff = self._purge_cutoff(now, older_than)
        with self._conn() as conn, conn.transaction():
            # A purge after a long pause may delete many rows: longer than one delivery's
            # statement may take, still bounded.
            bound = f"{_PURGE_SECONDS}s"
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (bound,))
            return conn.execute(self._sql_delete, (cutoff, now)).rowcount

    def close(self) -> None:
        pool = self._pool.take()
        if pool is not None and self._owns_pool:
            pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore(table={self.table!r})"
