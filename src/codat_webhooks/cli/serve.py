"""``codat-webhooks serve``: a receiver on a local port, one log line per delivery.

For development, demos and trying plugins before Codat ever calls you. It is werkzeug's
threaded server: fine on a laptop, not built for the internet. In production run the same
receiver under a real server, for example:

  gunicorn -w 2 'myapp:app'            # app = WebhookApp(receiver) from codat_webhooks.wsgi
  gunicorn -w 2 -k uvicorn_worker.UvicornWorker 'myapp:app'   # app from codat_webhooks.asgi

(avoid plain ``uvicorn --workers N``: it leaves TCP_NODELAY off and stalls keep-alive clients)
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from types import FrameType
from typing import Any

from ..delivery import Outcome, Reply
from ..errors import ConfigurationError, PayloadError
from ..headers import HeaderInput
from ..models._parse import load_object
from ..receiver import Receiver
from ..routing import route
from ._common import (
    ENV_AUTHORIZATION,
    ENV_SIGNING_SECRET,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_credential_flags,
    add_store_flags,
    credentials,
    open_store,
)

__all__ = ["LoggingReceiver", "add_parser", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_PATH = "/webhooks/codat"

_UNTRUSTED = frozenset({Outcome.UNAUTHORIZED, Outcome.TOO_LARGE, Outcome.METHOD_NOT_ALLOWED})


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run a receiver locally, logging one line per delivery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--path", default=DEFAULT_PATH, help=f"default {DEFAULT_PATH}")
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
    parser.set_defaults(run=run)


class LoggingReceiver(Receiver):
    """A receiver that prints ``time key type company status outcome ms`` for each delivery.

    Timing wraps :meth:`handle` itself, so the figure is the receiver's work (verify, parse,
    claim, hooks), not the network. The type and company are read by the same routing the
    receiver uses, and only for deliveries that got past authentication, so an anonymous
    prober cannot write what it likes into the log.
    """

    def handle(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        started = time.perf_counter()
        reply = super().handle(method, headers, body, force=force)
        millis = (time.perf_counter() - started) * 1000
        kind, company = self._describe(reply, body)
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        print(
            f"{stamp}  {reply.key or '-'}  {kind}  company={company}  "
            f"{reply.status} {reply.outcome}  {millis:.1f} ms",
            flush=True,
        )
        return reply

    @staticmethod
    def _describe(reply: Reply, body: bytes) -> tuple[str, str]:
        if reply.outcome in _UNTRUSTED:
            return "-", "-"
        try:
            routed = route(load_object(body))
        except PayloadError:
            return "(invalid)", "-"
        return repr(routed.kind or "?"), routed.company_id or "-"


def run(args: argparse.Namespace) -> int:
    if not args.path.startswith("/"):
        raise CommandError(f"--path must start with '/', got {args.path!r}", EXIT_USAGE)
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
        receiver = LoggingReceiver(
            authorization=authorization or None,
            signing_secrets=secrets or None,
            store=store,
            insecure=args.insecure,
            load_entrypoints=not args.no_plugins,
        )
    except ConfigurationError as exc:
        store.close()
        raise CommandError(str(exc)) from None
    try:
        return _serve(args, receiver)
    finally:
        receiver.close()


def _serve(args: argparse.Namespace, receiver: Receiver) -> int:
    from werkzeug.serving import make_server

    from ..wsgi import WebhookMiddleware

    app = WebhookMiddleware(_not_found, receiver, path=args.path)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # we print our own line per delivery
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    except SystemExit:  # werkzeug exits when the port is taken
        raise CommandError(f"cannot listen on {args.host}:{args.port}: address in use") from None

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, which runs in this very thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if args.insecure and not receiver.authenticator.secured:
        print("WARNING: --insecure: accepting deliveries without credentials", file=sys.stderr)
    plugins = [
        name
        for name, _ in receiver.plugin_manager.list_name_plugin()
        if name and not name.startswith("codat_webhooks.")
    ]
    print(
        f"codat-webhooks listening on http://{args.host}:{server.port}{args.path}  "
        f"store={type(receiver.store).__name__}  plugins={', '.join(plugins) or 'none'}",
        flush=True,
    )
    print("press Ctrl+C to stop", flush=True)
    server.serve_forever()
    server.server_close()
    print("stopped", flush=True)
    return EXIT_OK


def _not_found(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = b'{"detail":"not found: POST to the webhook path"}'
    start_response(
        "404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
