"""Ordering over real HTTP: gunicorn with two workers, once per adapter (WSGI with sync
workers, ASGI with uvicorn workers), the default SQLite store, inline and queued dispatch.

Events of a few connections are posted in a random order with duplicates, by several
threads, as Codat's independent retries deliver them (``connection.*`` bodies as codat-docs
``docs/using-the-api/webhooks/event-types.md`` shows them). The app runs with
``stale="skip"`` and logs every rule hook and every ``on_stale``; what must hold:

- every key reaches the app exactly once (a rule hook or ``on_stale``, never both, never twice);
- the newest event of every connection reaches its rule hook, so an app that applies what is
  not stale (keeping the newest it applied) ends with the newest state of every connection;
- whatever was skipped is older than an event of its connection that came first.
"""

from __future__ import annotations

import json
import random
import sqlite3
import textwrap
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from codat_webhooks.event_types import EventType
from codat_webhooks.testing import event_sample

from .servers import free_port, gunicorn, python_path, running

pytestmark = pytest.mark.slow

APP = """
import os

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.queues import LocalQueue
from codat_webhooks.stores import SQLiteStore


class Log:
    def write(self, *words):
        fd = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (" ".join(map(str, words)) + "\\n").encode())
        finally:
            os.close(fd)

    @hookimpl
    def on_event(self, event, delivery):
        self.write("applied", delivery.key, event.generated_date.timestamp(), int(delivery.stale))

    @hookimpl
    def on_stale(self, payload, delivery):
        self.write("skipped", delivery.key, payload.generated_date.timestamp(), delivery.newer.key)


inline = Receiver(insecure=True, plugins=[Log()], load_entrypoints=False, stale="skip")
queued = Receiver(
    insecure=True,
    store=SQLiteStore("queued.sqlite3"),
    plugins=[Log()],
    load_entrypoints=False,
    stale="skip",
    queue=LocalQueue(workers=2, sweep_every=0.5, stale_after=1),
)
"""

WSGI = (
    APP
    + """
from codat_webhooks.wsgi import WebhookMiddleware


def nothing(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no"]


app = WebhookMiddleware(WebhookMiddleware(nothing, queued, "/queued"), inline, "/inline")
"""
)

ASGI = (
    APP
    + """
from codat_webhooks.asgi import WebhookMiddleware


async def nothing(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})


app = WebhookMiddleware(WebhookMiddleware(nothing, queued, "/queued"), inline, "/inline")
"""
)

ADAPTERS = {"wsgi": (WSGI, "sync"), "asgi": (ASGI, "uvicorn_worker.UvicornWorker")}
CONNECTIONS, EVENTS_PER_CONNECTION, COPIES = 3, 6, 2
START = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def events() -> list[tuple[str, str, float, bytes]]:
    """(key, connection, generatedDate, body) of every event, several per connection."""
    company = str(uuid.uuid4())
    made = []
    kinds = [EventType.CONNECTION_DISCONNECTED, EventType.CONNECTION_RECONNECTED]
    for _ in range(CONNECTIONS):
        connection = str(uuid.uuid4())
        for n in range(EVENTS_PER_CONNECTION):
            key = str(uuid.uuid4())
            generated = START + timedelta(minutes=n)
            body = event_sample(kinds[n % 2], company_id=company, event_id=key)
            body["generatedDate"] = generated.isoformat().replace("+00:00", "Z")
            body["payload"]["connection"]["id"] = connection
            made.append((key, connection, generated.timestamp(), json.dumps(body).encode()))
    return made


_local = threading.local()
_clients: list[httpx.Client] = []


def post_until_settled(url: str, body: bytes) -> int:
    """As Codat does: a 503 or a refused connection is tried again; anything else is final."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(timeout=10)
        _clients.append(client)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status = client.post(url, content=body).status_code
        except httpx.TransportError:
            status = 0
        if status not in (0, 503):
            return status
        time.sleep(0.05)
    return -1


def settled(database: Path) -> bool:
    """Nothing left queued or processing in ``database``."""
    if not database.exists():
        return False
    with sqlite3.connect(database) as conn:
        (waiting,) = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'processing')"
        ).fetchone()
    return int(waiting) == 0


@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_gunicorn_two_workers_apply_the_newest_per_connection_each_key_once(
    adapter: str, tmp_path: Path
) -> None:
    source, worker_class = ADAPTERS[adapter]
    (tmp_path / "ordering_app.py").write_text(textwrap.dedent(source))
    port = free_port()
    command = [
        *gunicorn("ordering_app:app", port, worker_class=worker_class),
        "--chdir",
        str(tmp_path),
    ]
    sent = {path: events() for path in ("inline", "queued")}
    effects = tmp_path / "effects.txt"
    env = {"PYTHONPATH": python_path(tmp_path), "EFFECTS": str(effects)}
    with running(command, port, env, tmp_path / "gunicorn.log", ready="/queued/health"):
        copies = [
            (f"http://127.0.0.1:{port}/{path}", body)
            for path, made in sent.items()
            for _, _, _, body in made
            for _ in range(COPIES)
        ]
        random.shuffle(copies)
        try:
            with ThreadPoolExecutor(8) as pool:
                statuses = Counter(pool.map(lambda job: post_until_settled(*job), copies))
        finally:
            while _clients:
                _clients.pop().close()
        deadline = time.monotonic() + 30
        while not settled(tmp_path / "queued.sqlite3"):
            assert time.monotonic() < deadline, "queued deliveries never ran"
            time.sleep(0.1)
    assert set(statuses) <= {200, 202}, statuses
    assert (tmp_path / "codat-webhooks.sqlite3").exists()  # the default store served /inline
    lines = [line.split() for line in effects.read_text().splitlines()]
    for made in sent.values():
        keys = {key: (connection, at) for key, connection, at, _ in made}
        mine = [line for line in lines if line[1] in keys]
        assert Counter(line[1] for line in mine) == Counter(list(keys)), "each key exactly once"
        state: dict[str, float] = {}
        for what, key, at, extra in mine:
            connection = keys[key][0]
            if what == "applied":
                assert extra == "0"  # stale="skip": a rule hook never sees a stale one
                state[connection] = max(state.get(connection, 0.0), float(at))
            else:
                assert keys[extra][0] == connection
                assert keys[extra][1] > float(at)  # skipped for a newer one, received first
        newest: dict[str, float] = {}
        for connection, generated in keys.values():
            newest[connection] = max(newest.get(connection, 0.0), generated)
        assert state == newest
    # shuffled, six events a connection: some surely came after a newer one
    assert any(line[0] == "skipped" for line in lines)
