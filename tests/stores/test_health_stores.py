"""``GET <path>/health`` with each store up, then down: a real redis-server and PostgreSQL
stopped by PID, a SQLite file removed. Probes go through the WSGI middleware."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from store_servers import PG_BIN, REDIS_SERVER, missing_service, start_postgres, start_redis, stop
from werkzeug.test import Client
from werkzeug.wrappers import Response

from codat_webhooks import Receiver
from codat_webhooks.stores import MemoryStore, SQLiteStore, Store
from codat_webhooks.wsgi import WebhookMiddleware

SECRET = "Bearer health-check-s3cret"


def not_found(environ: object, start_response: Callable[..., object]) -> Iterable[bytes]:
    return Response("no", status=404)(environ, start_response)  # type: ignore[arg-type]


def receiving(store: Store) -> Receiver:
    return Receiver(authorization=SECRET, store=store, load_entrypoints=False)


def probe(receiver: Receiver) -> tuple[int, bytes]:
    """One health probe; the same receiver is probed again after its store goes down, and
    closed by the test (its outage watcher and pool must not outlive it)."""
    client = Client(WebhookMiddleware(not_found, receiver))
    response = client.get("/webhooks/codat/health")
    return response.status_code, response.get_data()


def assert_reveals_nothing(body: bytes, *secrets: str) -> None:
    assert json.loads(body) in ({"status": "ok"}, {"status": "unavailable"})
    for secret in (SECRET, "health-check", *secrets):
        assert secret.encode() not in body


def test_memory_store_is_healthy() -> None:
    receiver = receiving(MemoryStore())
    status, body = probe(receiver)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    receiver.close()


def test_sqlite_healthy_then_its_file_removed(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.sqlite3"
    receiver = receiving(SQLiteStore(path))
    status, body = probe(receiver)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    path.unlink()
    status, body = probe(receiver)
    assert status == 503
    assert json.loads(body) == {"status": "unavailable"}
    assert_reveals_nothing(body, str(path), "sqlite")
    receiver.close()


def test_a_store_created_on_first_use_is_ready_before_the_first_delivery(tmp_path: Path) -> None:
    """The default store makes its file on first use; a readiness probe must not wait for a
    delivery (none is routed to an instance that is not ready)."""
    path = tmp_path / "codat-webhooks.sqlite3"
    receiver = receiving(SQLiteStore(path, connect=False))
    assert not path.exists()
    status, body = probe(receiver)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert path.exists()
    receiver.close()


def test_sqlite_in_a_directory_that_is_gone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gone" / "deliveries.sqlite3", connect=False)
    receiver = receiving(store)
    status, body = probe(receiver)
    assert status == 503
    assert_reveals_nothing(body, str(tmp_path))
    receiver.close()


@pytest.mark.redis
def test_redis_healthy_then_stopped(tmp_path: Path) -> None:
    if REDIS_SERVER is None:
        missing_service("redis-server")
    from codat_webhooks.stores import RedisStore

    process, url = start_redis(directory=tmp_path)
    try:
        receiver = receiving(RedisStore(url, timeout=1.0))
        status, body = probe(receiver)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
    finally:
        stop(process)
    status, body = probe(receiver)
    assert status == 503
    assert_reveals_nothing(body, url, "redis")
    receiver.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_healthy_then_stopped() -> None:
    if PG_BIN is None:
        missing_service("PostgreSQL")
    from codat_webhooks.stores import PostgresStore

    server = start_postgres()
    try:
        dsn = server.dsn()
        receiver = receiving(PostgresStore(dsn, timeout=2.0))
        status, body = probe(receiver)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
    finally:
        server.stop()
    status, body = probe(receiver)
    assert status == 503
    assert_reveals_nothing(body, dsn, "postgres", str(server.port))
    receiver.close()
