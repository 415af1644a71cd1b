"""
ASGI adapter
============

Serve a :class:`~codat_webhooks.Receiver` from any ASGI application (FastAPI, Starlette,
Quart, ...) or on its own, without importing any framework::

    from codat_webhooks.asgi import WebhookMiddleware
    app.add_middleware(WebhookMiddleware, receiver=receiver)   # FastAPI, Starlette
    app = WebhookMiddleware(app, receiver, path="/webhooks/codat")   # any ASGI app

The middleware matches ``path`` relative to the ``root_path`` the application is mounted at, with
and without a trailing slash (both are answered, never redirected: Codat counts a 3xx as a failed
delivery), and passes every other request, websocket and lifespan scope to ``app``.
:class:`WebhookApp` is the receiver as a bare ASGI app. As a route, add it for both spellings
(``app.add_route(p, WebhookApp(receiver), methods=["POST", "PUT"])`` for ``/webhooks/codat`` and
``/webhooks/codat/``): a router's route matches one spelling and Starlette redirects the other
with a 307, as ``app.mount`` does for the bare path. Both answer ``GET <path>/health`` for
load balancers and probes (200 when the store answers, 503 otherwise; ``health=False`` to turn
it off).

The body is streamed as raw bytes and never buffered past ``receiver.max_body_bytes``: an
oversize ``Content-Length`` is answered 413 before reading, a chunked one as soon as it passes
the limit. If the client disconnects mid-body the receiver is not called at all. The receiver's
``handle_async`` runs sync hooks and blocking stores in threads, so the event loop never waits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .delivery import Reply
from .mounting import answered_paths
from .receiver import Receiver, TooLarge

__all__ = ["WebhookApp", "WebhookMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _declared_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length":
            return int(value) if value.strip().isdigit() else None
    return None


async def _read_body(receive: Receive, declared: int | None, limit: int) -> bytes | TooLarge | None:
    """The raw body, a :class:`TooLarge` marker, or ``None`` if the client disconnected."""
    if declared is not None and declared > limit:
        return TooLarge(declared)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return TooLarge(declared)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown when :class:`WebhookApp` is served on its own."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class WebhookApp:
    """The receiver as an ASGI application: every HTTP request it gets is a delivery, except
    ``GET .../health`` (unless ``health=False``), answered by :meth:`Receiver.health_async`."""

    def __init__(self, receiver: Receiver, *, health: bool = True) -> None:
        self.receiver = receiver
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})  # policy violation
        if scope["type"] != "http":
            return None
        method: str = scope["method"]
        if self.health and method in ("GET", "HEAD") and _is_health(scope):
            reply = await self.receiver.health_async()
            return await _send_reply(send, reply, with_body=method == "GET")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        limit = self.receiver.max_body_bytes
        body = await _read_body(receive, _declared_length(headers), limit)
        if body is None:
            return None  # nobody is left to answer, and a partial body must not be processed
        if isinstance(body, TooLarge):
            reply = await self.receiver.reject_too_large_async(method, headers, body.size)
        else:
            reply = await self.receiver.handle_async(method, headers, body)
        return await _send_reply(send, reply)


async def _send_reply(send: Send, reply: Reply, *, with_body: bool = True) -> None:
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": reply.body if with_body else b""})


def _is_health(scope: Scope) -> bool:
    """A probe's path: ``.../health``; no delivery is ever a ``GET``."""
    return _route_path(scope).rstrip("/").endswith("/health")


class WebhookMiddleware:
    """Answers ``path`` (and ``path/health``, unless ``health=False``) with
    :class:`WebhookApp` and passes everything else to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        receiver: Receiver,
        path: str = "/webhooks/codat",
        *,
        health: bool = True,
    ) -> None:
        self._paths = set(answered_paths(path, health=health))
        self.app = app
        self.webhook = WebhookApp(receiver, health=health)
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _route_path(scope) in self._paths:
            return await self.webhook(scope, receive, send)
        return await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """``path`` relative to ``root_path``: servers and routers put the mount prefix in both."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path
