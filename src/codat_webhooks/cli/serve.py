"""``codat-webhooks serve``: a receiver on a local port, one log line per delivery.

For development, demos and trying plugins before Codat ever calls you. It is werkzeug's
threaded server: fine on a laptop, not built for the internet.

``--app myapp.web:app`` serves your application's own receiver (its plugins, store and
credentials) at the path where the app mounts it, and the rest of the app with it: a WSGI app
(Flask, Django...) under werkzeug, an ASGI app (FastAPI, Starlette) under uvicorn. In
production run the app under a real server, for example:

  # WSGI: app = WebhookApp(receiver), from codat_webhooks.wsgi
  gunicorn -w 2 'myapp:app'
  # ASGI: app = WebhookApp(receiver), from codat_webhooks.asgi
  gunicorn -w 2 -k uvicorn_worker.UvicornWorker 'myapp:app'

(avoid plain uvicorn --workers N: it leaves TCP_NODELAY off and stalls keep-alive clients)

``--console`` also serves the deliveries console at ``/console`` on the same port, over the
receiver being served (password from $CODAT_WEBHOOKS_CONSOLE_PASSWORD).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import logging
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from ..delivery import Reply
from ..errors import ConfigurationError, PayloadError
from ..headers import HeaderInput
from ..outcomes import Outcome
from ..queues.local import LocalQueue
from ._app import LoadedApp, add_app_flag, load_app
from ._common import (
    ENV_AUTHORIZATION,
    ENV_SIGNING_SECRET,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_credential_flags,
    add_store_flags,
    command,
    credentials,
    open_store,
    plugin_label,
)
from ._console import CONSOLE_PATH, add_console_flags, console_for, mount_asgi, mount_wsgi

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..console import Console
    from ..receiver import Receiver

__all__ = ["LoggedReceiver", "add_parser", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_PATH = "/webhooks/codat"
METRICS_PATH = "/metrics"

_UNTRUSTED = frozenset({Outcome.UNAUTHORIZED, Outcome.TOO_LARGE, Outcome.METHOD_NOT_ALLOWED})


def add_parser(subparsers: Any) -> None:
    parser = command(
        subparsers, "serve", "run a receiver locally, logging one line per delivery", __doc__
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument(
        "--path", help=f"default: where --app mounts its receiver, else {DEFAULT_PATH}"
    )
    add_app_flag(parser)
    add_store_flags(parser)
    add_credential_flags(parser)
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="accept deliveries without credentials (local experiments only)",
    )
    parser.add_argument(
        "--no-plugins", action="store_true", help="do not load plugins from entry points"
    )
    parser.add_argument(
        "--queued",
        action="store_true",
        help="answer 202 at once and run hooks on worker threads (codat_webhooks.queues)",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help=f"also serve Prometheus metrics at {METRICS_PATH} (extra [prometheus])",
    )
    add_console_flags(parser)
    parser.set_defaults(run=run)


class LoggedReceiver:
    """Stands in for a receiver in the WSGI adapter and prints one line per delivery:
    ``time key type company status outcome ms``.

    A wrapper rather than a subclass, so an application's own receiver (``--app``) is logged
    without being rebuilt. Timing wraps ``handle`` itself, so the figure is the receiver's work
    (verify, parse, claim, hooks), not the network. The type and company are read by the same
    routing the receiver uses, and only for deliveries that got past authentication, so an
    anonymous prober cannot write what it likes into the log.
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.max_body_bytes = receiver.max_body_bytes

    def handle(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        started = time.perf_counter()
        reply = self.receiver.handle(method, headers, body, force=force)
        self._log(reply, body, started)
        return reply

    def reject_too_large(self, method: str, headers: HeaderInput, size: int | None) -> Reply:
        started = time.perf_counter()
        reply = self.receiver.reject_too_large(method, headers, size)
        self._log(reply, b"", started)
        return reply

    async def handle_async(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        started = time.perf_counter()
        reply = await self.receiver.handle_async(method, headers, body, force=force)
        self._log(reply, body, started)
        return reply

    async def reject_too_large_async(
        self, method: str, headers: HeaderInput, size: int | None
    ) -> Reply:
        started = time.perf_counter()
        reply = await self.receiver.reject_too_large_async(method, headers, size)
        self._log(reply, b"", started)
        return reply

    def health(self) -> Reply:
        return self.receiver.health()

    async def health_async(self) -> Reply:
        return await self.receiver.health_async()

    def _log(self, reply: Reply, body: bytes, started: float) -> None:
        millis = (time.perf_counter() - started) * 1000
        kind, company = self._describe(reply, body)
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        line = (
            f"{stamp}  {reply.key or '-'}  {kind}  company={company}  "
            f"{reply.status} {reply.outcome}  {millis:.1f} ms\n"
        )
        sys.stdout.write(line)  # one write: lines from concurrent requests never interleave
        sys.stdout.flush()

    @staticmethod
    def _describe(reply: Reply, body: bytes) -> tuple[str, str]:
        if reply.outcome in _UNTRUSTED:
            return "-", "-"
        from ..models._parse import load_object  # already imported by the receiver
        from ..routing import route

        try:
            routed = route(load_object(body))
        except PayloadError:
            return "(invalid)", "-"
        return repr(routed.kind or "?"), routed.company_id or "-"


def run(args: argparse.Namespace) -> int:
    if args.path is not None and not args.path.startswith("/"):
        raise CommandError(f"--path must start with '/', got {args.path!r}", EXIT_USAGE)
    app = load_app(args, serving=True)
    receiver = _app_receiver(args, app) if app is not None else _own_receiver(args)
    path = args.path or (app.path if app is not None else None) or DEFAULT_PATH
    try:
        if args.metrics:
            _count(receiver)
        console = console_for(args, receiver)
        return _serve(args, receiver, path, app, console)
    finally:
        receiver.close()


def _own_receiver(args: argparse.Namespace) -> Receiver:
    from ..receiver import Receiver  # here, so that the other commands never import pydantic

    authorization, secrets = credentials(args)
    if not authorization and not secrets and not args.insecure:
        raise CommandError(
            "no credentials: pass --authorization 'Bearer ...' (the value set in the Codat "
            f"Portal) or --signing-secret whsec_... (or set {ENV_AUTHORIZATION} / "
            f"{ENV_SIGNING_SECRET}); use --insecure only for local experiments",
            EXIT_USAGE,
        )
    store = open_store(args, create=True)
    try:
        return Receiver(
            authorization=authorization or None,
            signing_secrets=secrets or None,
            store=store,
            insecure=args.insecure,
            load_entrypoints=not args.no_plugins,
            queue=LocalQueue() if args.queued else None,
        )
    except ConfigurationError as exc:
        store.close()
        raise CommandError(str(exc)) from None


def _app_receiver(args: argparse.Namespace, app: LoadedApp) -> Receiver:
    """The app's receiver as it is, or on the store ``--db``/``--redis-url`` names."""
    from ..receiver import Receiver

    given = [
        flag
        for flag, value in (
            ("--authorization", args.authorization),
            ("--signing-secret", args.signing_secret),
            ("--insecure", args.insecure),
            ("--no-plugins", args.no_plugins),
            ("--queued", args.queued),
        )
        if value
    ]
    if given:
        raise CommandError(
            f"{', '.join(given)}: with --app, the app's receiver decides credentials, "
            "plugins and queue; configure them where the app builds its Receiver",
            EXIT_USAGE,
        )
    own = app.receiver
    if not args.db and not args.redis_url:
        return own
    return Receiver(
        store=open_store(args, create=True),
        max_body_bytes=own.max_body_bytes,
        lease=own.lease,
        retry_after=own.retry_after,
        authenticator=own.authenticator,
        dispatcher=own.dispatcher,
    )


def _serve(
    args: argparse.Namespace,
    receiver: Receiver,
    path: str,
    app: LoadedApp | None,
    console: Console | None,
) -> int:
    if app is not None and app.is_asgi and _has_uvicorn():
        return _serve_asgi(args, receiver, path, app, console)
    from werkzeug.serving import make_server

    from ..wsgi import WebhookMiddleware

    rest = _rest_of(app)
    if args.metrics:
        rest = _with_metrics_wsgi(rest, receiver)
    logged = cast("Receiver", LoggedReceiver(receiver))  # duck-typed: the adapter needs 3 members
    wsgi_app = mount_wsgi(WebhookMiddleware(rest, logged, path=path), console)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # we print our own line per delivery
    address = f"{args.host}:{args.port}"
    # werkzeug prints its own paragraph before exiting on a busy port: ours is the one line.
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            server = make_server(args.host, args.port, wsgi_app, threaded=True)
        except OSError as exc:
            raise CommandError(f"cannot listen on {address}: {exc.strerror}") from None
        except SystemExit:  # werkzeug exits when the port is taken
            raise CommandError(f"cannot listen on {address}: address already in use") from None

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, which runs in this very thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    _banner(args, receiver, server.port, path, app, console)
    if app is not None and app.is_asgi:
        print("note: only the receiver is served; install uvicorn to serve the whole app")
    print("press Ctrl+C to stop", flush=True)
    server.serve_forever()
    server.server_close()
    print("stopped", flush=True)
    return EXIT_OK


def _has_uvicorn() -> bool:
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True


def _serve_asgi(
    args: argparse.Namespace,
    receiver: Receiver,
    path: str,
    app: LoadedApp,
    console: Console | None,
) -> int:
    """The whole ASGI app under uvicorn, with the receiver's path logged one line per delivery."""
    import uvicorn

    from ..asgi import ASGIApp, WebhookMiddleware

    logged = cast("Receiver", LoggedReceiver(receiver))
    target = cast(ASGIApp, app.target)
    if args.metrics:
        target = _with_metrics_asgi(target, receiver)
    asgi_app = mount_asgi(WebhookMiddleware(target, logged, path=path), console)
    listener = _listen(args.host, args.port)
    config = uvicorn.Config(asgi_app, log_level="warning", access_log=False)
    _banner(args, receiver, listener.getsockname()[1], path, app, console)
    print("press Ctrl+C to stop", flush=True)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal through the handler
    # that was installed before it: make that one a no-op, so stopping is a clean exit 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _ignore)
    uvicorn.Server(config).run(sockets=[listener])
    listener.close()
    print("stopped", flush=True)
    return EXIT_OK


def _count(receiver: Receiver) -> None:
    """Register the Prometheus plugin on ``receiver`` (``--metrics``)."""
    try:
        from ..plugins.prometheus import PrometheusMetrics
    except ImportError:
        raise CommandError(
            "--metrics needs prometheus-client: pip install 'codat-webhooks[prometheus]'",
            EXIT_USAGE,
        ) from None
    metrics = PrometheusMetrics()
    receiver.plugin_manager.register(metrics, name="codat_webhooks.prometheus")
    metrics.watch(receiver)


def _with_metrics_wsgi(rest: WSGIApplication, receiver: Receiver) -> WSGIApplication:
    from ..plugins.prometheus import metrics_wsgi_app

    metrics = metrics_wsgi_app(receiver.store)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        target = metrics if environ.get("PATH_INFO") == METRICS_PATH else rest
        return target(environ, start_response)

    return app


def _with_metrics_asgi(rest: Any, receiver: Receiver) -> Any:
    from ..plugins.prometheus import metrics_asgi_app

    metrics = metrics_asgi_app(receiver.store)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        is_metrics = scope["type"] == "http" and scope["path"] == METRICS_PATH
        await (metrics if is_metrics else rest)(scope, receive, send)

    return app


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A signal that has already been handled (by uvicorn's graceful shutdown)."""


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so a busy port is our one error line, not a log."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(info[0], socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(info[4])
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise CommandError(f"cannot listen on {host}:{port}: {reason}") from None
    listener.listen(2048)
    return listener


def _banner(
    args: argparse.Namespace,
    receiver: Receiver,
    port: int,
    path: str,
    app: LoadedApp | None,
    console: Console | None,
) -> None:
    if not receiver.authenticator.secured:
        print("WARNING: --insecure: accepting deliveries without credentials", file=sys.stderr)
    manager = receiver.plugin_manager
    plugins = [
        plugin_label(manager, plugin)
        for name, plugin in manager.list_name_plugin()
        if not (name or "").startswith("codat_webhooks.")
    ]
    origin = f"  app={app.spec}" if app is not None else ""
    print(
        f"codat-webhooks listening on http://{args.host}:{port}{path}  "
        f"store={type(receiver.store).__name__}  plugins={', '.join(plugins) or 'none'}{origin}",
        flush=True,
    )
    if getattr(args, "metrics", False):
        print(f"metrics at http://{args.host}:{port}{METRICS_PATH}", flush=True)
    if console is not None:
        lock = "NO PASSWORD (loopback only)" if console.insecure else "password required"
        print(f"deliveries console on http://{args.host}:{port}{CONSOLE_PATH}/  ({lock})")


def _rest_of(app: LoadedApp | None) -> WSGIApplication:
    """What answers every other path: a WSGI app loaded with ``--app``, else a 404."""
    from ..receiver import Receiver

    if app is None or app.is_asgi or isinstance(app.target, Receiver) or not callable(app.target):
        return _not_found
    return cast("WSGIApplication", app.target)


def _not_found(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    body = b'{"detail":"not found: POST to the webhook path"}'
    start_response(
        "404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
