"""Where SQLiteStore keeps a key's history: in the record's row, written by the same statement
as the state change, so a move with an entry stays one autocommit UPDATE."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from codat_webhooks.stores import ClaimStatus, Entry, SQLiteStore
from codat_webhooks.stores.history import HISTORY_LIMIT, HistoryEntry
from codat_webhooks.stores.marks import FRESH, Mark

LEASE = 60.0


def ended(at: float, status: int | None, outcome: str, error: str | None = None) -> HistoryEntry:
    return HistoryEntry(at, status, outcome, 12.5, error, "authorization-1", "host:1")


def test_a_move_and_its_entry_are_one_autocommit_update(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    claim = store.claim(Entry("k", "f" * 64, body=b"{}"), lease=LEASE)
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    failed = ended(1.5, 503, "failed", "downstream said \u00e9\x00")
    assert store.release("k", claim.token, error="E", attempt=failed)
    again = store.claim(Entry("k", "f" * 64, body=b"{}"), lease=LEASE, force=True)
    statements.clear()
    done = ended(2.0 / 3.0, 200, "processed")
    assert store.complete("k", again.token, attempt=done)
    assert [sql.split()[:2] for sql in statements] == [["UPDATE", '"deliveries"']]
    assert not store.complete("k", again.token, attempt=done)  # fenced: nothing appended
    kept = store.kept_history("k")
    store.close()
    assert kept.entries == [failed._replace(error="downstream said \u00e9\ufffd"), done]
    assert kept.dropped == 0


def test_the_row_keeps_the_newest_entries_and_counts_the_rest(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    entry = Entry("k", "f" * 64)
    for n in range(HISTORY_LIMIT + 3):
        claim = store.claim(entry, lease=LEASE, force=True)
        assert store.release("k", claim.token, error="E", attempt=ended(float(n), 503, "failed"))
    conn = sqlite3.connect(tmp_path / "db.sqlite3")
    length, dropped = conn.execute(
        "SELECT json_array_length(history), history_dropped FROM deliveries WHERE key = 'k'"
    ).fetchone()
    apart = conn.execute("SELECT COUNT(*) FROM deliveries_history").fetchone()
    conn.close()
    kept = store.kept_history("k")
    assert (length, dropped, apart) == (HISTORY_LIMIT, 3, (0,))
    assert [item.at for item in kept.entries] == [float(n) for n in range(3, HISTORY_LIMIT + 3)]
    assert kept.dropped == 3
    assert store.purge(older_than=-1.0) == 1  # the history goes with its row
    assert store.kept_history("k").entries == []
    store.close()


def test_a_file_with_the_history_apart_gains_the_columns_and_keeps_its_entries(
    tmp_path: Path,
) -> None:
    """A file made while every entry had a row of its own in ``deliveries_history``."""
    now = time.time()
    old = sqlite3.connect(tmp_path / "db.sqlite3")
    old.execute(
        "CREATE TABLE deliveries (key TEXT PRIMARY KEY, state TEXT NOT NULL, fingerprint TEXT"
        " NOT NULL, attempts INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT"
        " NULL, kind TEXT, company_id TEXT, body BLOB NOT NULL, headers TEXT NOT NULL,"
        " last_error TEXT, token INTEGER NOT NULL, lease_expires REAL NOT NULL,"
        " verified_by TEXT)"
    )
    old.execute(
        "CREATE TABLE deliveries_history (key TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT"
        " NULL, status INTEGER, outcome TEXT NOT NULL, duration_ms REAL, error TEXT,"
        " verified_by TEXT, process TEXT, PRIMARY KEY (key, seq)) WITHOUT ROWID"
    )
    old.execute(
        "INSERT INTO deliveries VALUES ('k', 'failed', ?, 1, ?, ?, NULL, NULL, x'7b7d',"
        " '[]', 'E', 1, 0, NULL)",
        ("f" * 64, now, now),
    )
    old.execute(
        "INSERT INTO deliveries_history VALUES ('k', 4, 1.0, 503, 'failed', 12.5, 'E',"
        " 'authorization-1', 'host:1')"
    )
    old.commit()
    old.close()
    store = SQLiteStore(tmp_path / "db.sqlite3")
    claim = store.claim(Entry("k", "f" * 64), lease=LEASE)
    assert claim.status is ClaimStatus.CLAIMED
    assert store.complete("k", claim.token, attempt=ended(2.0, 200, "processed"))
    kept = store.kept_history("k")
    assert kept.entries == [ended(1.0, 503, "failed", "E"), ended(2.0, 200, "processed")]
    assert kept.dropped == 3
    assert store.purge(older_than=-1.0) == 1
    assert store.kept_history("k").entries == []
    store.close()


def test_a_first_queued_record_is_inserted_with_its_entry(tmp_path: Path) -> None:
    """A queued delivery's first record and its 202 are one INSERT, not an INSERT and an
    UPDATE of the row it just wrote."""
    store = SQLiteStore(tmp_path / "db.sqlite3")
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    template = ended(0.0, None, "")
    assert store.enqueue(Entry("k", "f" * 64, body=b"{}"), attempt=template).status is (
        ClaimStatus.QUEUED
    )
    assert [sql.split()[:3] for sql in statements] == [["INSERT", "INTO", '"deliveries"']]
    assert store.enqueue(Entry("k", "f" * 64, body=b"{}"), attempt=template).status is (
        ClaimStatus.DUPLICATE
    )
    kept = store.kept_history("k")
    store.close()
    assert [(item.status, item.outcome) for item in kept.entries] == [
        (202, "queued"),
        (200, "duplicate"),
    ]
    assert kept.dropped == 0


def test_a_first_scoped_record_and_its_entry_are_one_insert_in_the_marks_transaction(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    entry = Entry("k", "f" * 64, body=b"{}", mark=Mark("connection:c", 10.0))
    claim = store.enqueue(entry, attempt=ended(0.0, None, ""))
    store._connection().set_trace_callback(None)
    kept = store.kept_history("k")
    store.close()
    assert (claim.status, claim.order) == (ClaimStatus.QUEUED, FRESH)
    assert (statements[0], statements[-1]) == ("BEGIN IMMEDIATE", "COMMIT")
    assert [sql for sql in statements if '"deliveries"' in sql.split()[:3]] == [statements[1]]
    assert statements[1].startswith('INSERT INTO "deliveries"')
    assert [(item.status, item.outcome) for item in kept.entries] == [(202, "queued")]


def test_a_workers_recheck_of_an_in_order_key_reads_and_writes_nothing(tmp_path: Path) -> None:
    """A queued worker rechecks its key's order before every run: on SQLite a write lock is
    the whole file's, so an answer that changes nothing must not take it."""
    store = SQLiteStore(tmp_path / "db.sqlite3")
    scope = "connection:company-a:connection-1"
    older = Entry("old", "a" * 64, body=b"{}", mark=Mark(scope, 100.0, None, None))
    newer = Entry("new", "b" * 64, body=b"{}", mark=Mark(scope, 200.0, None, None))
    store.enqueue(older)
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    assert older.mark is not None
    assert newer.mark is not None
    assert store.recheck("old", older.mark) == FRESH
    assert [sql.split()[0] for sql in statements] == ["SELECT", "SELECT"]
    store.enqueue(newer)
    statements.clear()
    stale = store.recheck("old", older.mark)  # newly stale: its verdict is written, once
    assert stale.stale
    assert stale.newer_key == "new"
    assert "BEGIN" in [sql.split()[0] for sql in statements]
    statements.clear()
    assert store.recheck("old", older.mark) == stale
    assert [sql.split()[0] for sql in statements] == ["SELECT", "SELECT"]
    store.close()
