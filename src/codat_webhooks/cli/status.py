"""``status``: what needs a person now, read from the store, with what to do about each.

Codat offers no API that lists what it sent, what it retried or what it gave up on: the store
is the record. ``status`` reads it and prints findings, the most urgent first: deliveries
Codat abandoned (its last attempt failed: only a replay runs them now, and the command to run
is printed), an endpoint whose every answer has failed for a while (with how long until Codat's
5-day rule disables it, and the Portal's recover steps with the time filled in), a share of
401 answers (a secret or Authorization value that no longer matches, the usual cause after a
rotation), deliveries failing with attempts left, parked ones, and the last hour and day by
outcome with the last successful delivery.

Exit status: 1 when any finding is ``action`` (a person must act), 0 otherwise, 2 for a usage
or configuration error: so it can run from cron or as a probe.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..status_report import status_report
from ._app import add_app_flag, load_app, store_for
from ._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError, add_store_flags, command

__all__ = ["add_parser"]

_MARKS = {"action": "ACTION ", "warning": "WARNING", "info": "info   "}


def add_parser(subparsers: Any) -> None:
    status = command(subparsers, "status", "what needs a person now, and what to do", __doc__)
    add_app_flag(status)
    add_store_flags(status)
    status.add_argument(
        "--json", action="store_true", help='one object: {"findings": [{severity, what, do}]}'
    )
    status.set_defaults(run=run_status)


def run_status(args: argparse.Namespace) -> int:
    # Exit 1 means "a person must act": an --app that does not load, or no database where told,
    # is a configuration error (2), never a finding.
    try:
        app = load_app(args)
        store = store_for(args, app, create=False)
    except CommandError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    retries = app.receiver.retries if app is not None else None
    with store:
        spec = app.spec if app is not None else None
        findings = status_report(store, now=time.time(), retries=retries, app=spec)
    if args.json:
        shown = [
            {"severity": f.severity, "what": f.what, "do": f.do, "keys": list(f.keys)}
            for f in findings
        ]
        print(json.dumps({"findings": shown}))
    else:
        for finding in findings:
            print(f"{_MARKS[finding.severity]}  {finding.what}")
            if finding.do != "nothing to do":
                print(f"         do: {finding.do}")
    return EXIT_FAILED if any(f.severity == "action" for f in findings) else EXIT_OK
