"""Every SQL statement of :class:`SQLiteStore` and :class:`PostgresStore`, written once.

The two stores keep the same table and run the same statements; a :class:`Dialect` says how
each database spells the few things that differ (placeholders ``?`` or ``%s``, ``BLOB`` or
``BYTEA``, how keys compare), and :class:`Statements` renders them for one table. Each statement
performs a decision of :mod:`.machine`:

- ``insert_new`` writes :func:`machine.first_claim`'s record (or a first enqueue or park) only
  if the key is absent, so of two racing writers exactly one inserts;
- ``select_locked`` then ``upsert``: read a row under a lock, decide, write the decided record;
- :meth:`Statements.move` is :func:`machine.move` as one UPDATE, fenced on the token;
- ``take`` is :func:`machine.take`'s hand-over as one UPDATE, for a record that may be taken;
- ``purge`` and ``due`` select what :func:`machine.purgeable` and :func:`machine.is_due` do.

:class:`SQLStore` performs the protocol with them for both stores; each store brings only its
connections, its transactions and its own way of waiting.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, TypeVar

from ..errors import StoreError
from . import machine, sql_history, sql_marks
from .base import Claim, ClaimStatus, Entry, Store
from .history import HISTORY_LIMIT, History, HistoryEntry, answered
from .marks import HighWater, Mark, Verdict
from .records import Record, RecordQuery, State, decode_headers, decodes, encode_headers

__all__ = [
    "COLUMNS",
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "Row",
    "SQLStore",
    "Statements",
    "move_params",
    "record_from_row",
    "record_to_row",
    "take_params",
]

Row = tuple[object, ...]

COLUMNS = Record._fields
"""The table's columns, in the order of :class:`Record`'s fields (and of every row read)."""


class Dialect(NamedTuple):
    """How one database spells what the statements need."""

    mark: str
    """A parameter placeholder."""
    blob: str
    real: str
    big: str
    """The type of the fencing token, which only grows."""
    collate: str
    """Appended to ``key`` where keys are ordered, so they compare by code point."""
    lock: str
    """Appended to the SELECT that reads a row to decide on it."""


SQLITE = Dialect("?", "BLOB", "REAL", "INTEGER", "", "")
"""SQLite: ``BEGIN IMMEDIATE`` has taken the write lock before the read, so no row lock."""

POSTGRES = Dialect("%s", "BYTEA", "DOUBLE PRECISION", "BIGINT", ' COLLATE "C"', " FOR UPDATE")

_HELD = "key = {p} AND token = {p} AND state = 'processing'"
"""The record a move may change: still ``PROCESSING`` under the caller's token."""


