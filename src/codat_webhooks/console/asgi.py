"""The console as an ASGI application: each request runs the WSGI console on a worker thread.

Native rather than asgiref's ``WsgiToAsgi``, whose thread-sensitive executor breaks when the
same event loop also serves the receiver's async path. The console's requests are small forms,
so the body is read whole (at most ``MAX_BODY`` bytes) before the WSGI call.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..asgi import Receive, Scope, Send

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["MAX_BODY", "WsgiOnThreads"]

MAX_BODY = 1 << 20
"""The largest request body the console reads: its forms are a few hundred bytes."""


class WsgiOnThreads:
    """``app`` (WSGI) answering HTTP scopes; lifespan is acknowledged, other scopes refused."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            raise RuntimeError(f"the console serves HTTP only, not {scope['type']!r}")
        body = await _read_body(receive)
        if body is None:
            await _answer(send, 413, [(b"content-length", b"0")], b"")
            return
        status, headers, content = await asyncio.to_thread(self._call, scope, body)
        await _answer(send, status, headers, content)

    def _call(self, scope: Scope, body: bytes) -> tuple[int, list[Any], bytes]:
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [int(status.split(" ", 1)[0]), headers]
            return lambda data: None  # the console never calls write()

        chunks = self.app(_environ(scope, body), start_response)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in started[1]
        ]
        return started[0], raw, content


async def _read_body(receive: Receive) -> bytes | None:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _answer(send: Send, status: int, headers: Iterable[Any], content: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": content})


def _environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ for an ASGI HTTP scope (PEP 3333 strings: latin-1 for bytes)."""
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0],
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[name] = value
            continue
        key = f"HTTP_{name}"
        joiner = "; " if name == "COOKIE" else ","  # HTTP/2 may send cookies one per header
        environ[key] = f"{environ[key]}{joiner}{value}" if key in environ else value
    environ["CONTENT_LENGTH"] = str(len(body))  # what was read, whatever the header said
    return environ
