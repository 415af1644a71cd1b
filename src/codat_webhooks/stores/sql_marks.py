"""Ordering marks in SQLite and PostgreSQL: two tables beside the deliveries, moved in the
claim's (or enqueue's) own transaction.

``<table>_marks`` holds one :class:`~.marks.HighWater` per scope; ``<table>_verdicts`` one row
per delivery key that was stale or broke a status chain. A claim of an entry with a mark
writes its record and then, in the same transaction, :func:`judged` moves the mark. The common
cases (a newer dated event, a status change another key brings) are one upsert whose condition
is :func:`~.marks.judge`'s, written in SQL beside it (:data:`~.marks.ADVANCES_WHERE`,
:data:`~.marks.CHAIN_MOVES_WHERE`). Otherwise the mark's row is read under a lock (or inserted
only if absent, so of two first events of a scope exactly one writes it first),
:func:`~.marks.judge` decides, and the result is written. Two processes claiming two events of
one scope therefore serialise on the mark's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from . import machine, marks
from .marks import FRESH, HighWater, Mark, Verdict
from .records import ClaimStatus, decodes

if TYPE_CHECKING:
    from .history import HistoryEntry
    from .records import Claim
    from .sql import Dialect, Execute, SQLStore

__all__ = [
    "MarkStatements",
    "first_judged",
    "high_water",
    "judged",
    "recheck",
    "verdict",
    "verdicts",
]

_MARK_COLUMNS = "scope, at, key, status, gap, last_seen"
_VERDICT_COLUMNS = "key, stale, newer_key, newer_at, gap, last_seen"
_ATTEMPTS = 3


class MarkStatements:
    """The statements on the two ordering tables of ``table``, in one dialect."""

    def __init__(self, dialect: Dialect, table: str) -> None:
        p, lock, real = dialect.mark, dialect.lock, dialect.real
        m, v = f'"{table}_marks"', f'"{table}_verdicts"'
        six = ", ".join(p for _ in range(6))
        # The marks table has no index on last_seen: every move of a mark rewrites it, and
        # only a purge reads it, over one small row per scope (a connection, a company).
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {m} (scope TEXT PRIMARY KEY, at {real} NOT NULL,"
            f" key TEXT NOT NULL, status TEXT, gap INTEGER NOT NULL, last_seen {real} NOT NULL);\n"
            f"CREATE TABLE IF NOT EXISTS {v} (key TEXT PRIMARY KEY, stale INTEGER NOT NULL,"
            f" newer_key TEXT, newer_at {real}, gap INTEGER NOT NULL,"
            f" last_seen {real} NOT NULL);\n"
            f'CREATE INDEX IF NOT EXISTS "{table}_verdicts_last_seen" ON {v} (last_seen)'
        )
        self.unused_index = f"{table}_marks_last_seen"
        """Created by earlier versions; dropped when found (see the stores' schema setup)."""
        self.select_mark = f"SELECT {_MARK_COLUMNS} FROM {m} WHERE scope = {p}"  # noqa: S608
        self.select_mark_locked = self.select_mark + lock
        self.insert_mark = (
            f"INSERT INTO {m} ({_MARK_COLUMNS}) VALUES ({six})"  # noqa: S608
            " ON CONFLICT (scope) DO NOTHING"
        )
        moved = (
            f"INSERT INTO {m} ({_MARK_COLUMNS}) VALUES ({six}) ON CONFLICT (scope) DO UPDATE"  # noqa: S608
            " SET at = excluded.at, key = excluded.key, status = excluded.status,"
            " last_seen = excluded.last_seen, gap ="
        )
        # Each statement below is that upsert, finished with the value it gives gap.
        self.upsert_mark = f"{moved} excluded.gap"
        advances = marks.ADVANCES_WHERE.format(mark=m, cutoff=p)
        self.advance_mark = f"{moved} excluded.gap WHERE {advances} RETURNING scope"
        """A dated mark moved in one statement when :data:`~.marks.ADVANCES_WHERE` holds: the
        common case (a newer event) costs no read; a row back means it moved."""
        gap = marks.CHAIN_GAP.format(mark=m, cutoff=p, old=p)
        chained = marks.CHAIN_MOVES_WHERE.format(mark=m, cutoff=p)
        self.move_chain = f"{moved} {gap} WHERE {chained} RETURNING gap"
        """A status-chain mark moved in one statement unless the key holding it came again
        (:data:`~.marks.CHAIN_MOVES_WHERE`); the row back carries the move's ``gap``."""
        self.select_verdict = f"SELECT {_VERDICT_COLUMNS} FROM {v} WHERE key = {p}"  # noqa: S608
        self.select_verdicts = f"SELECT {_VERDICT_COLUMNS} FROM {v} WHERE key IN "  # noqa: S608
        """Followed by ``(p, p, ...)``: one placeholder per key."""
        self.upsert_verdict = (
            f"INSERT INTO {v} ({_VERDICT_COLUMNS}) VALUES ({six}) ON CONFLICT (key) DO UPDATE"  # noqa: S608
            " SET stale = excluded.stale, newer_key = excluded.newer_key,"
            " newer_at = excluded.newer_at, gap = excluded.gap, last_seen = excluded.last_seen"
        )
        self.purge = (
            f"DELETE FROM {m} WHERE last_seen < {p}",  # noqa: S608
            f"DELETE FROM {v} WHERE last_seen < {p}",  # noqa: S608
        )


def _mark_row(mark: HighWater) -> tuple[object, ...]:
    return (mark.scope, mark.at, mark.key, mark.status, int(mark.gap), mark.last_seen)


@decodes("an ordering mark")
def _mark_from(row: Sequence[Any]) -> HighWater:
    scope, at, key, status, gap, last_seen = row
    return HighWater(str(scope), float(at), str(key), status, bool(gap), float(last_seen))


def _verdict_row(key: str, verdict: Verdict, now: float) -> tuple[object, ...]:
    stale, newer_key, newer_at, gap = verdict
    return (key, int(stale), newer_key, newer_at, int(gap), now)


@decodes("an ordering verdict")
def _verdict_from(row: Sequence[Any]) -> Verdict:
    _, stale, newer_key, newer_at, gap, _ = row
    at = None if newer_at is None else float(newer_at)
    return Verdict(bool(stale), newer_key, at, bool(gap))


def first_judged(
    store: SQLStore,
    entry_key: str,
    mark: Mark,
    claim: Claim,
    row: Sequence[object],
    *,
    note: HistoryEntry | None = None,
    insert: str | None = None,
) -> Claim | None:
    """A key never seen (the common case): its first record (``row``) inserted only if absent,
    its history entry ``note`` appended and its mark judged, in one transaction; ``None`` if
    the key exists (the caller decides). ``insert``: a backend's own statement for ``row``
    (SQLite's carries the history entry in the row itself), else the shared one."""
    with store._locked() as execute:
        if execute(insert or store._sql.insert_new, row).rowcount != 1:
            return None
        if note is not None:
            store._note(execute, entry_key, note)
        return judged(store, execute, entry_key, mark, claim)


def judged(store: SQLStore, execute: Execute, entry_key: str, mark: Mark, claim: Claim) -> Claim:
    """``claim`` with its ``order``, the scope's mark moved: inside the claim's transaction."""
    if claim.status is not ClaimStatus.CLAIMED and claim.status is not ClaimStatus.QUEUED:
        return claim
    sql = store._marks_sql
    now = store._clock()
    if store._returning:
        verdict = _moved_at_once(execute, sql, entry_key, mark, now, now - store.retention)
        if verdict is not None:
            if verdict.notable:
                execute(sql.upsert_verdict, _verdict_row(entry_key, verdict, now))
            return machine.in_scope(claim, verdict)
    for _ in range(_ATTEMPTS):
        rows = execute(sql.select_mark_locked, (mark.scope,)).fetchall()
        current = _mark_from(rows[0]) if rows else None
        verdict, moved = marks.judge(current, mark, entry_key, now, store.retention)
        if moved is not None:
            if current is not None:
                execute(sql.upsert_mark, _mark_row(moved))
            elif execute(sql.insert_mark, _mark_row(moved)).rowcount != 1:
                continue  # another transaction wrote the scope's first mark: judge on it
        if verdict.notable:
            execute(sql.upsert_verdict, _verdict_row(entry_key, verdict, now))
        return machine.in_scope(claim, verdict)
    raise StoreError(f"could not judge the order of {entry_key!r}: its mark kept changing")


def _moved_at_once(
    execute: Execute, sql: MarkStatements, key: str, mark: Mark, now: float, cutoff: float
) -> Verdict | None:
    """The verdict of the common cases, the mark moved by one upsert with no read: a newer
    (or first) dated event, and a status change another key brings. ``None``: the statement
    changed nothing, and :func:`~.marks.judge` decides on the mark as read."""
    if mark.at is not None:
        dated = (mark.scope, mark.at, key, None, 0, now, cutoff)
        return FRESH if execute(sql.advance_mark, dated).fetchall() else None
    chained = (mark.scope, 0.0, key, mark.new_status, 0, now, cutoff, mark.old_status, cutoff)
    moved = execute(sql.move_chain, chained).fetchall()
    if not moved:
        return None
    return Verdict(gap=True) if moved[0][0] else FRESH


def recheck(store: SQLStore, key: str, mark: Mark) -> Verdict:
    """:meth:`Store.recheck` for the SQL stores: two plain reads, and a write (in a transaction
    of its own) only if the key is newly stale.

    A queued worker asks this before every run, so the reads take no write lock: on SQLite
    that lock is the whole file's. What they return is a snapshot either way, since a newer
    event may arrive the moment after; the verdict written is the one the worker acts on.
    """
    sql = store._marks_sql
    rows = store._rows(sql.select_mark, (mark.scope,))
    kept_rows = store._rows(sql.select_verdict, (key,))
    kept = _verdict_from(kept_rows[0]) if kept_rows else None
    verdict = marks.recheck(_mark_from(rows[0]) if rows else None, mark, key, kept)
    if verdict.notable and verdict != kept:
        with store._locked() as execute:
            execute(sql.upsert_verdict, _verdict_row(key, verdict, store._clock()))
    return verdict


def verdict(store: SQLStore, key: str) -> Verdict | None:
    rows = store._rows(store._marks_sql.select_verdict, (key,))
    return _verdict_from(rows[0]) if rows else None


def verdicts(store: SQLStore, keys: Sequence[str]) -> dict[str, Verdict]:
    """Many keys' verdicts in one query per 500 keys."""
    found: dict[str, Verdict] = {}
    mark = store._sql.dialect.mark
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        places = ", ".join(mark for _ in batch)
        for row in store._rows(f"{store._marks_sql.select_verdicts}({places})", batch):
            found[str(row[0])] = _verdict_from(row)
    return found


def high_water(store: SQLStore, scope: str) -> HighWater | None:
    rows = store._rows(store._marks_sql.select_mark, (scope,))
    return _mark_from(rows[0]) if rows else None
