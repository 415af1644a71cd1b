"""Store fixtures: one real redis-server and one PostgreSQL cluster per session, isolated per test
by a key prefix (Redis) or a table name (PostgreSQL), and a ``store`` parametrised over every
backend so the contract suite runs against each."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from store_servers import (
    PG_BIN,
    REDIS_SERVER,
    Postgres,
    missing_service,
    start_postgres,
    start_redis,
    stop,
)

from codat_webhooks.stores import MemoryStore, SQLiteStore, Store

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
DURABLE_BACKENDS = BACKENDS[1:]


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if REDIS_SERVER is None:
        missing_service("redis-server")
    process, url = start_redis()
    yield url
    stop(process)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    if PG_BIN is None:
        missing_service("PostgreSQL (initdb, postgres)")
    server = start_postgres()
    server.create_database("codat")
    yield server
    server.stop()


@pytest.fixture
def postgres_dsn(postgres_server: Postgres) -> str:
    return str(postgres_server.dsn("codat"))


StoreFactory = Callable[..., Store]


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """``make_store(kind, **options)``: a fresh, isolated store of that backend."""
    made: list[Store] = []
    namespace = uuid.uuid4().hex[:12]

    def make(kind: str, **options: object) -> Store:
        store: Store
        if kind == "memory":
            store = MemoryStore(**options)  # type: ignore[arg-type]
        elif kind == "sqlite":
            store = SQLiteStore(tmp_path / "store.sqlite3", **options)  # type: ignore[arg-type]
        elif kind == "redis":
            from codat_webhooks.stores import RedisStore

            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, prefix=f"test:{namespace}:", **options)  # type: ignore[arg-type]
        elif kind == "postgres":
            from codat_webhooks.stores import PostgresStore

            dsn = request.getfixturevalue("postgres_dsn")
            store = PostgresStore(dsn, table=f"t_{namespace}", **options)  # type: ignore[arg-type]
        else:
            raise AssertionError(kind)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, make_store: StoreFactory, clock: FakeClock) -> Store:
    """Each backend on a fake clock, with a short retention so expiry is easy to reach."""
    return make_store(backend, clock=clock, retention=1000.0)


@pytest.fixture(params=DURABLE_BACKENDS)
def durable_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
