"""
WSGI adapter
============

Serve a :class:`~codat_webhooks.Receiver` from any WSGI application (Flask, Django, Pyramid,
a bare ``werkzeug`` app) or on its own. The middleware answers one path and hands every other
request to the wrapped application untouched, so installing it changes nothing else::

    from codat_webhooks.wsgi import WebhookMiddleware
    app.wsgi_app = WebhookMiddleware(app.wsgi_app, receiver, path="/webhooks/codat")

``path`` is matched against ``PATH_INFO``, i.e. relative to where the application is mounted
(``SCRIPT_NAME``, ``DispatcherMiddleware``), with and without a trailing slash: both spellings are
answered directly, never redirected, because Codat counts a 3xx as a failed delivery.
:class:`WebhookApp` is the receiver as a stand-alone WSGI application, for mounting with
``DispatcherMiddleware`` or serving directly. Both answer ``GET <path>/health`` for load
balancers and probes (200 when the store answers, 503 otherwise; ``health=False`` to turn off).

The body is read as raw bytes, never more than ``receiver.max_body_bytes``: an oversize
``Content-Length`` is answered 413 before reading anything, and a chunked body (servers that set
``wsgi.input_terminated``, like gunicorn) is cut off as soon as it passes the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length

from .mounting import answered_paths
from .receiver import Receiver, TooLarge

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["WebhookApp", "WebhookMiddleware"]

_CHUNK = 65_536


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes | TooLarge | None:
    """The raw body, a :class:`TooLarge` marker, or ``None`` if the client went away early."""
    stream = environ["wsgi.input"]
    declared = get_content_length(environ)  # None for chunked or missing, 0 if invalid
    if declared is not None:
        if declared > limit:
            return TooLarge(declared)
        chunks, remaining = [], declared
        while remaining:
            chunk = stream.read(min(remaining, _CHUNK))
            if not chunk:
                return None  # fewer bytes than promised: the request is truncated
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    if not environ.get("wsgi.input_terminated"):
        return b""  # PEP 3333: without a length the server may not end the stream for us
    chunks, size = [], 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            return TooLarge(None)
        chunks.append(chunk)
    return b"".join(chunks)


def _is_health(method: str, path: str) -> bool:
    """A probe: ``GET`` (or ``HEAD``) of ``.../health``; no delivery is ever a ``GET``."""
    return method in _PROBE_METHODS and path.rstrip("/").endswith("/health")


_PROBE_METHODS = ("GET", "HEAD")


class WebhookApp:
    """The receiver as a WSGI application: every request it gets is a delivery, except
    ``GET .../health`` (unless ``health=False``), answered by :meth:`Receiver.health`."""

    def __init__(self, receiver: Receiver, *, health: bool = True) -> None:
        self.receiver = receiver
        self.health = health

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method: str = environ["REQUEST_METHOD"]
        if self.health and _is_health(method, environ.get("PATH_INFO", "")):
            reply = self.receiver.health()
            start_response(_status_line(reply.status), list(reply.headers))
            return [] if method == "HEAD" else [reply.body]
        headers = list(EnvironHeaders(environ).items())
        body = _read_body(environ, self.receiver.max_body_bytes)
        if body is None:
            start_response("400 Bad Request", [("Content-Length", "0")])
            return []
        if isinstance(body, TooLarge):
            reply = self.receiver.reject_too_large(method, headers, body.size)
        else:
            reply = self.receiver.handle(method, headers, body)
        start_response(_status_line(reply.status), list(reply.headers))
        return [reply.body]


def _status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}"


class WebhookMiddleware:
    """Answers ``path`` (and ``path/health``, unless ``health=False``) with
    :class:`WebhookApp` and passes everything else to ``app``."""

    def __init__(
        self,
        app: WSGIApplication,
        receiver: Receiver,
        path: str = "/webhooks/codat",
        *,
        health: bool = True,
    ) -> None:
        paths = answered_paths(path, health=health)
        # PATH_INFO holds the URL-decoded path as latin-1 characters of its UTF-8 bytes.
        self._path_infos = {p.encode().decode("latin-1") for p in paths}
        self.app = app
        self.webhook = WebhookApp(receiver, health=health)
        self.path = path

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in self._path_infos:
            return self.webhook(environ, start_response)
        return self.app(environ, start_response)
