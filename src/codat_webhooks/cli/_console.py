"""``serve --console``: the deliveries console beside the receiver, at ``/console``.

The console reads and replays through the receiver being served (the app's, with ``--app``).
Its password comes from ``$CODAT_WEBHOOKS_CONSOLE_PASSWORD``, never from the command line
(where ``ps`` shows it to everyone); ``--console-insecure`` serves it without one, and only on
a loopback address.
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ._common import EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from ..console import Console
    from ..receiver import Receiver

__all__ = ["CONSOLE_PATH", "add_console_flags", "console_for", "mount_asgi", "mount_wsgi"]

CONSOLE_PATH = "/console"


def add_console_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--console",
        action="store_true",
        help=f"also serve the deliveries console at {CONSOLE_PATH} (needs the console extra; "
        "password from $CODAT_WEBHOOKS_CONSOLE_PASSWORD)",
    )
    parser.add_argument(
        "--console-insecure",
        action="store_true",
        help="with --console: no password, for a console on a loopback --host only",
    )


def console_for(args: argparse.Namespace, receiver: Receiver) -> Console | None:
    """The console ``--console`` asks for, on ``receiver``; ``None`` without the flag."""
    if not args.console:
        if args.console_insecure:
            raise CommandError("--console-insecure goes with --console", EXIT_USAGE)
        return None
    if args.console_insecure and not _is_loopback(args.host):
        raise CommandError(
            f"--console-insecure on --host {args.host}: a console without a password is served "
            "on a loopback address only",
            EXIT_USAGE,
        )
    try:
        from ..console import Console
    except ImportError as exc:
        raise CommandError(
            f"--console needs the console extra: pip install 'codat-webhooks[console]' ({exc})"
        ) from None
    try:
        return Console(receiver, insecure=args.console_insecure)
    except ConfigurationError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def mount_wsgi(app: WSGIApplication, console: Console | None) -> WSGIApplication:
    if console is None:
        return app
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    return DispatcherMiddleware(app, {CONSOLE_PATH: console})


def mount_asgi(app: Any, console: Console | None) -> Any:
    """``app`` with the console's ASGI app answering under ``/console``."""
    if console is None:
        return app
    inner = console.asgi()

    async def mounted(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (
            path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")
        ):
            root = scope.get("root_path", "") + CONSOLE_PATH
            await inner({**scope, "root_path": root}, receive, send)
            return
        await app(scope, receive, send)

    return mounted


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
