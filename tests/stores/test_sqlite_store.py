"""What SQLiteStore does that the contract suite cannot see: how it writes and how it waits."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from codat_webhooks.errors import StoreError
from codat_webhooks.stores import ClaimStatus, Entry, SQLiteStore
from codat_webhooks.stores import sqlite as sqlite_store
from codat_webhooks.stores.marks import Mark


def test_a_new_key_is_claimed_by_one_statement_and_completed_by_another(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    claim = store.claim(Entry("new-key", "f" * 64, body=b"{}"), lease=60)
    assert store.complete("new-key", claim.token)
    store.close()
    assert claim.status is ClaimStatus.CLAIMED
    assert [sql.split()[:3] for sql in statements] == [
        ["INSERT", "INTO", '"deliveries"'],
        ["UPDATE", '"deliveries"', "SET"],
    ]
    assert statements[0].endswith("ON CONFLICT (key) DO NOTHING")


def test_a_known_key_is_decided_under_the_write_lock(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    entry = Entry("known-key", "f" * 64)
    store.complete("known-key", store.claim(entry, lease=60).token)
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    assert store.claim(entry, lease=60).status is ClaimStatus.DUPLICATE
    store.close()
    assert [sql.split()[0] for sql in statements] == [
        "INSERT",
        "BEGIN",
        "SELECT",
        "INSERT",
        "COMMIT",
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (Mark("connection:c:1", 100.0), Mark("connection:c:1", 200.0)),  # a newer event
        (Mark("dc:c:1", None, "PendingAuth", "Linked"), Mark("dc:c:1", None, "Linked", "Unlinked")),
    ],
    ids=["dated", "status-chain"],
)
def test_a_scoped_claim_moves_its_mark_without_reading_it(
    tmp_path: Path, first: Mark, second: Mark
) -> None:
    """The common cases: the record inserted and the mark moved by one upsert each."""
    store = SQLiteStore(tmp_path / "db.sqlite3")
    store.complete("one", store.claim(Entry("one", "a" * 64, mark=first), lease=60).token)
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    claim = store.claim(Entry("two", "b" * 64, mark=second), lease=60)
    store.close()
    assert claim.status is ClaimStatus.CLAIMED
    assert [sql.split()[:3] for sql in statements] == [
        ["BEGIN", "IMMEDIATE"],
        ["INSERT", "INTO", '"deliveries"'],
        ["INSERT", "INTO", '"deliveries_marks"'],
        ["COMMIT"],
    ]


def test_a_write_waits_in_short_steps_while_another_connection_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    blocker = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the store's only way to wait: count, then free the lock
        waits.append(seconds)
        if len(waits) == 10:
            blocker.execute("ROLLBACK")

    monkeypatch.setattr(time, "sleep", sleep)
    claim = store.claim(Entry("k", "f" * 64), lease=60)
    store.close()
    blocker.close()
    assert claim.status is ClaimStatus.CLAIMED
    assert len(waits) == 10
    assert waits[0] == sqlite_store._FIRST_WAIT < 1e-4  # SQLite's own handler sleeps 1 ms first
    assert waits == sorted(waits)
    assert max(waits) == sqlite_store._LONGEST_WAIT


def test_threads_of_one_process_take_turns_instead_of_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queued web process writes from its request thread and four workers at once."""
    store = SQLiteStore(tmp_path / "db.sqlite3")
    polls: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if threading.current_thread() is not threading.main_thread():
            polls.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    start = threading.Barrier(5)

    def deliver(n: int) -> None:
        start.wait()
        for i in range(60):
            key = f"t{n}-{i}"
            claim = store.claim(Entry(key, "f" * 64, body=b"{}"), lease=60)
            assert store.complete(key, claim.token)
            assert store.take(key, lease=60).status is ClaimStatus.DUPLICATE

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = store.counts()
    store.close()
    assert sum(done.values()) == 300
    assert polls == []


def _free_for_another_thread(store: SQLiteStore) -> bool:
    free: list[bool] = []

    def look() -> None:
        free.append(store._writer.acquire(blocking=False))
        if free[0]:
            store._writer.release()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    return free == [True]


