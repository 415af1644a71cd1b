"""``codat-webhooks resend``: POST stored deliveries to a running receiver again.

``replay`` runs deliveries inside this process; ``resend`` sends them over HTTP to a deployed
receiver, as a Codat retry would arrive (like ``stripe events resend``). That is how to replay
into a fleet: the deliveries go through your load balancer, your workers and your code.

Each delivery goes under its stored key (``webhook-id``) with its stored body. The stored
credentials were redacted, so it is signed afresh with ``--signing-secret`` (timestamp now) or
sent with ``--authorization``. The receiver's idempotency still holds: a key already processed
is answered ``200 duplicate``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..stores.base import State
from ._app import add_app_flag, load_app, store_for
from ._common import (
    ENV_AUTHORIZATION,
    ENV_SIGNING_SECRET,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_credential_flags,
    add_store_flags,
    command,
    emit,
    require_keys_or_state,
    select_records,
)
from .trigger import DEFAULT_URL, acceptable, sender_from_args

__all__ = ["add_parser", "run"]

STATES = [state.value for state in State]


def add_parser(subparsers: Any) -> None:
    parser = command(
        subparsers,
        "resend",
        "POST stored deliveries to a running receiver, re-signed",
        __doc__,
        epilog="example:\n"
        "  codat-webhooks resend --state failed --signing-secret whsec_... \\\n"
        "    --url https://hooks.example.com/webhooks/codat",
    )
    parser.add_argument("keys", nargs="*", metavar="KEY", help="keys to send")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"receiver URL (default {DEFAULT_URL})")
    parser.add_argument(
        "--state", action="append", choices=STATES, help="every delivery in this state (repeatable)"
    )
    add_credential_flags(parser)
    add_app_flag(parser)
    add_store_flags(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per delivery")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require_keys_or_state(args, "resend", "failed")
    sender = sender_from_args(args)
    if sender.authorization is None and sender.secret is None:
        raise CommandError(
            "stored credentials are redacted: pass --signing-secret whsec_... or "
            f"--authorization '...' (or set {ENV_SIGNING_SECRET} / {ENV_AUTHORIZATION}) as the "
            "receiver expects",
            EXIT_USAGE,
        )
    with store_for(args, load_app(args), create=False) as store:
        records = select_records(store, args.keys, args.state or [])
    results = []
    for number, record in enumerate(records, 1):
        sent = sender.post(number, record.key, record.body)
        results.append(sent)
        if args.json:
            emit(sent.json() | {"was": record.state.value})
        else:
            print(f"{sent.line()}  (was {record.state.value})", flush=True)
    if not args.json:
        print(f"resent {len(results)} to {args.url}")
    return EXIT_OK if all(acceptable(sent) for sent in results) else EXIT_FAILED
