"""``GET <path>/health`` on the WSGI and ASGI adapters: no credentials, nothing revealed,
switched off with ``health=False``, never confused with a delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from codat_webhooks import Receiver, StoreError
from codat_webhooks.asgi import WebhookApp as AsgiApp
from codat_webhooks.asgi import WebhookMiddleware as AsgiMiddleware
from codat_webhooks.stores import MemoryStore
from codat_webhooks.wsgi import WebhookApp, WebhookMiddleware

OK = {"status": "ok"}


class DownStore(MemoryStore):
    """A store whose server does not answer (the real servers are in tests/stores)."""

    def ping(self) -> None:
        raise StoreError("connection refused to 10.0.0.7:6379 (password=hunter2)")


_made: list[Receiver] = []


@pytest.fixture(autouse=True)
def _close_receivers() -> Iterator[None]:
    """A receiver whose store is down keeps an outage watcher pinging until it is closed."""
    yield
    while _made:
        _made.pop().close()


def receiver(store: MemoryStore | None = None) -> Receiver:
    made = Receiver(
        authorization="Bearer s3cret", store=store or MemoryStore(), load_entrypoints=False
    )
    _made.append(made)
    return made


def rest(environ: object, start_response: Callable[..., object]) -> Any:
    return Response("the app", status=404)(environ, start_response)  # type: ignore[arg-type]


def test_wsgi_middleware_answers_health_without_credentials() -> None:
    client = Client(WebhookMiddleware(rest, receiver()))
    for path in ("/webhooks/codat/health", "/webhooks/codat/health/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json == OK
        assert response.headers["Cache-Control"] == "no-store"
    head = client.head("/webhooks/codat/health")
    assert (head.status_code, head.get_data()) == (200, b"")
    assert client.get("/webhooks/codat").status_code == 405  # the webhook path itself
    # a POST to .../health is not a probe: the middleware hands it to the receiver (401)
    assert client.post("/webhooks/codat/health", data=b"{}").status_code == 401
    assert client.get("/elsewhere/health").get_data() == b"the app"


def test_wsgi_health_can_be_turned_off() -> None:
    client = Client(WebhookMiddleware(rest, receiver(), health=False))
    assert client.get("/webhooks/codat/health").get_data() == b"the app"
    app = Client(WebhookApp(receiver(), health=False))
    assert app.get("/health").status_code == 405


def test_wsgi_unhealthy_store_is_503_and_says_nothing_more() -> None:
    client = Client(WebhookApp(receiver(DownStore())))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable"}
    assert int(response.headers["Retry-After"]) > 0
    for leak in (b"10.0.0.7", b"hunter2", b"6379", b"s3cret", b"Memory"):
        assert leak not in response.get_data()


def asgi_get(app: Any, path: str, method: str = "GET") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            return await client.request(method, path)

    return asyncio.run(go())


async def asgi_rest(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"the app"})


@pytest.mark.parametrize("path", ["/webhooks/codat/health", "/webhooks/codat/health/"])
def test_asgi_middleware_answers_health(path: str) -> None:
    response = asgi_get(AsgiMiddleware(asgi_rest, receiver()), path)
    assert (response.status_code, response.json()) == (200, OK)
    head = asgi_get(AsgiMiddleware(asgi_rest, receiver()), path, "HEAD")
    assert (head.status_code, head.content) == (200, b"")


def test_asgi_health_off_and_down() -> None:
    off = asgi_get(AsgiMiddleware(asgi_rest, receiver(), health=False), "/webhooks/codat/health")
    assert off.content == b"the app"
    down = asgi_get(AsgiApp(receiver(DownStore())), "/health")
    assert (down.status_code, down.json()) == (503, {"status": "unavailable"})
    assert b"hunter2" not in down.content
    assert asgi_get(AsgiApp(receiver()), "/").status_code == 405


def test_a_probe_is_no_delivery() -> None:
    seen: list[str] = []

    class Observer:
        from codat_webhooks import hookimpl

        @hookimpl
        def on_outcome(self, outcome: str) -> None:
            seen.append(outcome)

    probed = Receiver(
        authorization="Bearer s3cret",
        store=MemoryStore(),
        load_entrypoints=False,
        plugins=[Observer()],
    )
    assert Client(WebhookApp(probed)).get("/health").json == OK
    assert json.loads(probed.health().body) == OK
    assert seen == []
