"""A store outage under gunicorn's sync workers: answered at once, and nothing lost after it.

Each sync worker answers one request at a time. If every request waited out the store's
timeout while the store is down, a worker would answer about once per timeout and everything
else would queue in the listen backlog: the store outage would take the web service down too.
So after the first failure the receiver answers 503 (which Codat retries) without touching the
store, until a background ping finds it back. Measured here against real, stopped servers;
then the keys refused meanwhile are sent again, as Codat would, and each runs exactly once.

A stopped server on loopback refuses connections at once, so without the outage state each
Redis request would still fail within a few milliseconds (about 25 ms, measured): that case
alone cannot tell the outage state from its absence. A *paused* Redis (SIGSTOP: connections are
accepted and never answered, as behind a firewall or on a stuck host) makes every store call
wait out its timeout, so there the p99 bound holds only if the store is not called at all.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from store_servers import (
    PG_BIN,
    REDIS_SERVER,
    missing_service,
    start_postgres,
    start_redis,
    stop,
)
from tests.adapters.servers import free_port, python_path, running

from codat_webhooks import RuleType
from codat_webhooks.testing import sample_body

pytestmark = pytest.mark.slow

TIMEOUT = 2.0
"""The store's own bound on a call: what each request would wait without the outage state."""
LEASE = 5.0
"""Short, so a claim a paused Redis runs only once it resumes (its client gave up and answered
503) holds the key for seconds, not the default minute, before the retry takes it over."""
DURING = 200
"""Requests timed while the store is down."""

APP = """
import os
from codat_webhooks import Receiver, hookimpl
from codat_webhooks.wsgi import WebhookApp


def make_store():
    where, timeout = os.environ["STORE_AT"], float(os.environ["TIMEOUT"])
    if os.environ["STORE_KIND"] == "redis":
        from codat_webhooks.stores import RedisStore
        return RedisStore(where, timeout=timeout)
    from codat_webhooks.stores import PostgresStore
    return PostgresStore(where, timeout=timeout)


class Effects:
    @hookimpl
    def on_alert(self, delivery):
        fd = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (delivery.key + "\\n").encode())
        finally:
            os.close(fd)


receiver = Receiver(
    authorization="Bearer s3cret",
    store=make_store(),
    plugins=[Effects()],
    load_entrypoints=False,
    lease=float(os.environ["LEASE"]),
)
web = WebhookApp(receiver)
"""


class Outage:
    """A store server the test can stop and start again on the same port and data."""

    def __init__(self, kind: str, tmp_path: Path, *, paused: bool = False) -> None:
        self.kind = kind
        self.paused = paused
        if kind == "redis":
            if REDIS_SERVER is None:
                missing_service("redis-server")
            self.directory = tmp_path / "redis"
            self.directory.mkdir()
            self.port = free_port()
            self.redis, self.url = start_redis(self.port, directory=self.directory)
        else:
            if PG_BIN is None:
                missing_service("PostgreSQL (initdb, postgres)")
            self.postgres = start_postgres()
            self.url = self.postgres.create_database("outage")

    def halt(self) -> None:
        if self.paused:
            os.kill(self.redis.pid, signal.SIGSTOP)
        elif self.kind == "redis":
            stop(self.redis)
        else:
            self.postgres.halt()

    def restart(self) -> None:
        if self.paused:
            os.kill(self.redis.pid, signal.SIGCONT)
        elif self.kind == "redis":
            self.redis, _ = start_redis(self.port, directory=self.directory)
        else:
            self.postgres.restart()

    def close(self) -> None:
        if self.kind == "redis":
            if self.paused:
                os.kill(self.redis.pid, signal.SIGCONT)  # a stopped process holds SIGTERM
            stop(self.redis)
        else:
            self.postgres.stop()


@contextmanager
def _store_server(kind: str, tmp_path: Path, *, paused: bool) -> Iterator[Outage]:
    server = Outage(kind, tmp_path, paused=paused)
    try:
        yield server
    finally:
        server.close()


