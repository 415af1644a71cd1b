"""Installing the receiver changes nothing for the examples' other routes: same status,
headers and (streamed) body with and without it, compared in-process request by request."""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import Any

import httpx
import pytest
from werkzeug.test import Client

from codat_webhooks.asgi import WebhookMiddleware
from codat_webhooks.testing import sample_body

from .conftest import AUTH

REQUESTS = [("GET", "/"), ("GET", "/alerts"), ("GET", "/alerts.ndjson"), ("GET", "/missing"),
            ("POST", "/"), ("HEAD", "/alerts"), ("POST", "/webhooks/codat/x")]  # fmt: skip


def load(name: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("CODAT_WEBHOOKS_AUTHORIZATION", AUTH)
    monkeypatch.setenv("CODAT_WEBHOOKS_DB", str(tmp_path / "store.sqlite3"))
    monkeypatch.setenv("EXAMPLE_APP_DB", str(tmp_path / "app.sqlite3"))
    return importlib.import_module(f"examples.{name}.app")


def test_flask_routes_are_identical_with_the_middleware(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load("flask_app", tmp_path, monkeypatch).create_app()
    with_hooks, without = Client(app.wsgi_app), Client(app.wsgi_app.app)
    with_hooks.post(
        "/webhooks/codat", data=sample_body("Sync Completed"), headers={"Authorization": AUTH}
    )
    for method, path in REQUESTS:
        ours, theirs = with_hooks.open(path, method=method), without.open(path, method=method)
        assert (ours.status, ours.headers, ours.data) == (
            theirs.status,
            theirs.headers,
            theirs.data,
        )
        assert ours.is_streamed == theirs.is_streamed


def asgi_get(app: Any, method: str, path: str) -> list[dict[str, Any]]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"t")], "client": ("127.0.0.1", 1),
             "server": ("t", 80)}  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        finished = asyncio.Event()  # the client hangs up only once the response is complete

        requested: list[bool] = []

        async def receive() -> dict[str, Any]:
            if not requested:
                requested.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                finished.set()

        await app(scope, receive, send)

    asyncio.run(main())
    return sent


async def deliver(app: Any, body: bytes) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/webhooks/codat", content=body, headers={"Authorization": AUTH}
        )
        assert response.json()["outcome"] == "processed"


def test_fastapi_routes_are_identical_with_the_middleware(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load("fastapi_app", tmp_path, monkeypatch)
    wrapped = module.create_app()
    asyncio.run(deliver(wrapped, sample_body("Sync Completed")))
    app = module.create_app()  # the same app without the receiver (built before its first call)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not WebhookMiddleware]
    assert len(app.user_middleware) == len(wrapped.user_middleware) - 1
    for method, path in REQUESTS:
        assert asgi_get(wrapped, method, path) == asgi_get(app, method, path), path
    streamed = asgi_get(wrapped, "GET", "/alerts.ndjson")
    assert [m.get("more_body", False) for m in streamed[1:]][-1] is False
    assert len(streamed) > 2  # really streamed: several body messages, passed along one by one
