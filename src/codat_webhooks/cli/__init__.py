"""The ``codat-webhooks`` command line: see webhooks work before Codat ever calls you.

Subcommands: ``serve`` a receiver locally, ``trigger`` realistic deliveries at it, list
``samples``, inspect stored deliveries (``events``, ``show``) and what needs a person
(``status``), ``replay`` failed or parked ones after a fix (or ``resend`` them to a running
receiver), ``purge`` old ones, run queued deliveries on a ``worker``, list ``plugins`` and
``verify`` a captured request.
``--app MODULE:ATTRIBUTE`` makes a command use your application's own receiver: its store,
plugins and settings. ``--json`` prints one JSON object per line.

Exit status: 0 on success, 1 when the operation failed, 2 on a usage error. Expected failures
print one ``codat-webhooks: error: ...`` line, never a traceback; ``-v`` adds the traceback of
a failing hook or of an application that cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import CodatWebhookError
from . import info, records, replay, resend, serve, status, trigger, worker
from ._common import EXIT_FAILED, CommandError, HelpFormatter, first_line, plain
from ._logs import one_line_logs

__all__ = ["build_parser", "main"]

PROG = "codat-webhooks"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=plain(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve.add_parser(subparsers)
    trigger.add_parser(subparsers)
    info.add_parsers(subparsers)
    records.add_parsers(subparsers)
    replay.add_parser(subparsers)
    resend.add_parser(subparsers)
    worker.add_parser(subparsers)
    status.add_parser(subparsers)
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE)
    for subparser in subparsers.choices.values():
        # SUPPRESS: the subcommand's default must not undo a -v given before the command name
        subparser.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE
        )
    return parser


_VERBOSE = "print tracebacks too: a failing hook's, or your app's when --app cannot load it"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad flags
    with one_line_logs(PROG, verbose=args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        status: int = args.run(args)
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    except CodatWebhookError as exc:  # e.g. the store cannot be opened or reached
        print(f"{PROG}: error: {first_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `codat-webhooks events | head`
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
