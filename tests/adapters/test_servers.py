"""End to end: the examples under their real servers, over real HTTP on loopback.

Each example runs with its production-style server and a SQLite store shared by its workers;
what we assert is what the example's handlers visibly did (rows in the app's own table).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from codat_webhooks.testing import sample_body, sign

from ..conftest import SEED_FILES
from .servers import chunked, free_port, gunicorn, raw_request, running, uvicorn

pytestmark = pytest.mark.slow

AUTH = "Bearer e2e-example"
SECRET = "whsec_" + "ZTJlLWV4YW1wbGUtc2lnbmluZy1zZWNyZXQ="
LIMIT = 1_048_576  # the examples keep the default max_body_bytes
SERVERS = {
    "flask-gunicorn": lambda port: gunicorn("examples.flask_app.app:app", port),
    "fastapi-uvicorn": lambda port: uvicorn("examples.fastapi_app.app:app", port),
    "fastapi-gunicorn-uvicorn-worker": lambda port: gunicorn(
        "examples.fastapi_app.app:app", port, worker_class="uvicorn_worker.UvicornWorker"
    ),
}


class Example:
    def __init__(self, base: str, port: int, app_db: Path) -> None:
        self.base, self.port, self.app_db = base, port, app_db
        self.client = httpx.Client(base_url=base, timeout=30)

    def deliver(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.base + "/webhooks/codat", content=body, headers=headers, timeout=30)

    def rows(self, table: str = "alerts") -> list[dict[str, Any]]:
        if table == "alerts":  # the app's own route, over HTTP
            return self.client.get("/alerts").json()  # type: ignore[no-any-return]
        with sqlite3.connect(self.app_db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(f"SELECT * FROM {table}")]  # noqa: S608

    def count(self, key: str) -> int:
        return sum(row["key"] == key for row in self.rows())


@pytest.fixture(scope="module", params=list(SERVERS))
def example(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Example]:
    tmp = tmp_path_factory.mktemp(request.param)
    port = free_port()
    env = {
        "CODAT_WEBHOOKS_AUTHORIZATION": AUTH,
        "CODAT_WEBHOOKS_SIGNING_SECRET": SECRET,
        "CODAT_WEBHOOKS_DB": str(tmp / "store.sqlite3"),
        "EXAMPLE_APP_DB": str(tmp / "app.sqlite3"),
    }
    command = SERVERS[request.param](port)
    with running(command, port, env, tmp / "server.log") as base:
        example = Example(base, port, tmp / "app.sqlite3")
        yield example
        example.client.close()


def test_every_seed_payload_is_handled_once(example: Example) -> None:
    # Eleven seeds share one AlertId (Codat's docs reuse it), so each goes out as its own
    # signed message: the key is then its webhook-id, as over Codat's new service.
    keys = {}
    for path in SEED_FILES:
        body = path.read_bytes()
        headers = sign(body, SECRET)
        response = example.deliver(body, headers)
        assert (response.status_code, response.json()["outcome"]) == (200, "processed"), path
        keys[headers["webhook-id"]] = json.loads(body)["RuleType"]
    recorded = {row["key"]: row["rule_type"] for row in example.rows() if row["key"] in keys}
    assert recorded == keys
    assert Counter(row["key"] for row in example.rows())[next(iter(keys))] == 1
    connection_rows = [row for row in example.rows("connection_status") if row["key"] in keys]
    assert [row["new_status"] for row in connection_rows] == ["Linked"]  # the async hook


def test_concurrent_duplicates_have_exactly_one_effect(example: Example) -> None:
    bodies = [sample_body(rule) for rule in ("Sync Completed", "Rate Limit Reset", "Sync Failed")]
    copies = [body for body in bodies for _ in range(8)]
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda b: example.deliver(b, {"Authorization": AUTH}), copies))
    outcomes: dict[str, Counter[str]] = {}
    for reply in replies:
        data = reply.json()
        outcomes.setdefault(data["key"], Counter())[data["outcome"]] += 1
    assert len(outcomes) == len(bodies)
    for key, counts in outcomes.items():
        assert counts["processed"] == 1, counts
        assert set(counts) <= {"processed", "duplicate", "in_progress"}
        assert example.count(key) == 1


def test_oversize_content_length_is_refused_without_the_body(example: Example) -> None:
    head = (
        b"POST /webhooks/codat HTTP/1.1\r\nHost: t\r\nAuthorization: %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    ) % (AUTH.encode(), LIMIT * 50)
    status, body = raw_request(example.port, head)  # no body is ever sent: reading would hang
    assert (status, json.loads(body)["outcome"]) == (413, "too_large")


def test_oversize_chunked_body_is_refused(example: Example) -> None:
    head = (
        b"POST /webhooks/codat HTTP/1.1\r\nHost: t\r\nAuthorization: %s\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    ) % AUTH.encode()
    status, body = raw_request(example.port, head, chunked(b" " * (LIMIT + 1)))
    assert (status, json.loads(body)["outcome"]) == (413, "too_large")


def test_chunked_body_within_the_limit_is_processed(example: Example) -> None:
    alert = sample_body("Push Operation Timed Out")
    response = httpx.post(
        example.base + "/webhooks/codat",
        content=iter([alert[:50], alert[50:]]),  # a generator body goes out chunked
        headers={"Authorization": AUTH},
    )
    assert response.json()["outcome"] == "processed"
    assert example.count(response.json()["key"]) == 1


def test_client_disconnect_mid_body_processes_nothing(example: Example) -> None:
    alert = sample_body("Sync Failed")
    key = json.loads(alert)["AlertId"]
    head = (
        b"POST /webhooks/codat HTTP/1.1\r\nHost: t\r\nAuthorization: %s\r\n"
        b"Content-Length: %d\r\n\r\n"
    ) % (AUTH.encode(), len(alert) + 10)
    with socket.create_connection(("127.0.0.1", example.port), timeout=20) as sock:
        sock.sendall(head + alert)  # a complete alert, but 10 bytes short of what was promised
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)  # the server answers 400 (WSGI) or just closes (ASGI)
    # Had the partial body been processed, this identical delivery would be a duplicate.
    response = example.deliver(alert, {"Authorization": AUTH})
    assert response.json()["outcome"] == "processed"
    assert example.count(key) == 1


def test_the_apps_own_routes_still_work(example: Example) -> None:
    index = example.client.get("/")
    assert index.status_code == 200
    assert index.json()["webhooks"] == "/webhooks/codat"
    stream = example.client.get("/alerts.ndjson")
    assert stream.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in stream.text.splitlines()]
    assert lines == example.rows()
    # The trailing-slash spelling is ours too, answered in place: Codat counts a 3xx as a failure.
    slash = example.client.post(
        "/webhooks/codat/", content=sample_body("Sync Failed"), headers={"Authorization": AUTH}
    )
    assert (slash.status_code, slash.json()["outcome"]) == (200, "processed")
    assert example.count(slash.json()["key"]) == 1
    assert example.client.post("/webhooks/codat/x").status_code == 404  # the app's, as before


def test_a_slow_sync_hook_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    port = free_port()
    command = uvicorn("tests.adapters.slow_app:app", port)
    with running(command, port, {}, tmp_path / "server.log", ready="/state") as base:
        reply: dict[str, Any] = {}

        def deliver() -> None:
            body = sample_body("Sync Completed")
            headers = {"Authorization": "Bearer slow"}
            reply["response"] = httpx.post(
                base + "/webhooks/codat", content=body, headers=headers, timeout=90
            )

        sender = threading.Thread(target=deliver)
        sender.start()
        with httpx.Client(base_url=base, timeout=30) as client:
            # Each of these needs the event loop while the hook blocks its thread; a stalled
            # loop would leave them unanswered until the hook gave up after 60 s.
            while client.get("/state").text != "waiting":
                pass
            assert client.post("/release").status_code == 200
        sender.join()
        assert reply["response"].json()["outcome"] == "processed"
        with httpx.Client(base_url=base) as client:
            assert client.get("/state").text == "released"
