"""The ASGI adapter in-process: raw ASGI messages, and mounted in FastAPI and Starlette."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

from codat_webhooks import ConfigurationError, Receiver
from codat_webhooks.asgi import WebhookApp, WebhookMiddleware
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body, sign

from .conftest import AUTH, LIMIT, SECRET, Recorder

PATH = "/webhooks/codat"
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]


def http_scope(path: str = PATH, *, root_path: str = "", headers: Any = ()) -> dict[str, Any]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in dict(headers).items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": raw,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }


def run(app: Any, scope: dict[str, Any], receive: Receive) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def feed(*chunks: bytes, then: Message | None = None) -> Receive:
    """``receive`` that hands out ``chunks`` as one body, then ``then`` (or fails loudly)."""
    queue: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    if then is not None:
        queue[-1]["more_body"] = True
        queue.append(then)

    async def receive() -> Message:
        assert queue, "the adapter read past the end of the request"
        return queue.pop(0)

    return receive


def reply_of(sent: list[Message]) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    start, body = sent
    assert body["type"] == "http.response.body"
    return start["status"], dict(start["headers"]), json.loads(body["body"])


def test_every_seed_is_processed_from_streamed_raw_bytes(
    seed_body: bytes, receiver: Receiver, recorder: Recorder
) -> None:
    headers = sign(seed_body, SECRET)
    pieces = [seed_body[i : i + 100] for i in range(0, len(seed_body), 100)]
    sent = run(WebhookApp(receiver), http_scope(headers=headers), feed(*pieces))
    status, raw_headers, reply = reply_of(sent)
    assert (status, reply["outcome"], reply["key"]) == (200, "processed", headers["webhook-id"])
    assert raw_headers[b"content-length"] == str(len(sent[1]["body"])).encode()
    assert ("sync on_alert", headers["webhook-id"]) in recorder.calls


def test_sync_and_async_hooks_run_and_duplicates_do_not(
    receiver: Receiver, recorder: Recorder
) -> None:
    body = sample_body("DataConnectionStatusChanged")
    app = WebhookMiddleware(WebhookApp(receiver), receiver)
    scope = http_scope(headers={"Authorization": AUTH})
    outcomes = [reply_of(run(app, scope, feed(body)))[2]["outcome"] for _ in range(2)]
    assert outcomes == ["processed", "duplicate"]
    assert recorder.kinds() == ["async status changed", "sync on_alert"]


async def must_not_receive() -> Message:
    raise AssertionError("the adapter read a body it should have refused unread")


def test_oversize_content_length_is_refused_before_reading(
    receiver: Receiver, recorder: Recorder, store: MemoryStore
) -> None:
    scope = http_scope(headers={"Authorization": AUTH, "Content-Length": str(LIMIT + 1)})
    status, _, reply = reply_of(run(WebhookApp(receiver), scope, must_not_receive))
    assert (status, reply["outcome"]) == (413, "too_large")
    assert recorder.calls == [("rejected", "too_large")]
    assert store.find() == []


def test_oversize_chunked_body_is_cut_off_at_the_limit(
    receiver: Receiver, recorder: Recorder, store: MemoryStore
) -> None:
    pulled = 0

    async def endless() -> Message:
        nonlocal pulled
        pulled += 1000
        return {"type": "http.request", "body": b" " * 1000, "more_body": True}

    scope = http_scope(headers={"Authorization": AUTH, "Transfer-Encoding": "chunked"})
    status, _, reply = reply_of(run(WebhookApp(receiver), scope, endless))
    assert (status, reply["outcome"]) == (413, "too_large")
    assert LIMIT < pulled <= LIMIT + 1000
    assert recorder.calls == [("rejected", "too_large")]
    assert store.find() == []


def test_client_disconnect_mid_body_runs_nothing(
    receiver: Receiver, recorder: Recorder, store: MemoryStore
) -> None:
    body = sample_body("Data sync completed")
    scope = http_scope(headers={"Authorization": AUTH})
    sent = run(WebhookApp(receiver), scope, feed(body, then={"type": "http.disconnect"}))
    assert sent == []
    assert recorder.calls == []
    assert store.find() == []


def test_other_scopes_and_paths_reach_the_app_untouched(receiver: Receiver) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    middleware = WebhookMiddleware(app, receiver)
    scopes = [
        {"type": "lifespan", "asgi": {"version": "3.0"}},
        {**http_scope(PATH), "type": "websocket"},
        http_scope("/webhooks/codat/x"),
        http_scope("/webhooks/codatx"),
        http_scope("/"),
        http_scope("/api/webhooks/codat/x", root_path="/api"),
    ]

    async def send(message: Any) -> None:
        raise AssertionError("the middleware answered a request that was not its own")

    for scope in scopes:
        asyncio.run(middleware(scope, must_not_receive, send))
    assert seen == [(scope, must_not_receive, send) for scope in scopes]


def test_path_is_matched_relative_to_root_path(receiver: Receiver, recorder: Recorder) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a webhook request reached the app")

    middleware = WebhookMiddleware(app, receiver)
    scope = http_scope("/api/webhooks/codat", root_path="/api", headers={"Authorization": AUTH})
    _, _, reply = reply_of(run(middleware, scope, feed(sample_body("Sync Failed"))))
    assert reply["outcome"] == "processed"
    with pytest.raises(ConfigurationError):
        WebhookMiddleware(app, receiver, path="webhooks")


def test_served_alone_it_acknowledges_lifespan_and_refuses_websockets(receiver: Receiver) -> None:
    app = WebhookApp(receiver)
    lifespan = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def next_lifespan() -> Message:
        return lifespan.pop(0)

    sent = run(app, {"type": "lifespan"}, next_lifespan)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent = run(app, {**http_scope(), "type": "websocket"}, must_not_receive)
    assert sent == [{"type": "websocket.close", "code": 1008}]


def mounted_apps(receiver: Receiver) -> list[tuple[str, Any]]:
    added = FastAPI()
    # Starlette types endpoints as request handlers; an ASGI app is accepted as well.
    added.add_route(PATH, WebhookApp(receiver), methods=["POST", "PUT"])  # type: ignore[arg-type]
    # A Starlette mount serves what is *under* its prefix: "/webhooks/codat" itself gets a 307
    # to "/webhooks/codat/", which Svix counts as a failure, so Codat needs the slash URL.
    mounted = Starlette()
    mounted.mount(PATH, WebhookApp(receiver))
    wrapped = FastAPI()
    wrapped.add_middleware(WebhookMiddleware, receiver=receiver)
    under_prefix = Starlette()
    under_prefix.mount("/api", WebhookMiddleware(FastAPI(), receiver))
    return [(PATH, added), (PATH + "/", mounted), (PATH, wrapped), ("/api" + PATH, under_prefix)]


def test_fastapi_add_route_mount_and_middleware(receiver: Receiver, recorder: Recorder) -> None:
    async def exercise() -> list[tuple[int, str]]:
        results = []
        for url, app in mounted_apps(receiver):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                body = sample_body("Dataset data changed")
                response = await client.put(url, content=body, headers={"Authorization": AUTH})
                results.append((response.status_code, response.json()["outcome"]))
        return results

    assert asyncio.run(exercise()) == [(200, "processed")] * 4
    assert recorder.kinds() == ["sync on_alert"] * 4


def test_fastapi_add_route_leaves_other_methods_to_fastapi(receiver: Receiver) -> None:
    app = FastAPI()
    app.add_route(PATH, WebhookApp(receiver), methods=["POST", "PUT"])  # type: ignore[arg-type]

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(PATH)

    assert asyncio.run(get()).status_code == 405
