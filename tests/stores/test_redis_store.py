"""What RedisStore's own connection handling must get right, against a real redis-server.

Each thread sends its scripts on a connection of its own (taken from the client's pool), and
scripts are sent by SHA with the source as the fallback. These tests pin down the edges of
that: a server that forgot its scripts, one that dropped every connection, threads that end,
``close()``, and a fork after the parent already holds a connection.
"""

from __future__ import annotations

import os
import threading
import uuid
import warnings
from collections.abc import Iterator

import pytest
import redis

from codat_webhooks.stores import Entry, RedisStore, State

pytestmark = pytest.mark.redis


@pytest.fixture
def admin(redis_url: str) -> Iterator[redis.Redis]:
    """A separate client for server-side mischief (SCRIPT FLUSH, CLIENT KILL)."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def fresh(tag: str = "k") -> Entry:
    return Entry(f"{tag}-{uuid.uuid4().hex}", "f" * 64, body=b"{}", kind="Sync Started")


def test_scripts_are_sent_again_after_the_server_forgets_them(
    redis_url: str, admin: redis.Redis
) -> None:
    with RedisStore(redis_url, prefix=f"t:{uuid.uuid4().hex}:") as store:
        entry = fresh()
        claim = store.claim(entry, lease=60.0)
        admin.script_flush()
        assert store.complete(entry.key, claim.token)
        record = store.get(entry.key)
        assert record is not None
        assert record.state is State.DONE


def test_a_dropped_connection_is_reopened_by_the_retry(redis_url: str, admin: redis.Redis) -> None:
    with RedisStore(redis_url, prefix=f"t:{uuid.uuid4().hex}:") as store:
        entry = fresh()
        claim = store.claim(entry, lease=60.0)
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        assert store.complete(entry.key, claim.token)
        assert store.claim(entry, lease=60.0).status == "duplicate"


def test_connections_of_finished_threads_go_back_to_the_pool(redis_url: str) -> None:
    # Two connections for five threads in turn: a thread that kept its connection after
    # ending would leave the third one waiting for the pool until its timeout.
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=2, timeout=2)
    client = redis.Redis(connection_pool=pool)
    store = RedisStore(client, prefix=f"t:{uuid.uuid4().hex}:")
    outcomes: list[bool] = []

    def deliver() -> None:
        entry = fresh()
        outcomes.append(store.complete(entry.key, store.claim(entry, lease=60.0).token))

    try:
        for _ in range(5):
            worker = threading.Thread(target=deliver)
            worker.start()
            worker.join()
        assert outcomes == [True] * 5
    finally:
        store.close()
        client.close()


def test_close_gives_back_the_connections_of_threads_still_running(redis_url: str) -> None:
    # A web server's worker threads outlive the store; close() must not wait for them to end.
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=2)
    client = redis.Redis(connection_pool=pool)
    prefix = f"t:{uuid.uuid4().hex}:"
    entry = fresh()
    store = RedisStore(client, prefix=prefix)
    delivered, closed = threading.Event(), threading.Event()

    def worker() -> None:
        store.complete(entry.key, store.claim(entry, lease=60.0).token)
        delivered.set()
        closed.wait(10)

    alive = threading.Thread(target=worker)
    alive.start()
    try:
        assert delivered.wait(10)
        store.close()
        assert client.ping()  # the worker's connection is back in the caller's pool
        with RedisStore(client, prefix=prefix) as again:
            assert again.claim(entry, lease=60.0).status == "duplicate"
    finally:
        closed.set()
        alive.join()
        client.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_shares_the_parents_connection(redis_url: str) -> None:
    # A gunicorn master that used the store before forking its workers: parent and child then
    # run deliveries at the same time. Sharing one socket would interleave their replies.
    with RedisStore(redis_url, prefix=f"t:{uuid.uuid4().hex}:", timeout=5.0) as store:
        first = fresh("parent")
        store.complete(first.key, store.claim(first, lease=60.0).token)

        def deliveries(tag: str) -> bool:
            entries = [fresh(tag) for _ in range(300)]
            claims = [store.claim(entry, lease=60.0) for entry in entries]
            done = [store.complete(e.key, c.token) for e, c in zip(entries, claims, strict=True)]
            return all(claim.claimed for claim in claims) and all(done)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            status = 1
            try:
                status = 0 if deliveries("child") else 2
            finally:
                os._exit(status)
        parent_ok = deliveries("parent")
        _, wait_status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(wait_status) == 0
        assert parent_ok