def _post(client: httpx.Client, url: str, body: bytes) -> tuple[int, float]:
    began = time.perf_counter()
    status = client.post(url, content=body, headers={"Authorization": "Bearer s3cret"})
    return status.status_code, time.perf_counter() - began


def _post_once(url: str, body: bytes) -> tuple[int, float]:
    with httpx.Client(timeout=30) as client:
        return _post(client, url, body)


def _until_settled(url: str, body: bytes) -> int:
    """As Codat does: a 503 is tried again; the final answer is returned."""
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=30) as client:
        while True:
            status, _ = _post(client, url, body)
            if status != 503 or time.monotonic() > deadline:
                return status
            time.sleep(0.1)


@pytest.mark.parametrize(
    ("kind", "how"),
    [("redis", "stopped"), ("postgres", "stopped"), ("redis", "paused")],
    ids=["redis", "postgres", "redis-paused"],
)
def test_a_stopped_store_is_answered_at_once_and_nothing_is_lost(
    kind: str, how: str, tmp_path: Path
) -> None:
    (tmp_path / "outage_app.py").write_text(textwrap.dedent(APP))
    effects = tmp_path / "effects.txt"
    with _store_server(kind, tmp_path, paused=how == "paused") as server:
        env = {
            "STORE_KIND": kind,
            "STORE_AT": server.url,
            "TIMEOUT": str(TIMEOUT),
            "LEASE": str(LEASE),
            "EFFECTS": str(effects),
            "PYTHONPATH": python_path(tmp_path),
        }
        port = free_port()
        command = [
            sys.executable, "-m", "gunicorn", "outage_app:web", "--workers", "2",
            "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--chdir", str(tmp_path),
            "--log-level", "warning", "--timeout", "60",
        ]  # fmt: skip
        with running(command, port, env, tmp_path / "gunicorn.log", ready="/health"):
            url = f"http://127.0.0.1:{port}/"
            before = [sample_body(RuleType.DATA_SYNC_COMPLETED) for _ in range(20)]
            assert {_until_settled(url, body) for body in before} == {200}

            server.halt()
            during = [sample_body(RuleType.DATA_SYNC_COMPLETED) for _ in range(DURING + 2)]
            # Two at once, so each sync worker meets the outage (and waits out one timeout).
            with ThreadPoolExecutor(2) as pool:
                first = list(pool.map(lambda body: _post_once(url, body), during[:2]))
            assert {status for status, _ in first} == {503}
            timed: list[tuple[int, float]] = []
            with httpx.Client(timeout=30) as client:
                for body in during[2:]:
                    timed.append(_post(client, url, body))
                health = client.get(url + "health")
            statuses = Counter(status for status, _ in timed)
            latencies = sorted(seconds for _, seconds in timed)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(f"{kind} {how}: first failures {[round(s, 3) for _, s in first]} s;"
                  f" then {statuses} p50={latencies[len(latencies) // 2] * 1000:.1f} ms"
                  f" p99={p99 * 1000:.1f} ms")  # fmt: skip
            assert statuses == Counter({503: DURING})
            assert health.status_code == 503
            assert p99 < 0.05, f"p99 {p99 * 1000:.1f} ms while the store is down"

            server.restart()
            _wait_for(lambda: httpx.get(url + "health", timeout=10).status_code == 200, 30)
            with ThreadPoolExecutor(4) as pool:
                final = list(pool.map(lambda b: _until_settled(url, b), during + before))
        assert Counter(final) == Counter({200: len(during) + len(before)})
        runs = Counter(effects.read_text().split())
        keys = {json.loads(body)["AlertId"] for body in during + before}
        assert set(runs) == keys
        assert {key: n for key, n in runs.items() if n != 1} == {}


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the store never came back"
        time.sleep(0.2)