def test_a_failed_write_lets_the_other_threads_write(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3", timeout=0.5)
    store.close()
    with pytest.raises(StoreError):
        store.claim(Entry("k", "f" * 64), lease=60)
    with pytest.raises(StoreError):
        store.ping()  # a transaction this time
    assert _free_for_another_thread(store)


def test_a_transaction_that_raises_is_rolled_back_and_lets_the_lock_go(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3", timeout=0.5)

    def a_bug() -> None:
        with store._locked() as execute:
            execute("INSERT INTO deliveries_marks VALUES ('s', 1.0, 'k', NULL, 0, 1.0)", ())
            raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        a_bug()
    with pytest.raises(StoreError, match="no such table"), store._locked() as execute:
        execute("INSERT INTO nowhere VALUES (1)", ())
    assert _free_for_another_thread(store)
    assert store.claim(Entry("k", "f" * 64), lease=60).status is ClaimStatus.CLAIMED
    assert store.high_water("s") is None  # the first transaction left nothing behind
    store.close()


def test_a_child_forked_while_a_thread_holds_the_process_lock_can_write(tmp_path: Path) -> None:
    """gunicorn --preload: a worker is forked while a thread of the master is about to write
    (it holds the process's lock, not yet SQLite's: forking inside SQLite's own lock is not
    something a child can recover from, with or without this store)."""
    store = SQLiteStore(tmp_path / "db.sqlite3", timeout=2.0)
    held, done = threading.Event(), threading.Event()

    def about_to_write() -> None:
        with store._writer:
            held.set()
            done.wait(10)

    thread = threading.Thread(target=about_to_write)
    thread.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: its copy of the lock is held by a thread it does not have
        status = 1
        try:
            status = 0 if store.claim(Entry("k", "f" * 64), lease=60).token else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    done.set()
    thread.join()
    store.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_busy_database_is_recognised_by_its_message_where_python_gives_no_code() -> None:
    busy = sqlite3.OperationalError("database is locked")
    assert sqlite_store._is_busy(busy)
    assert not sqlite_store._is_busy(sqlite3.OperationalError("no such table: deliveries"))


def test_the_wal_is_checkpointed_every_2500_pages_and_synced_as_normal(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    conn = store._connection()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (2500,)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL, as documented
    store.close()


def test_a_table_from_before_queued_dispatch_gains_the_credential_column(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "db.sqlite3")
    old.execute(
        "CREATE TABLE deliveries (key TEXT PRIMARY KEY, state TEXT NOT NULL, fingerprint TEXT"
        " NOT NULL, attempts INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT"
        " NULL, kind TEXT, company_id TEXT, body BLOB NOT NULL, headers TEXT NOT NULL,"
        " last_error TEXT, token INTEGER NOT NULL, lease_expires REAL NOT NULL)"
    )
    old.execute(
        "INSERT INTO deliveries VALUES ('done-key', 'done', ?, 1, 1.0, ?, NULL, NULL, x'7b7d',"
        " '[]', NULL, 1, 0)",
        ("f" * 64, time.time()),
    )
    old.commit()
    old.close()
    store = SQLiteStore(tmp_path / "db.sqlite3")
    second = SQLiteStore(tmp_path / "db.sqlite3")  # finds the column there already
    kept = second.get("done-key")
    assert kept is not None
    assert (kept.state, kept.verified_by) == ("done", None)
    assert store.enqueue(Entry("new", "f" * 64, verified_by="signing-secret-1")).status == "queued"
    new = second.get("new")
    assert new is not None
    assert new.verified_by == "signing-secret-1"
    store.close()
    second.close()


def test_a_worker_takes_a_queued_key_and_reads_its_record_in_one_statement(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    store.enqueue(Entry("queued-key", "f" * 64, body=b"{}"))
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    claim, record = store.take_record("queued-key", lease=60)
    store.close()
    assert record is not None
    assert (claim.token, record.body) == (record.token, b"{}")
    if sqlite_store._HAS_RETURNING:
        assert [sql.split()[0] for sql in statements] == ["UPDATE"]


def _open_when_told(path: str, go: float, failures: Any) -> None:
    time.sleep(max(0.0, go - time.time()))
    try:
        SQLiteStore(path).close()
    except Exception as exc:  # reported to the parent, which asserts there are none
        failures.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_file_at_once_all_start(tmp_path: Path) -> None:
    """Gunicorn's workers (without --preload) open the default store's new file together;
    switching it to WAL used to answer one of them "database is locked" at once."""
    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        path = str(tmp_path / f"fresh-{attempt}.sqlite3")
        failures = context.Queue()
        go = time.time() + 0.3
        opening = [
            context.Process(target=_open_when_told, args=(path, go, failures)) for _ in range(4)
        ]
        for process in opening:
            process.start()
        for process in opening:
            process.join(30)
            assert process.exitcode == 0
        assert failures.empty(), failures.get()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_file_with_the_old_marks_index_loses_it_and_keeps_its_marks(tmp_path: Path) -> None:
    """Earlier versions indexed the marks' last_seen, which every mark move rewrote."""
    scope = "connection:company-a:connection-1"
    store = SQLiteStore(tmp_path / "db.sqlite3")
    store.claim(Entry("old", "a" * 64, body=b"{}", mark=Mark(scope, 200.0)), lease=60)
    store._connection().execute(
        'CREATE INDEX "deliveries_marks_last_seen" ON "deliveries_marks" (last_seen)'
    )
    store.close()
    reopened = SQLiteStore(tmp_path / "db.sqlite3")
    claim = reopened.claim(Entry("late", "b" * 64, body=b"{}", mark=Mark(scope, 100.0)), lease=60)
    indexes = reopened._connection().execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries_marks'"
    )
    names = [name for (name,) in indexes]
    reopened.close()
    assert "deliveries_marks_last_seen" not in names
    assert claim.order is not None
    assert (claim.order.stale, claim.order.newer_key) == (True, "old")
