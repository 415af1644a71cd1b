"""The attempt history of :class:`SQLiteStore`, kept in the record's own row (see :mod:`.history`).

In SQLite every write transaction pays for each B-tree it changes, and a ``complete`` that also
appended to a history table of its own had to become a transaction of several statements where
an autocommit UPDATE had been enough. So SQLite keeps a key's entries in two columns of its
record: ``history``, a JSON array of entries oldest first (the newest
:data:`~.history.HISTORY_LIMIT` of them), and ``history_dropped``, how many older ones went. An
entry is written by the statement that makes the state change it describes: a first record
(a queued delivery's 202) is inserted with its entry, and a later one is appended with SQLite's
JSON functions. The entries go when the record is purged, with its row.

A key without a record (the 401s under :data:`~.history.UNAUTHORIZED_KEY`) still keeps its
entries in the table of :mod:`.sql_history`, as PostgreSQL does for every key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .history import HISTORY_LIMIT, History, HistoryEntry

__all__ = ["COLUMNS", "COLUMNS_SQL", "RowHistory", "combined", "encode", "history_from_row"]

COLUMNS = (("history", "TEXT"), ("history_dropped", "INTEGER NOT NULL DEFAULT 0"))
"""The columns the records table gains, added to a table made without them."""

COLUMNS_SQL = "".join(f", {name} {kind}" for name, kind in COLUMNS)
""":data:`COLUMNS` as a new table defines them."""


class RowHistory:
    """The statements that keep the history in the records table ``table``."""

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        """``columns``: the record's own columns, in the order of the rows written."""
        full = f"COALESCE(json_array_length(history), 0) >= {HISTORY_LIMIT}"
        kept = f"CASE WHEN {full} THEN json_remove(history, '$[0]')"
        kept += " ELSE COALESCE(history, '[]') END"
        self.sets = (
            f"history = json_insert({kept}, '$[#]', json(?)),"
            f" history_dropped = history_dropped + ({full})"
        )
        """What an UPDATE of the row sets to append one entry (its parameter: :func:`encode`),
        the oldest dropped and counted once the row holds the limit. Every expression reads the
        row as it was before the UPDATE, so the two agree."""
        t = f'"{table}"'
        self.append = f"UPDATE {t} SET {self.sets} WHERE key = ?"  # noqa: S608 - constant names
        self.select = f"SELECT history, history_dropped FROM {t} WHERE key = ?"  # noqa: S608
        values = ", ".join("?" for _ in columns)
        self.insert_new = (
            f"INSERT INTO {t} ({', '.join(columns)}, history)"  # noqa: S608
            f" VALUES ({values}, json_array(json(?))) ON CONFLICT (key) DO NOTHING"
        )
        """A first record (parameters: its row, then its entry's :func:`encode`) and its first
        history entry, only if the key is absent: one statement where an INSERT and an UPDATE
        of the row it just wrote were two."""


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode(entry: HistoryEntry) -> str:
    """An entry as the ``history`` column keeps it: its fields, in order, as a JSON array."""
    return _ENCODER.encode(entry)


def history_from_row(row: Sequence[object]) -> History:
    """The ``history`` and ``history_dropped`` of a row as a :class:`History`."""
    text, dropped = row
    entries = [] if text is None else [_decoded(item) for item in json.loads(str(text))]
    return History(entries, int(dropped or 0))  # type: ignore[call-overload]


def combined(older: History, newer: History) -> History:
    """Entries kept apart before the row's own ones (a key noted before its record existed),
    the newest :data:`~.history.HISTORY_LIMIT` of them."""
    if not older.entries and not older.dropped:
        return newer
    entries = older.entries + newer.entries
    extra = max(0, len(entries) - HISTORY_LIMIT)
    return History(entries[extra:], older.dropped + newer.dropped + extra)


def _decoded(item: list[object]) -> HistoryEntry:
    at, status, outcome, duration_ms, error, verified_by, process = item
    return HistoryEntry(
        float(at),  # type: ignore[arg-type]
        None if status is None else int(status),  # type: ignore[call-overload]
        str(outcome),
        None if duration_ms is None else float(duration_ms),  # type: ignore[arg-type]
        None if error is None else str(error),
        None if verified_by is None else str(verified_by),
        None if process is None else str(process),
    )
