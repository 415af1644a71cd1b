"""``codat-webhooks worker --app myapp.hooks:receiver``: run queued deliveries from the store.

A separate process that drains what web processes record as ``queued``: it loads your
application's receiver (its store and plugins), polls the store for keys that are due (new,
retried after their backoff, or left by a dead worker once its lease ran out) and runs them on
``--threads`` threads through the same pipeline as any worker. Run as many as you like against
one store: each key is claimed by one of them. Stop it with SIGTERM or Ctrl+C; keys it was
running finish first, keys it had not started stay ``queued`` for the next worker.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any

from ..queues.local import LocalQueue
from ._app import add_app_flag, load_app
from ._common import EXIT_OK, EXIT_USAGE, CommandError, command, positive_int

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = command(
        subparsers,
        "worker",
        "run queued deliveries of your app's receiver from its store",
        __doc__,
        epilog="example:\n  codat-webhooks worker --app myapp.hooks:receiver --threads 8",
    )
    add_app_flag(parser)
    parser.add_argument("--threads", type=positive_int, default=4, help="default 4")
    parser.add_argument(
        "--poll", type=float, default=0.2, help="seconds between looks at the store (default 0.2)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    app = load_app(args)
    if app is None:
        raise CommandError(
            "worker needs --app MODULE:ATTRIBUTE (or CODAT_WEBHOOKS_APP)", EXIT_USAGE
        )
    if args.poll <= 0:
        raise CommandError("--poll must be a positive number of seconds", EXIT_USAGE)
    receiver = app.receiver
    drain = LocalQueue(workers=args.threads, stale_after=0, sweep_every=args.poll)
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    drain.bind(receiver)
    print(
        f"worker: running queued deliveries from {receiver.store!r} on {args.threads} threads",
        flush=True,
    )
    try:
        stopped.wait()
    finally:
        drain.close()
        receiver.close()
    return EXIT_OK