class Statements:
    """The statements for one table in one dialect, rendered once."""

    def __init__(self, dialect: Dialect, table: str, more_columns: str = "") -> None:
        """``more_columns``: the definitions of columns one store alone keeps in the table."""
        self.dialect = dialect
        p = dialect.mark
        t = f'"{table}"'
        columns = ", ".join(COLUMNS)
        values = ", ".join(p for _ in COLUMNS)
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, state TEXT NOT NULL,"
            " fingerprint TEXT NOT NULL, attempts INTEGER NOT NULL,"
            f" first_seen {dialect.real} NOT NULL, last_seen {dialect.real} NOT NULL,"
            f" kind TEXT, company_id TEXT, body {dialect.blob} NOT NULL, headers TEXT NOT NULL,"
            f" last_error TEXT, token {dialect.big} NOT NULL,"
            f" lease_expires {dialect.real} NOT NULL, verified_by TEXT{more_columns});\n"
            f'CREATE INDEX IF NOT EXISTS "{table}_last_seen" ON {t} (last_seen)'
        )
        # SQLite's table has had it since queued dispatch; PostgreSQL's never had it, and
        # building it on a large table at start-up would hold its writes meanwhile.
        self.due_index = (
            f'CREATE INDEX IF NOT EXISTS "{table}_due" ON {t} (lease_expires)'
            " WHERE state IN ('queued', 'processing')"
        )
        self.select = f"SELECT {columns} FROM {t}"  # noqa: S608 - constant columns, checked table
        self.select_one = f"{self.select} WHERE key = {p}"
        self.select_locked = f"{self.select_one}{dialect.lock}"
        self.insert_new = (
            f"INSERT INTO {t} ({columns}) VALUES ({values}) ON CONFLICT (key) DO NOTHING"  # noqa: S608
        )
        updates = ", ".join(f"{column} = excluded.{column}" for column in COLUMNS[1:])
        self.upsert = (
            f"INSERT INTO {t} ({columns}) VALUES ({values})"  # noqa: S608
            f" ON CONFLICT (key) DO UPDATE SET {updates}"
        )
        # machine._hand_over for a record take may hand over: one statement, no read.
        self.take = (
            f"UPDATE {t} SET state = 'processing', attempts = attempts + 1, last_seen = {p},"  # noqa: S608
            f" token = token + 1, lease_expires = {p} WHERE key = {p} AND (state = 'queued'"
            f" OR (state = 'processing' AND lease_expires <= {p})) RETURNING {columns}"
        )
        self.due = (
            f"SELECT key FROM {t} WHERE state IN ('queued', 'processing')"  # noqa: S608
            f" AND lease_expires <= {p} ORDER BY lease_expires LIMIT {p}"
        )
        self.counts = f"SELECT state, COUNT(*) FROM {t} GROUP BY state"  # noqa: S608
        where = machine.PURGE_WHERE.format(cutoff=p, now=p)
        self.purge = f"DELETE FROM {t} WHERE {where}"  # noqa: S608
        self._table = t
        self.table_name = table
        self._moves: dict[tuple[str, ...], str] = {}

    def move(self, change: machine.Move, also: str = "") -> str:
        """The fenced UPDATE that writes ``change``; its parameters are :func:`move_params`.
        ``also`` is more of the row to set, with parameters between the move's and the key's."""
        fields = (*change.changes, also)
        statement = self._moves.get(fields)
        if statement is None:
            p = self.dialect.mark
            sets = ", ".join(f"{field} = {p}" for field in ("state", *change.changes))
            held = _HELD.format(p=p)
            more = f", {also}" if also else ""
            statement = f"UPDATE {self._table} SET {sets}{more} WHERE {held}"  # noqa: S608
            self._moves[fields] = statement
        return statement

    def find(self, query: RecordQuery) -> tuple[str, list[object]]:
        """The SELECT of :meth:`Store.find` and its parameters: filters, order and page."""
        p, collate = self.dialect.mark, self.dialect.collate
        clauses: list[str] = []
        params: list[object] = []
        if query.states:
            clauses.append(f"state IN ({', '.join(p for _ in query.states)})")
            params.extend(state.value for state in query.states)
        for column, value in (("kind", query.kind), ("company_id", query.company_id)):
            if value is not None:
                clauses.append(f"{column} = {p}")
                params.append(value)
        if query.since is not None:
            clauses.append(f"last_seen >= {p}")
            params.append(query.since)
        if query.before is not None:
            clauses.append(f"last_seen < {p}")
            params.append(query.before)
        if query.cursor is not None:
            # The bound on last_seen alone first, so the index on it starts the scan there.
            clauses.append(f"last_seen <= {p} AND (last_seen < {p} OR key{collate} < {p})")
            params.extend((query.cursor[0], *query.cursor))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        statement = f"{self.select}{where} ORDER BY last_seen DESC, key{collate} DESC"
        if query.limit is not None:
            statement += f" LIMIT {p}"
            params.append(query.limit)
        return statement, params


def move_params(
    key: str, token: int, change: machine.Move, also: tuple[object, ...] = ()
) -> tuple[object, ...]:
    """The parameters of :meth:`Statements.move` for ``change`` of ``key`` held by ``token``."""
    return (change.state.value, *change.changes.values(), *also, key, token)


def take_params(key: str, now: float, lease: float) -> tuple[object, ...]:
    return (now, now + lease, key, now)


