"""Store faults under a real Receiver: what used to answer 500, 503 forever, or run hooks twice.

Real faults only: an immutable file (``chattr +i``, which stops root too, as tests run as
root here), a redis-server stopped by its PID mid-delivery, PostgreSQL refusing NUL in text.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from store_servers import REDIS_SERVER, free_port, missing_service, start_redis, stop
from tests.waiting import wait_for

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.stores import SQLiteStore, State, Store
from codat_webhooks.testing import sample_body

# --- hostile keys and types through the receiver, on every store ------------------------------


def _alert(**fields: object) -> bytes:
    body = json.loads(sample_body(RuleType.EXPENSES_SYNC_COMPLETED))
    body.update(fields)
    return json.dumps(body).encode()  # ASCII: "\ud800" and "\u0000" travel as escapes


HOSTILE = {
    "surrogate-alert-id": (_alert(AlertId="\ud800"), "sha256:"),
    "nul-alert-id": (_alert(AlertId="a\x00b"), "sha256:"),
    "huge-alert-id": (_alert(AlertId="x" * 10_000), "sha256:"),
    "surrogate-event-id": (b'{"id": "\\udfff", "eventType": "company.created"}', "sha256:"),
    "surrogate-unknown-rule": (_alert(RuleType="Rule \ud800"), ""),
    "nul-unknown-rule": (_alert(RuleType="Rule \x00"), ""),
}


@pytest.mark.parametrize(("body", "key_prefix"), HOSTILE.values(), ids=list(HOSTILE))
def test_an_unstorable_id_or_type_is_parked_not_a_500_or_an_endless_503(
    backend: str, make_store: object, body: bytes, key_prefix: str
) -> None:
    store: Store = make_store(backend)  # type: ignore[operator]
    receiver = Receiver(insecure=True, store=store, load_entrypoints=False)
    try:
        reply = receiver.handle("POST", {}, body)
        assert (reply.status, reply.outcome) == (422, "invalid")
        assert reply.key is not None
        assert reply.key.startswith(key_prefix)
        record = store.get(reply.key)
        assert record is not None
        assert (record.state, record.body) == (State.PARKED, body)
        if not key_prefix:  # parked under its own ID, the type kept as storable text
            assert record.kind is not None
            assert record.kind.startswith("Rule \ufffd")
    finally:
        receiver.close()


# --- SQLite: a connection opened on a read-only file is not kept -----------------------------


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: not even root may write the file until the block ends."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip(f"the filesystem of {path} has no immutable attribute")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


class Count:
    def __init__(self) -> None:
        self.runs = 0

    @hookimpl
    def on_alert(self) -> None:
        self.runs += 1


def test_sqlite_recovers_once_a_read_only_file_is_writable_again(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    SQLiteStore(path).close()  # the file exists, as on a restarted server
    hook = Count()
    body = sample_body(RuleType.EXPENSES_SYNC_FAILED)
    with immutable(path):
        # This thread's connection is opened now, while the file cannot be written.
        store = SQLiteStore(path)
        receiver = Receiver(insecure=True, store=store, plugins=[hook], load_entrypoints=False)
        reply = receiver.handle("POST", {}, body)
        assert (reply.status, reply.outcome) == (503, "unavailable")
    try:
        # 503 until the outage watcher's ping answers (at once, or a second later if its first
        # ping raced the file being made writable); then the fresh connection writes.
        deadline = time.monotonic() + 5
        reply = receiver.handle("POST", {}, body)
        while reply.outcome == "unavailable" and time.monotonic() < deadline:
            time.sleep(0.05)
            reply = receiver.handle("POST", {}, body)
        assert reply.outcome == "processed"
        assert receiver.handle("POST", {}, body).outcome == "duplicate"
        assert hook.runs == 1
    finally:
        receiver.close()


# --- complete() during a store outage: retried in the background -----------------------------


class StopsTheStore:
    """A hook that takes the store's server down while it runs, so ``complete`` fails."""

    def __init__(self, server: list[subprocess.Popen[bytes]]) -> None:
        self.server = server
        self.runs = 0

    @hookimpl
    def on_alert(self) -> None:
        self.runs += 1
        if self.runs == 1:
            stop(self.server[0])


@pytest.mark.redis
@pytest.mark.slow
def test_a_completion_lost_to_an_outage_is_recorded_when_the_store_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if REDIS_SERVER is None:
        missing_service("redis-server")
    from codat_webhooks.stores import RedisStore

    port = free_port()
    server: list[subprocess.Popen[bytes]] = [start_redis(port, directory=tmp_path)[0]]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    hook = StopsTheStore(server)
    receiver = Receiver(
        insecure=True, store=store, plugins=[hook], load_entrypoints=False, lease=0.5
    )
    body = sample_body(RuleType.RATE_LIMIT_REACHED)
    try:
        with caplog.at_level(logging.INFO, logger="codat_webhooks"):
            reply = receiver.handle("POST", {}, body)
            assert (reply.status, reply.outcome) == (200, "processed")
            assert "retrying in the background" in caplog.text
            time.sleep(0.6)  # the outage outlasts the lease: without retries, it would expire
            server[0] = start_redis(port, directory=tmp_path)[0]
            assert reply.key is not None
            key = reply.key
            wait_for(lambda: getattr(store.get(key), "state", None) is State.DONE, 20.0)
            # The retry thread logs just after the store write the line above saw: wait for it.
            wait_for(lambda: "recorded" in caplog.text, 20.0)
            # The failed completion told the receiver the store is down: it answers 503 at
            # once until its watcher's ping succeeds.
            wait_for(lambda: receiver.outage.down is None, 20.0)
        assert receiver.handle("POST", {}, body).outcome == "duplicate"
        assert hook.runs == 1
    finally:
        receiver.close()
        stop(server[0])


@pytest.mark.redis
@pytest.mark.slow
def test_completion_retries_stop_at_completion_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if REDIS_SERVER is None:
        missing_service("redis-server")
    from codat_webhooks.stores import RedisStore

    port = free_port()
    server: list[subprocess.Popen[bytes]] = [start_redis(port, directory=tmp_path)[0]]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    receiver = Receiver(
        insecure=True,
        store=store,
        plugins=[StopsTheStore(server)],
        load_entrypoints=False,
        completion_retry=0.3,
    )
    gave_up = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("gave up recording"):
                gave_up.set()

    watcher = Watch()
    logging.getLogger("codat_webhooks").addHandler(watcher)
    try:
        assert receiver.handle("POST", {}, sample_body(RuleType.EXPENSES_SYNC_FAILED)).status == 200
        assert gave_up.wait(timeout=20)
    finally:
        logging.getLogger("codat_webhooks").removeHandler(watcher)
        receiver.close()
        stop(server[0])
