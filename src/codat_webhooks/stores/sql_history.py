"""The history table of :class:`PostgresStore` (see :mod:`.history`), and of
:class:`SQLiteStore` for keys without a record (SQLite keeps the others in the record's row:
:mod:`.sqlite_history`).

A table of its own beside the records, ``<table>_history``, one row per entry, keyed by the
delivery key and the entry's number. An entry is appended in the transaction that makes the
state change it describes; the oldest rows past :data:`~.history.HISTORY_LIMIT` are deleted in
the same transaction, and a purge deletes a record's rows with the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .history import HISTORY_LIMIT, History, HistoryEntry
from .machine import PURGE_WHERE
from .records import decodes

Execute = Callable[[str, Sequence[object]], Any]
Row = tuple[object, ...]

__all__ = ["HistoryStatements", "append", "appended_number", "history_from_rows", "statements"]

_COLUMNS = ("at", "status", "outcome", "duration_ms", "error", "verified_by", "process")


class HistoryStatements:
    """The history statements for the records table ``table`` in one dialect."""

    def __init__(self, mark: str, real: str, table: str) -> None:
        p = mark
        h = f'"{table}_history"'
        t = f'"{table}"'
        # SQLite keeps a table without a rowid as one B-tree on its key: one page to write.
        layout = " WITHOUT ROWID" if p == "?" else ""
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {h} (key TEXT NOT NULL, seq INTEGER NOT NULL,"
            f" at {real} NOT NULL, status INTEGER, outcome TEXT NOT NULL,"
            f" duration_ms {real}, error TEXT, verified_by TEXT, process TEXT,"
            f" PRIMARY KEY (key, seq)){layout}"
        )
        values = ", ".join(p for _ in _COLUMNS)
        self.append = (
            f"INSERT INTO {h} (key, seq, {', '.join(_COLUMNS)})"  # noqa: S608 - constant names
            f" SELECT {p}, COALESCE(MAX(seq), 0) + 1, {values} FROM {h} WHERE key = {p}"
        )
        self.append_returning = f"{self.append} RETURNING seq"
        self.trim = f"DELETE FROM {h} WHERE key = {p} AND seq <= {p}"  # noqa: S608
        self.trim_unknown = (
            f"DELETE FROM {h} WHERE key = {p} AND seq <= "  # noqa: S608
            f"(SELECT MAX(seq) FROM {h} WHERE key = {p}) - {HISTORY_LIMIT}"
        )
        self.select = f"SELECT seq, {', '.join(_COLUMNS)} FROM {h} WHERE key = {p} ORDER BY seq"  # noqa: S608
        where = PURGE_WHERE.format(cutoff=p, now=p)
        self.purge = f"DELETE FROM {h} WHERE key IN (SELECT key FROM {t} WHERE {where})"  # noqa: S608
        self._h, self._values = h, values
        self._moved: dict[str, str] = {}

    def moved_and_appended(self, move: str) -> str:
        """``move`` (a fenced UPDATE) and the append of its entry as one statement, for a
        database whose UPDATE may sit in a ``WITH`` (PostgreSQL): no transaction to open, and
        one round trip. Returns the entry's number, or no row if the move was fenced out.
        Parameters: the move's, then the entry's fields."""
        statement = self._moved.get(move)
        if statement is None:
            h = self._h
            statement = self._moved[move] = (
                f"WITH moved AS ({move} RETURNING key) INSERT INTO {h}"  # noqa: S608
                f" (key, seq, {', '.join(_COLUMNS)}) SELECT moved.key,"
                f" COALESCE((SELECT MAX(seq) FROM {h} WHERE key = moved.key), 0) + 1,"
                f" {self._values} FROM moved RETURNING seq"
            )
        return statement


_CACHE: dict[tuple[str, str, str], HistoryStatements] = {}


def statements(mark: str, real: str, table: str) -> HistoryStatements:
    """The statements for ``table``, rendered once per process."""
    found = _CACHE.get((mark, real, table))
    if found is None:
        found = _CACHE[(mark, real, table)] = HistoryStatements(mark, real, table)
    return found


def append(
    execute: Execute, sql: HistoryStatements, key: str, entry: HistoryEntry, returning: bool
) -> None:
    """Append ``entry`` to ``key``'s history inside the caller's transaction, and trim it."""
    params = (key, *entry, key)
    if returning:
        seq = int(execute(sql.append_returning, params).fetchall()[0][0])
        if seq > HISTORY_LIMIT:
            execute(sql.trim, (key, seq - HISTORY_LIMIT))
    else:
        execute(sql.append, params)
        execute(sql.trim_unknown, (key, key))


@decodes("a history entry")
def history_from_rows(rows: Sequence[Row]) -> History:
    """The rows of ``select`` as a :class:`History`."""
    entries: list[HistoryEntry] = []
    first = 1
    for index, row in enumerate(rows):
        seq, at, status, outcome, duration_ms, error, verified_by, process = row
        if index == 0:
            first = int(seq)  # type: ignore[call-overload]
        entries.append(
            HistoryEntry(
                float(at),  # type: ignore[arg-type]
                None if status is None else int(status),  # type: ignore[call-overload]
                str(outcome),
                None if duration_ms is None else float(duration_ms),  # type: ignore[arg-type]
                _text(error),
                _text(verified_by),
                _text(process),
            )
        )
    return History(entries, first - 1)


@decodes("a history number")
def appended_number(rows: Sequence[Row]) -> int:
    """The number :meth:`HistoryStatements.moved_and_appended` returns for the entry it
    appended (0 when the move did not happen and nothing was appended)."""
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
