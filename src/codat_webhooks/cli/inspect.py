"""``events``, ``show`` and ``purge``: look into the store that ``serve`` (or your app) writes.

Everything here reads the store through its public API (:meth:`Store.find`, :meth:`Store.get`,
:meth:`Store.purge`), so it works the same on SQLite and Redis.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from ..rules import RuleType
from ..stores.base import Record, State, Store
from ._common import (
    EXIT_OK,
    CommandError,
    add_store_flags,
    format_time,
    open_store,
    parse_duration,
    parse_since,
    plural,
)

__all__ = ["add_parsers", "record_json", "type_matches"]

STATES = [state.value for state in State]


def add_parsers(subparsers: Any) -> None:
    events: argparse.ArgumentParser = subparsers.add_parser(
        "events", help="list stored deliveries, newest first"
    )
    add_store_flags(events)
    events.add_argument(
        "--state", action="append", choices=STATES, help="only this state (repeatable)"
    )
    events.add_argument(
        "--type", metavar="TYPE", help="only this rule or event type (any spelling)"
    )
    events.add_argument("--company", metavar="ID", help="only this CompanyId")
    events.add_argument(
        "--since", type=parse_since, metavar="WHEN", help="seen since a duration ago (2h) or a date"
    )
    events.add_argument("--limit", type=int, metavar="N", help="at most N deliveries")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(run=run_events)

    show: argparse.ArgumentParser = subparsers.add_parser(
        "show", help="one delivery: its record, headers (credentials redacted) and body"
    )
    show.add_argument("key", metavar="KEY")
    add_store_flags(show)
    show.add_argument("--json", action="store_true", help="as one JSON object")
    show.set_defaults(run=run_show)

    purge: argparse.ArgumentParser = subparsers.add_parser(
        "purge", help="delete deliveries last seen longer ago than a duration (retention, now)"
    )
    purge.add_argument(
        "--older-than",
        type=parse_duration,
        required=True,
        metavar="DURATION",
        help="e.g. 15d, 36h; keep at least 28h so Codat's retries are still recognised",
    )
    add_store_flags(purge)
    purge.set_defaults(run=run_purge)


def type_matches(kind: str | None, wanted: str) -> bool:
    """Rule types match in any spelling Codat used; event types match exactly."""
    rule = RuleType.parse(wanted)
    if rule is not None:
        return RuleType.parse(kind) is rule
    return kind == wanted


def record_json(record: Record, *, with_body: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": record.key,
        "state": record.state.value,
        "type": record.kind,
        "company_id": record.company_id,
        "attempts": record.attempts,
        "first_seen": format_time(record.first_seen),
        "last_seen": format_time(record.last_seen),
        "last_error": record.last_error,
        "sha256": record.fingerprint,
    }
    if with_body:
        data["headers"] = [list(pair) for pair in record.headers]
        data["body"] = record.body.decode("utf-8", "replace")
    return data


def _with_store(args: argparse.Namespace) -> Store:
    return open_store(args, create=False)


def run_events(args: argparse.Namespace) -> int:
    with _with_store(args) as store:
        records = store.find(states=args.state or (), company_id=args.company, since=args.since)
    if args.type:
        records = [r for r in records if type_matches(r.kind, args.type)]
    if args.limit is not None:
        records = records[: args.limit]
    if args.json:
        for record in records:
            print(json.dumps(record_json(record)))
        return EXIT_OK
    rows = [
        (
            format_time(r.last_seen),
            r.state.value,
            str(r.attempts),
            r.kind or "-",
            r.company_id or "-",
            r.key,
            (r.last_error or "")[:60],
        )
        for r in records
    ]
    _print_table(("LAST SEEN", "STATE", "TRIES", "TYPE", "COMPANY", "KEY", "ERROR"), rows)
    print(plural(len(records), "delivery", ["deliveries"]))
    return EXIT_OK


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def run_show(args: argparse.Namespace) -> int:
    with _with_store(args) as store:
        record = store.get(args.key)
    if record is None:
        raise CommandError(f"no delivery with key {args.key!r} in {store!r}")
    if args.json:
        print(json.dumps(record_json(record, with_body=True)))
        return EXIT_OK
    for name, value in record_json(record).items():
        print(f"{name + ':':<12}{'-' if value is None else value}")
    print("\nheaders (credentials redacted):")
    for name, value in record.headers:
        print(f"  {name}: {value}")
    print("\nbody:")
    try:
        print(json.dumps(json.loads(record.body), indent=2, ensure_ascii=False))
    except ValueError:
        print(record.body.decode("utf-8", "replace"))
    return EXIT_OK


def run_purge(args: argparse.Namespace) -> int:
    with _with_store(args) as store:
        removed = store.purge(older_than=args.older_than)
    count = plural(removed, "delivery", ["deliveries"])
    print(f"purged {count} last seen over {args.older_than:g}s ago")
    return EXIT_OK