@decodes("a delivery record")
def record_from_row(row: Row) -> Record:
    """A record from a row in :data:`COLUMNS` order (another shape: a :class:`StoreError`)."""
    (key, state, fingerprint, attempts, first_seen, last_seen, kind, company_id, body,
     headers, last_error, token, lease_expires, verified_by) = row  # fmt: skip
    return Record(
        key=_text(key),
        state=State(state),
        fingerprint=_text(fingerprint),
        attempts=int(attempts),  # type: ignore[call-overload]
        first_seen=float(first_seen),  # type: ignore[arg-type]
        last_seen=float(last_seen),  # type: ignore[arg-type]
        kind=None if kind is None else _text(kind),
        company_id=None if company_id is None else _text(company_id),
        body=bytes(body),  # type: ignore[call-overload]
        headers=decode_headers(_text(headers)),
        last_error=None if last_error is None else _text(last_error),
        token=int(token),  # type: ignore[call-overload]
        lease_expires=float(lease_expires),  # type: ignore[arg-type]
        verified_by=None if verified_by is None else _text(verified_by),
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def record_to_row(record: Record) -> Row:
    """``record`` as the parameters of ``insert_new`` and ``upsert``."""
    return (
        record.key,
        record.state.value,
        record.fingerprint,
        record.attempts,
        record.first_seen,
        record.last_seen,
        record.kind,
        record.company_id,
        record.body,
        encode_headers(record.headers),
        record.last_error,
        record.token,
        record.lease_expires,
        record.verified_by,
    )


Answer = TypeVar("Answer")
Execute = Callable[[str, Sequence[object]], Any]
"""A connection's ``execute``: returns a cursor with ``fetchall`` and ``rowcount``."""

_ATTEMPTS = 5
"""How often :meth:`SQLStore._decide` looks again at a row another writer inserted meanwhile."""


class SQLStore(Store):
    """The protocol over :class:`Statements`, for a backend that can run them.

    A backend provides :meth:`_rows` and :meth:`_count` (one statement in a transaction of its
    own) and :meth:`_locked` (a transaction that serialises deciders on a key).
    """

    _sql: Statements
    _marks_sql: sql_marks.MarkStatements
    """The ordering tables' statements (:mod:`.sql_marks`)."""
    _returning: bool = True
    """Whether ``UPDATE ... RETURNING`` works (SQLite before 3.35 has none)."""
    _update_in_with: bool = False
    """Whether an UPDATE may sit in a ``WITH`` (PostgreSQL), so a move and its history entry
    are one statement (see :meth:`.sql_history.HistoryStatements.moved_and_appended`)."""

    @abc.abstractmethod
    def _rows(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """Every row ``statement`` returns, in a transaction of its own."""

    @abc.abstractmethod
    def _count(self, statement: str, params: Sequence[object] = ()) -> int:
        """How many rows ``statement`` changed, in a transaction of its own."""

    @abc.abstractmethod
    def _locked(self) -> AbstractContextManager[Execute]:
        """A transaction in which a row read with ``select_locked`` stays ours until it ends."""

    def _decide(
        self,
        key: str,
        plan: Callable[[Record | None, float], tuple[Answer, Record | None]],
        noted: Callable[[Answer, float], HistoryEntry | None] | None = None,
        also: Callable[[Execute, Answer], Answer] | None = None,
    ) -> tuple[Answer, Record | None]:
        """Read ``key``'s row under the lock, decide with ``plan`` and write what it decided,
        with the history entry ``noted`` makes of the answer, if any.

        An absent row cannot be locked, so its record is inserted only if still absent; if
        another writer inserted it meanwhile, the decision is made again on that row.
        ``also`` runs after a write, in the same transaction (the ordering marks do).
        """
        for _ in range(_ATTEMPTS):
            with self._locked() as execute:
                rows = execute(self._sql.select_locked, (key,)).fetchall()
                now = self._clock()
                answer, decided = plan(record_from_row(rows[0]) if rows else None, now)
                note = None if noted is None else noted(answer, now)
                if decided is None:
                    if note is not None and rows:
                        self._note(execute, key, note)
                    return answer, None
                if rows:
                    execute(self._sql.upsert, record_to_row(decided))
                    if note is not None:
                        self._note(execute, key, note)
                    return (answer if also is None else also(execute, answer)), decided
                if execute(self._sql.insert_new, record_to_row(decided)).rowcount == 1:
                    if note is not None:
                        self._note(execute, key, note)
                    return (answer if also is None else also(execute, answer)), decided
        raise StoreError(f"could not decide on {key!r}: the row kept changing")

    # --- the history table beside the records (see .history and .sql_history) ---------------

    @property
    def _history_sql(self) -> sql_history.HistoryStatements:
        dialect = self._sql.dialect
        return sql_history.statements(dialect.mark, dialect.real, self._sql.table_name)

    def _note(self, execute: Execute, key: str, entry: HistoryEntry) -> None:
        """Append ``entry`` to ``key``'s history in the caller's transaction."""
        sql_history.append(execute, self._history_sql, key, entry, self._returning)

    def _note_only(self, key: str, entry: HistoryEntry) -> None:
        with self._locked() as execute:
            self._note(execute, key, entry)

    def _history(self, key: str) -> History:
        return sql_history.history_from_rows(self._rows(self._history_sql.select, (key,)))

    def _insert_new(self, record: Record) -> bool:
        """Write a first record in one statement, no read: ``False`` if the key exists."""
        return self._count(self._sql.insert_new, record_to_row(record)) == 1

    # --- the protocol ------------------------------------------------------------------------

    def _claim(
        self, entry: Entry, *, lease: float, force: bool, attempt: HistoryEntry | None = None
    ) -> Claim:
        # Most deliveries carry a key never seen: one INSERT, which exactly one of two racing
        # writers wins; the other (and any key already known) reads, decides and writes. A
        # first claim is CLAIMED: its history entry is written when the hooks are done.
        claim, fresh = machine.first_claim(entry, self._clock(), lease)
        first = self._first(entry, claim, fresh, None)
        if first is not None:
            return first
        retention = self.retention
        return self._decide(
            entry.key,
            lambda record, now: machine.claim(
                record, entry, now=now, lease=lease, force=force, retention=retention
            ),
            self._noting(attempt),
            self._judging(entry),
        )[0]

    def _enqueue(self, entry: Entry, *, attempt: HistoryEntry | None = None) -> Claim:
        retention = self.retention
        now = self._clock()
        claim, fresh = machine.enqueue(None, entry, now=now, retention=retention)
        if fresh is not None:
            first = self._first(entry, claim, fresh, answered(attempt, claim.status, now))
            if first is not None:
                return first
        return self._decide(
            entry.key,
            lambda record, now: machine.enqueue(record, entry, now=now, retention=retention),
            self._noting(attempt),
            self._judging(entry),
        )[0]

    def _first(
        self, entry: Entry, claim: Claim, fresh: Record, note: HistoryEntry | None
    ) -> Claim | None:
        """A key never seen: its first record inserted only if absent, with its history entry
        and its scope's mark in the same transaction; ``None`` if the key exists."""
        if entry.mark is not None:
            row = record_to_row(fresh)
            return sql_marks.first_judged(self, entry.key, entry.mark, claim, row, note=note)
        if note is None:
            return claim if self._insert_new(fresh) else None
        with self._locked() as execute:
            if execute(self._sql.insert_new, record_to_row(fresh)).rowcount != 1:
                return None
            self._note(execute, entry.key, note)
            return claim

    @staticmethod
    def _noting(
        attempt: HistoryEntry | None,
    ) -> Callable[[Claim, float], HistoryEntry | None] | None:
        """The entry an answer adds to the key's history, from ``attempt``'s template."""
        if attempt is None:
            return None
        return lambda claim, now: answered(attempt, claim.status, now)

    def _judging(self, entry: Entry) -> Callable[[Execute, Claim], Claim] | None:
        """A scoped entry's mark, judged in the transaction of the claim or enqueue."""
        mark = entry.mark
        if mark is None:
            return None
        return lambda execute, claim: sql_marks.judged(self, execute, entry.key, mark, claim)

    def _recheck(self, key: str, mark: Mark) -> Verdict:
        return sql_marks.recheck(self, key, mark)

    def _verdict(self, key: str) -> Verdict | None:
        return sql_marks.verdict(self, key)

    def _verdicts_of(self, keys: Sequence[str]) -> dict[str, Verdict]:
        return sql_marks.verdicts(self, keys)

    def _high_water(self, scope: str) -> HighWater | None:
        return sql_marks.high_water(self, scope)

    def _purge_marks(self, cutoff: float) -> None:
        """Marks and verdicts last written before ``cutoff`` go with the records."""
        for statement in self._marks_sql.purge:
            self._count(statement, (cutoff,))

    def _take(self, key: str, *, lease: float) -> Claim:
        return self._take_record(key, lease=lease)[0]

    def _take_record(self, key: str, *, lease: float) -> tuple[Claim, Record | None]:
        # A key a worker may run is one UPDATE returning the row: claim and read in one;
        # anything else (held, done, unknown) is decided on the row.
        if self._returning:
            rows = self._rows(self._sql.take, take_params(key, self._clock(), lease))
            if rows:
                record = record_from_row(rows[0])
                return Claim(ClaimStatus.CLAIMED, record.token, record.attempts), record
        return self._decide(key, lambda record, now: machine.take(record, now=now, lease=lease))

    def _move(self, key: str, token: int, change: machine.Move) -> bool:
        if change.attempt is None:
            return self._count(self._sql.move(change), move_params(key, token, change)) == 1
        if self._update_in_with:
            try:
                return self._moved_and_appended(key, token, change, change.attempt)
            except StoreError as exc:
                if not self._numbered_meanwhile(exc):
                    raise
            # An answer noted while this statement waited for the row took the entry's number
            # (the statement's snapshot is older): do it again in two statements.
        with self._locked() as execute:  # the move and its history entry in one transaction
            moved = execute(self._sql.move(change), move_params(key, token, change)).rowcount
            if moved == 1:
                self._note(execute, key, change.attempt)
            return bool(moved == 1)

    def _moved_and_appended(
        self, key: str, token: int, change: machine.Move, attempt: HistoryEntry
    ) -> bool:
        statement = self._history_sql.moved_and_appended(self._sql.move(change))
        rows = self._rows(statement, (*move_params(key, token, change), *attempt))
        seq = sql_history.appended_number(rows)
        if seq > HISTORY_LIMIT:  # trimmed apart: a crash here leaves one entry too many
            self._count(self._history_sql.trim, (key, seq - HISTORY_LIMIT))
        return bool(rows)

    def _numbered_meanwhile(self, exc: StoreError) -> bool:
        """Whether ``exc`` is a history entry's number taken by a concurrent writer."""
        return False

    def _park(self, entry: Entry, *, reason: str, attempt: HistoryEntry | None = None) -> bool:
        def plan(record: Record | None, now: float) -> tuple[bool, Record | None]:
            parked = machine.park(record, entry, now=now, reason=reason)
            return parked is not None, parked

        def noted(held: bool, _: float) -> HistoryEntry | None:
            return attempt if held else None  # another body's history is not this one's

        held, _ = self._decide(entry.key, plan, noted)
        return held

    def _get(self, key: str) -> Record | None:
        rows = self._rows(self._sql.select_one, (key,))
        return record_from_row(rows[0]) if rows else None

    def _find(self, query: RecordQuery) -> list[Record]:
        statement, params = self._sql.find(query)
        return [record_from_row(row) for row in self._rows(statement, params)]

    def due(self, *, older_than: float = 0.0, limit: int = 100) -> list[str]:
        rows = self._rows(self._sql.due, (self._clock() - older_than, limit))
        return [str(row[0]) for row in rows]

    def counts(self) -> dict[State, int]:
        rows = self._rows(self._sql.counts)
        return {**dict.fromkeys(State, 0), **{State(state): int(n) for state, n in rows}}  # type: ignore[call-overload]

    def purge(self, *, older_than: float | None = None) -> int:
        now = self._clock()
        params = (self._purge_cutoff(now, older_than), now)
        self._purge_marks(params[0])
        with self._locked() as execute:  # a record and its history go together
            execute(self._history_sql.purge, params)
            return int(execute(self._sql.purge, params).rowcount)
