"""The stores under a real Receiver: lease renewal, store failures as 503, outage and recovery."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from store_servers import REDIS_SERVER, free_port, missing_service, start_redis, stop
from tests.waiting import wait_for

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.errors import ConfigurationError, StoreError
from codat_webhooks.stores import ClaimStatus, Entry, SQLiteStore, State, Store
from codat_webhooks.stores.sqlite import DEFAULT_DB_PATH
from codat_webhooks.testing import sample_body


class CountRuns:
    def __init__(self, work: float = 0.0) -> None:
        self.work = work
        self.keys: list[str] = []
        self.started = threading.Event()

    @hookimpl
    def on_alert(self, delivery: object) -> None:
        self.keys.append(delivery.key)  # type: ignore[attr-defined]
        self.started.set()
        time.sleep(self.work)  # a slow handler, the subject of these tests


def receiver_for(store: Store, hook: CountRuns, lease: float = 60.0) -> Receiver:
    return Receiver(insecure=True, store=store, plugins=[hook], load_entrypoints=False, lease=lease)


def test_a_slow_handler_keeps_its_claim_alive_and_runs_once(
    backend: str, make_store: object
) -> None:
    """The hook outlives its lease by half, so only renewal keeps the concurrent deliveries
    out. The renewer looks every quarter lease and renews a claim half a lease old, so it may
    renew as late as three quarters in: a 2 s lease leaves it half a second of slack. With
    0.25 s (a 1 s lease), a process sharing two cores with the suite's other worker and
    PostgreSQL once stalled the renewal past the lease."""
    store = make_store(backend)  # type: ignore[operator]
    hook = CountRuns(work=3.0)
    receiver = receiver_for(store, hook, lease=2.0)
    body = sample_body(RuleType.DATASET_DATA_CHANGED)
    first = threading.Thread(target=receiver.handle, args=("POST", {}, body))
    first.start()
    assert hook.started.wait(timeout=30)
    concurrent = []
    while first.is_alive():
        concurrent.append(receiver.handle("POST", {}, body).outcome)
        time.sleep(0.02)
    first.join()
    assert concurrent
    assert set(concurrent) <= {"in_progress", "duplicate"}  # duplicate only after it finished
    assert receiver.handle("POST", {}, body).outcome == "duplicate"
    assert len(hook.keys) == 1
    record = store.get(hook.keys[0])
    assert record is not None
    assert (record.state, record.attempts) == (State.DONE, 1)
    receiver.close()


def test_default_store_is_a_sqlite_file_in_the_working_directory_made_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    receiver = Receiver(insecure=True, load_entrypoints=False)
    try:
        assert isinstance(receiver.store, SQLiteStore)
        assert list(tmp_path.iterdir()) == []  # building a receiver writes nothing
        assert (
            receiver.handle("POST", {}, sample_body(RuleType.EXPENSES_SYNC_COMPLETED)).status == 200
        )
        with sqlite3.connect(tmp_path / DEFAULT_DB_PATH) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("SELECT state FROM deliveries").fetchall() == [("done",)]
    finally:
        receiver.close()


@pytest.mark.parametrize("path", [":memory:", "file::memory:?cache=shared"])
def test_sqlite_refuses_an_in_memory_database(path: str) -> None:
    with pytest.raises(ConfigurationError, match="MemoryStore"):
        SQLiteStore(path)


def test_sqlite_bad_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "no-such-dir" / "db.sqlite3")


def test_sqlite_locked_database_answers_503_and_runs_no_hook(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3", timeout=0.05)
    hook = CountRuns()
    receiver = receiver_for(store, hook)
    body = sample_body(RuleType.EXPENSES_SYNC_FAILED)
    blocker = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.claim(Entry("k", "f"), lease=1)
        reply = receiver.handle("POST", {}, body)
        assert (reply.status, reply.outcome) == (503, "unavailable")
        assert hook.keys == []
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # The lock made the receiver treat the store as down; its watcher sees it free again.
    wait_for(lambda: receiver.outage.down is None, 20.0)
    assert receiver.handle("POST", {}, body).outcome == "processed"
    assert len(hook.keys) == 1
    receiver.close()


@pytest.mark.redis
def test_unreachable_redis_raises_store_error() -> None:
    from codat_webhooks.stores import RedisStore

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    for call in (
        lambda: store.claim(Entry("k", "f"), lease=1),
        lambda: store.get("k"),
        lambda: store.find(),
        lambda: store.purge(),
        lambda: store.park(Entry("k", "f"), reason="x"),
    ):
        with pytest.raises(StoreError):
            call()
    store.close()


@pytest.mark.redis
def test_redis_client_must_return_bytes(redis_url: str) -> None:
    import redis

    from codat_webhooks.stores import RedisStore

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigurationError):
        RedisStore(client)
    client.close()
    client = redis.Redis.from_url(redis_url)
    store = RedisStore.from_url(redis_url, prefix="from-url:")
    assert store.claim(Entry("k", "f"), lease=1).status is ClaimStatus.CLAIMED
    assert RedisStore(client, prefix="from-url:").get("k") is not None
    store.purge(older_than=0)
    store.close()
    client.close()


@pytest.mark.postgres
def test_unreachable_postgres_raises_store_error() -> None:
    from codat_webhooks.stores import PostgresStore

    store = PostgresStore(f"host=127.0.0.1 port={free_port()} user=postgres", timeout=0.5)
    with pytest.raises(StoreError):
        store.claim(Entry("k", "f"), lease=1)
    with pytest.raises(StoreError):
        store.create_schema()
    store.close()


@pytest.mark.postgres
def test_postgres_accepts_a_pool_and_explicit_schema(postgres_dsn: str) -> None:
    import psycopg_pool

    from codat_webhooks.stores import PostgresStore

    with pytest.raises(ConfigurationError):
        PostgresStore(postgres_dsn, table="bad; drop table x")
    pool = psycopg_pool.ConnectionPool(
        postgres_dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True
    )
    try:
        store = PostgresStore(pool, table="explicit_schema")
        store.create_schema()
        store.create_schema()  # idempotent
        assert store.claim(Entry("k", "f"), lease=1).claimed
        store.close()  # a pool we were given stays open for its owner
        assert not pool.closed
    finally:
        pool.close()


@pytest.mark.redis
@pytest.mark.slow
def test_redis_outage_answers_503_and_service_resumes_without_loss(tmp_path: Path) -> None:
    if REDIS_SERVER is None:
        missing_service("redis-server")
    from codat_webhooks.stores import RedisStore

    port = free_port()
    server, url = start_redis(port, directory=tmp_path)
    store = RedisStore(url, timeout=0.5)
    hook = CountRuns()
    receiver = receiver_for(store, hook)
    before, during = (
        sample_body(RuleType.RATE_LIMIT_REACHED),
        sample_body(RuleType.RATE_LIMIT_RESET),
    )
    try:
        assert receiver.handle("POST", {}, before).outcome == "processed"
        stop(server)
        for _ in range(3):
            reply = receiver.handle("POST", {}, during)
            assert (reply.status, reply.outcome) == (503, "unavailable")
            assert ("Retry-After", "30") in reply.headers
        assert len(hook.keys) == 1
        server, url = start_redis(port, directory=tmp_path)
        # 503 at once until the receiver's watcher finds the store back (a ping a second)
        wait_for(lambda: receiver.outage.down is None, 20.0)
        assert receiver.handle("POST", {}, during).outcome == "processed"
        assert receiver.handle("POST", {}, before).outcome == "duplicate"  # survived the restart
        assert receiver.handle("POST", {}, during).outcome == "duplicate"
        assert len(hook.keys) == 2
    finally:
        receiver.close()
        stop(server)


def test_optional_drivers_are_imported_only_by_their_store() -> None:
    code = (
        "import sys, codat_webhooks, codat_webhooks.stores as s; s.SQLiteStore; "
        "print('redis' in sys.modules, 'psycopg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
