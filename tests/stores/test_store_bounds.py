"""No store call waits without a bound, and nothing a store hands back is trusted blindly.

A server that accepts connections and never answers, a row lock another session holds, a row
of the wrong shape, a stored body that belongs to another key, a pool from the parent process:
each is a ``StoreError`` (answered 503, retried by Codat) within the store's ``timeout``, never
a hang, a 500 or a hook given the wrong delivery.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.errors import StoreError
from codat_webhooks.queues import LocalQueue
from codat_webhooks.stores import Entry, MemoryStore, State, Store
from codat_webhooks.stores.sql import record_from_row
from codat_webhooks.testing import sample_body

BOUND = 1.0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stopping.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stopping.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def _raises_within(call: Callable[[], object]) -> float:
    began = time.monotonic()
    with pytest.raises(StoreError):
        call()
    return time.monotonic() - began


def _silent_redis(port: int) -> Store:
    from codat_webhooks.stores import RedisStore

    return RedisStore(f"redis://127.0.0.1:{port}/0", timeout=BOUND)


def _silent_postgres(port: int) -> Store:
    from codat_webhooks.stores import PostgresStore

    return PostgresStore(f"host=127.0.0.1 port={port} user=x dbname=x", timeout=BOUND)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_silent_redis, id="redis", marks=pytest.mark.redis),
        pytest.param(_silent_postgres, id="postgres", marks=pytest.mark.postgres),
    ],
)
def test_a_server_that_never_answers_is_a_store_error(
    silent_server: int, make: Callable[[int], Store]
) -> None:
    store = make(silent_server)
    waited = _raises_within(lambda: store.claim(Entry("k", "f"), lease=10))
    assert waited < BOUND * 10
    store.close()


@pytest.mark.postgres
def test_a_row_locked_by_another_session_is_a_store_error(postgres_dsn: str) -> None:
    import psycopg

    from codat_webhooks.stores import PostgresStore

    store = PostgresStore(postgres_dsn, table="t_locked", timeout=BOUND)
    store.claim(Entry("held", "f"), lease=0.001)  # expired at once: the next claim reads the row
    with psycopg.connect(postgres_dsn) as other, other.transaction():
        other.execute("SELECT key FROM t_locked WHERE key = 'held' FOR UPDATE")
        waited = _raises_within(lambda: store.claim(Entry("held", "f"), lease=10))
    assert waited < BOUND * 10
    record = store.get("held")
    assert record is not None
    assert record.state is State.PROCESSING
    store.close()


@pytest.mark.postgres
def test_a_ready_pool_is_refused_in_a_forked_child(postgres_dsn: str) -> None:
    """Its sockets are the parent's; a DSN or a function that builds the pool works instead."""
    import psycopg_pool

    from codat_webhooks.stores import PostgresStore

    pool = psycopg_pool.ConnectionPool(postgres_dsn, kwargs={"autocommit": True}, open=True)
    given = PostgresStore(pool, table="t_ready")
    built = PostgresStore(
        lambda: psycopg_pool.ConnectionPool(
            postgres_dsn, kwargs={"autocommit": True}, min_size=1, open=True
        ),
        table="t_ready",
    )
    given.ping()
    built.ping()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        answers = []
        for store in (given, built):
            try:
                store.ping()
                answers.append("ok")
            except StoreError as exc:
                answers.append(str(exc))
        os.write(write, json.dumps(answers).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        refused, accepted = json.load(pipe)
    assert "before this process was forked" in refused
    assert accepted == "ok"
    given.ping()  # the parent's pool is untouched
    built.close()
    pool.close()


def test_a_row_of_another_shape_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not a delivery record"):
        record_from_row((1,))
    with pytest.raises(StoreError, match="not a delivery record"):
        record_from_row(("k", "done", "f", 1, 0.0, 0.0, None, None, b"", "[", None, 1, 0.0, None))


def _malformed_replies() -> list[tuple[str, Callable[[], object]]]:
    """Each decoder of a store's replies, given what a connection that read another statement's
    reply (or a foreign key) might hand it."""
    from codat_webhooks.stores import redis as redis_store
    from codat_webhooks.stores import redis_marks, sql_history, sql_marks
    from codat_webhooks.stores.records import Claim, ClaimStatus

    claimed = Claim(ClaimStatus.CLAIMED, 1, 1)
    return [
        ("redis claim: an integer", lambda: redis_store._claim_of(1)),  # type: ignore[arg-type]
        ("redis claim: unknown status", lambda: redis_store._claim_of([b"bogus", 1, 1])),
        ("redis record: no state", lambda: redis_store._record("k", {b"body": b"{}"})),
        ("redis record: junk", lambda: redis_store._record("k", {b"state": b"x"})),
        ("redis verdict", lambda: redis_marks.RedisMarks.answer(claimed, [[], [b"1", b"k"]])),
        ("redis verdict hash", lambda: redis_marks._verdict_of({b"newer_at": b"soon"})),
        ("redis mark", lambda: redis_marks._high_water_of("scope", {b"key": b"k"})),
        ("sql mark", lambda: sql_marks._mark_from((1,))),
        ("sql verdict", lambda: sql_marks._verdict_from(("k", 0, None, "soon", 0, 0.0))),
        ("sql history", lambda: sql_history.history_from_rows([("x",)])),
    ]


@pytest.mark.parametrize(
    "decode",
    [decode for _, decode in _malformed_replies()],
    ids=[what for what, _ in _malformed_replies()],
)
def test_every_reply_of_another_shape_is_a_store_error(decode: Callable[[], object]) -> None:
    """Not only the record's row: claims, marks, verdicts and history from every backend."""
    with pytest.raises(StoreError, match="another shape"):
        decode()


@pytest.mark.redis
def test_a_reply_of_another_shape_is_answered_503_with_retry_after(
    make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Redis connection shared across fork handed a child: another command's integer."""
    store = make_store("redis")
    receiver = Receiver(insecure=True, store=store, load_entrypoints=False)
    monkeypatch.setattr(store, "_eval", lambda *args: 1)
    reply = receiver.handle("POST", {}, sample_body(RuleType.DATA_SYNC_COMPLETED))
    assert (reply.status, reply.outcome) == (503, "unavailable")
    assert any(name == "Retry-After" for name, _ in reply.headers)
    receiver.close()


class Runs:
    def __init__(self) -> None:
        self.keys: list[str] = []

    @hookimpl
    def on_alert(self, delivery: object) -> None:
        self.keys.append(delivery.key)  # type: ignore[attr-defined]


def test_a_stored_body_of_another_key_never_reaches_a_hook() -> None:
    """What a connection shared across fork did: the worker read another key's body."""
    store: Store = MemoryStore()
    runs = Runs()
    receiver = Receiver(
        insecure=True,
        store=store,
        plugins=[runs],
        load_entrypoints=False,
        queue=LocalQueue(workers=0),
    )
    theirs = sample_body(RuleType.DATA_SYNC_COMPLETED)
    store.enqueue(Entry("mine", "f", theirs))
    work = receiver.process_queued("mine")
    assert work.outcome == "unavailable"
    assert runs.keys == []
    record = store.get("mine")
    assert record is not None
    assert record.state is State.PROCESSING  # the lease runs out; a sound read runs it later
    receiver.close()
