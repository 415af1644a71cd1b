"""The console's ASGI adapter driven with ASGI messages: what a server would send it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from codat_webhooks.console.asgi import MAX_BODY

from .helpers import make_console, park

Message = dict[str, Any]


def call(scope: dict[str, Any], incoming: list[Message]) -> list[Message]:
    console, store, _ = make_console(password=None, insecure=True)
    park(store, "p1")
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(console.asgi()(scope, receive, send))
    return sent


def http(path: str, *, root_path: str = "", method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http", "method": method, "path": path, "root_path": root_path,
        "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "scheme": "http",
    }  # fmt: skip


def test_a_page_under_its_root_path() -> None:
    sent = call(http("/ops/login", root_path="/ops"), [{"type": "http.request", "body": b""}])
    start, body = sent
    headers = dict(start["headers"])
    # insecure: the first request gets its session and is sent back to the same page
    assert (start["status"], headers[b"location"]) == (303, b"http://127.0.0.1/ops/login")
    assert b"Path=/ops/" in headers[b"set-cookie"]
    assert headers[b"x-frame-options"] == b"DENY"
    assert body["type"] == "http.response.body"


def test_a_body_over_the_limit_is_refused_unread() -> None:
    chunk = {"type": "http.request", "body": b"x" * (MAX_BODY // 2 + 1), "more_body": True}
    sent = call(http("/replay", method="POST"), [chunk, dict(chunk), dict(chunk)])
    assert sent[0]["status"] == 413


def test_lifespan_is_acknowledged_and_websockets_refused() -> None:
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = call({"type": "lifespan"}, events)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    with pytest.raises(RuntimeError, match="HTTP only"):
        call({"type": "websocket", "path": "/"}, [])
