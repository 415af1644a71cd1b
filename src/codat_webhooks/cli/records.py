"""``events``, ``show`` and ``purge``: look into the store that ``serve`` (or your app) writes.

Everything here reads the store through its public API (:meth:`Store.find`, :meth:`Store.get`,
:meth:`Store.purge`), so it works the same on every store. ``--app`` reads the store your
application's receiver uses.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..describe import (
    history_json,
    order_json,
    order_label,
    pretty_body,
    queue_json,
    record_json,
    sender_json,
)
from ..queues.base import RetryPolicy
from ..rules import RuleType
from ..status_report import key_reports
from ..stores.base import CODAT_RETRY_WINDOW, Record, State, Store
from ..stores.marks import Verdict
from ._app import add_app_flag, load_app, store_for
from ._common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_store_flags,
    command,
    cut,
    emit,
    format_time,
    parse_duration,
    parse_since,
    plural,
    positive_int,
)
from ._history import print_history, with_sender

__all__ = ["add_parsers", "record_json", "type_matches"]

STATES = [state.value for state in State]
FOLLOW_INTERVAL = 0.25
"""Seconds between two looks at the store in ``events --follow``."""
ERROR_WIDTH = 60
"""The ERROR column is cut to this many characters (with an ellipsis); ``show`` prints it all."""


EVENTS = """List the deliveries in the store, newest first: when each was last seen, its state,
how many times its hooks ran, its type, company, key and last error, and ORDER: ``stale`` (older
than an event of its scope received before it) or ``gap`` (a legacy status change that breaks
the chain). Filter by state, type, company and time, or ``--stale``; ``--follow`` keeps printing
deliveries as they arrive or change.
"""

SHOW = """Print one delivery: its record, the sender's headers (credentials redacted) and its body,
to see what Codat sent and why a delivery failed or was parked. A delivery waiting for a worker
also says when it is due and from when a sweep re-enqueues it if no worker takes it (a delivery
answered 503 while the broker was down waits for that sweep); ``--app`` knows your queue's
``stale_after``.
"""

PURGE = """Delete deliveries last seen longer ago than a duration, as the store's retention would,
but now. Inside Codat's 28-hour retry window a purged key is no longer a duplicate, so a late
retry would run its hooks again: that needs ``--force``. ``--dry-run`` lists what would go.
"""


def add_parsers(subparsers: Any) -> None:
    events = command(subparsers, "events", "list stored deliveries, newest first", EVENTS)
    add_app_flag(events)
    add_store_flags(events)
    events.add_argument(
        "--state", action="append", choices=STATES, help="only this state (repeatable)"
    )
    events.add_argument(
        "--type", metavar="TYPE", help="only this rule or event type (any spelling)"
    )
    events.add_argument("--company", metavar="ID", help="only this CompanyId")
    events.add_argument(
        "--stale",
        action="store_true",
        help="only deliveries older than an event of their scope received before them",
    )
    events.add_argument(
        "--since", type=parse_since, metavar="WHEN", help="seen since a duration ago (2h) or a date"
    )
    events.add_argument(
        "--limit", type=positive_int, metavar="N", help="at most N deliveries (the newest)"
    )
    events.add_argument(
        "--follow",
        action="store_true",
        help="keep running and print each new or changed delivery as it happens (Ctrl+C stops)",
    )
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(run=run_events)

    show = command(subparsers, "show", "one delivery: its record, redacted headers and body", SHOW)
    show.add_argument("key", metavar="KEY", help="the delivery's key (events lists them)")
    add_app_flag(show)
    add_store_flags(show)
    show.add_argument("--json", action="store_true", help="as one JSON object")
    show.set_defaults(run=run_show)

    purge = command(subparsers, "purge", "delete deliveries last seen over a given time ago", PURGE)
    purge.add_argument(
        "--older-than",
        type=parse_duration,
        required=True,
        metavar="DURATION",
        help="e.g. 15d, 36h; under 28h (Codat's retry window) needs --force",
    )
    add_app_flag(purge)
    add_store_flags(purge)
    purge.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted; delete nothing"
    )
    purge.add_argument(
        "--force",
        action="store_true",
        help="purge inside Codat's 28-hour retry window: a late retry then runs the hooks again",
    )
    purge.add_argument("--json", action="store_true", help="one JSON object")
    purge.set_defaults(run=run_purge)


def type_matches(kind: str | None, wanted: str) -> bool:
    """Rule types match in any spelling Codat used; event types match exactly."""
    rule = RuleType.parse(wanted)
    if rule is not None:
        return RuleType.parse(kind) is rule
    return kind == wanted


def _with_store(args: argparse.Namespace) -> Store:
    args.loaded_app = load_app(args)
    return store_for(args, args.loaded_app, create=False)


def _rule_filter(wanted: str | None) -> tuple[str | None, bool]:
    """(exact kind for the store query, whether rows must still be matched by spelling).

    Event types are stored exactly as sent, so the store filters them. Rule types arrive in
    several spellings (``Data sync completed``, ``DataSyncCompleted``...), so those are
    matched after the query.
    """
    if wanted is None:
        return None, False
    if RuleType.parse(wanted) is None:
        return wanted, False
    return None, True


def find_records(store: Store, args: argparse.Namespace) -> list[Record]:
    """The records ``events`` lists, with ``--limit`` applied by the store's query.

    For a rule type (matched by spelling afterwards) the query is repeated with a growing
    limit until enough rows matched or the store has no more.
    """
    kind, by_spelling = _rule_filter(args.type)
    query: dict[str, Any] = {
        "states": [State(s) for s in args.state or ()],
        "kind": kind,
        "company_id": args.company,
        "since": args.since,
    }
    if not by_spelling:
        return store.find(**query, limit=args.limit)
    if args.limit is None:
        return [r for r in store.find(**query) if type_matches(r.kind, args.type)]
    batch = max(4 * args.limit, 100)
    while True:
        records = store.find(**query, limit=batch)
        matched = [r for r in records if type_matches(r.kind, args.type)]
        if len(matched) >= args.limit or len(records) < batch:
            return matched[: args.limit]
        batch *= 4


_HEADER = ("LAST SEEN", "STATE", "TRIES", "TYPE", "COMPANY", "KEY", "ERROR", "ORDER")


def _row(record: Record, verdict: Verdict | None = None) -> tuple[str, ...]:
    return (
        format_time(record.last_seen),
        record.state.value,
        str(record.attempts),
        record.kind or "-",
        record.company_id or "-",
        record.key,
        cut(record.last_error or "", ERROR_WIDTH),
        order_label(verdict),
    )


def ordered_records(store: Store, args: argparse.Namespace) -> list[tuple[Record, Verdict | None]]:
    """:func:`find_records` with each record's ordering verdict; only stale ones with
    ``--stale`` (few, so the listing is filtered after the query, then cut to ``--limit``)."""
    if not args.stale:
        records = find_records(store, args)
        verdicts = store.verdicts([record.key for record in records])
        return [(record, verdicts.get(record.key)) for record in records]
    records = find_records(store, argparse.Namespace(**{**vars(args), "limit": None}))
    verdicts = store.verdicts([record.key for record in records])
    stale: list[tuple[Record, Verdict | None]] = [
        (r, verdicts[r.key]) for r in records if r.key in verdicts and verdicts[r.key].stale
    ]
    return stale[: args.limit] if args.limit is not None else stale


def app_retries(args: argparse.Namespace) -> RetryPolicy | None:
    """The ``--app`` receiver's retry policy (the horizon of queued keys), if loaded."""
    app = getattr(args, "loaded_app", None)
    return app.receiver.retries if app is not None else None


def _table(
    records: list[tuple[Record, Verdict | None]], senders: dict[str, dict[str, Any]]
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The listing's header and rows. ORDER and SENDER appear only when a listed delivery has
    something to say there (most listings have neither); ERROR, the widest, stays last."""
    # _row ends ERROR, ORDER (the fixed columns of --follow); the table puts ERROR last
    rows = [_row(record, verdict) for record, verdict in records]
    rows = [(*row[:-2], row[-1], row[-2]) for row in rows]
    header: tuple[str, ...] = (*_HEADER[:-2], _HEADER[-1], _HEADER[-2])
    if not any(row[-2] for row in rows):
        header, rows = (*header[:-2], header[-1]), [(*row[:-2], row[-1]) for row in rows]
    if senders:  # what the sender will still do, for deliveries not done
        lines = [senders.get(record.key, {}).get("sender_line", "-") for record, _ in records]
        rows = [(*row[:-1], line, row[-1]) for row, line in zip(rows, lines, strict=True)]
        header = (*header[:-1], "SENDER", header[-1])
    return header, rows


def run_events(args: argparse.Namespace) -> int:
    with _with_store(args) as store:
        if args.follow:
            return _follow(store, args)
        records = ordered_records(store, args)
        senders = with_sender(store, [record for record, _ in records], app_retries(args))
    if args.json:
        for record, verdict in records:
            shown = record_json(record) | order_json(verdict)
            if record.key in senders:
                shown["sender"] = senders[record.key]["sender"]
            emit(shown)
        return EXIT_OK
    _print_table(*_table(records, senders))
    print(plural(len(records), "delivery", ["deliveries"]))
    return EXIT_OK


def _follow(store: Store, args: argparse.Namespace) -> int:
    """Print each delivery as it appears or changes, until Ctrl+C (like ``tail -f``).

    The store is polled: new rows come from a ``since`` query just behind the newest row
    seen, and deliveries still ``processing`` are re-read by key, because finishing one does
    not move it in the ``last_seen`` order.
    """
    cursor = args.since if args.since is not None else time.time()
    printed: dict[str, tuple[object, ...]] = {}
    watching: set[str] = set()
    if not args.json:
        print(_follow_line(_HEADER), flush=True)
    try:
        while True:
            found = store.find(company_id=args.company, since=cursor - 1.0)
            found += [r for r in map(store.get, watching - {r.key for r in found}) if r]
            for record in sorted(found, key=lambda r: r.last_seen):
                cursor = max(cursor, record.last_seen)
                if record.state is State.PROCESSING:
                    watching.add(record.key)
                else:
                    watching.discard(record.key)
                version = (record.state, record.attempts, record.last_seen, record.last_error)
                if printed.get(record.key) == version or not _wanted(record, args):
                    continue
                verdict = store.verdict(record.key)
                if args.stale and not (verdict and verdict.stale):
                    continue
                printed[record.key] = version
                if args.json:
                    emit(record_json(record) | order_json(verdict))
                else:
                    print(_follow_line(_row(record, verdict)), flush=True)
            time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        return EXIT_OK


_FOLLOW_WIDTHS = (20, 10, 5, 32, 36)
"""Fixed columns for ``--follow``, which cannot measure rows it has not seen yet."""


def _follow_line(row: tuple[str, ...]) -> str:
    """The fixed columns cut to width; the key padded but never cut (it is what you act on)."""
    fixed = [
        cut(cell, width).ljust(width) for cell, width in zip(row, _FOLLOW_WIDTHS, strict=False)
    ]
    key, *rest = row[len(_FOLLOW_WIDTHS) :]
    return "  ".join([*fixed, key.ljust(36), *rest]).rstrip()


def _wanted(record: Record, args: argparse.Namespace) -> bool:
    return (not args.state or record.state.value in args.state) and (
        not args.type or type_matches(record.kind, args.type)
    )


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def run_show(args: argparse.Namespace) -> int:
    app = load_app(args)
    with store_for(args, app, create=False) as store:
        record = store.get(args.key)
        conflicts = store.conflicts(args.key) if record is not None else []
        verdict = store.verdict(args.key) if record is not None else None
        retries = app.receiver.retries if app is not None else None
        reports = key_reports(store, [record], time.time(), retries) if record else []
    if record is None:
        raise CommandError(f"no delivery with key {args.key!r} in {store!r}")
    (report,) = reports
    stale_after = getattr(app.receiver.queue, "stale_after", None) if app is not None else None
    waiting = queue_json(record, stale_after, time.time())
    if args.json:
        shown = record_json(record, with_body=True) | order_json(verdict)
        shown["conflicts"] = [record_json(other) for other in conflicts]
        if waiting is not None:
            shown["queue"] = waiting
        shown["history"] = history_json(report.history)
        shown["sender"] = sender_json(report.horizon)
        print(json.dumps(shown))
        return EXIT_OK
    for name, value in record_json(record).items():
        print(f"{name + ':':<12}{'-' if value is None else value}")
    print(f"{'order:':<12}{_order_line(verdict)}")
    if waiting is not None:
        print(f"{'due:':<12}{waiting['due']} (when a worker should take it)")
        print(f"{'sweep:':<12}{_sweep_line(waiting)}")
    print_history(report, time.time())
    print("\nheaders (credentials redacted):")
    for name, value in record.headers:
        print(f"  {name}: {value}")
    print("\nbody:")
    print(pretty_body(record.body))
    if conflicts:
        print("\nother bodies received under this key (parked; `show KEY` for each):")
        for other in conflicts:
            print(f"  {format_time(other.last_seen)}  {other.key}")
    return EXIT_OK


def _order_line(verdict: Verdict | None) -> str:
    """Where the delivery stood in its ordering scope, in words."""
    if verdict is None or not (verdict.stale or verdict.gap):
        return "in order (or no ordering scope)"
    parts = []
    if verdict.stale:
        newer = order_json(verdict)["newer"]
        named = (
            f": {newer['key']} (generated {newer['generated_date']}) came first" if newer else ""
        )
        parts.append(f"stale{named}")
    if verdict.gap:
        parts.append("gap: its OldStatus is not the last NewStatus received")
    return "; ".join(parts)


def _sweep_line(waiting: dict[str, Any]) -> str:
    """When a sweep re-enqueues a key no worker took (say, answered 503 while the broker was
    down: recorded, but no job holds it)."""
    if waiting["stale_after"] is None:
        return (
            "re-enqueued by the first sweep once it is stale_after past due (LocalQueue 60s, "
            "CeleryQueue 300s by default; --app shows your queue's)"
        )
    return (
        f"re-enqueued by the first sweep from {waiting['swept_from']}, if no worker took it "
        f"(the queue's stale_after is {waiting['stale_after']:g}s)"
    )


def run_purge(args: argparse.Namespace) -> int:
    window = CODAT_RETRY_WINDOW
    if args.older_than < window and not args.force and not args.dry_run:
        raise CommandError(
            f"--older-than {_hours(args.older_than)} is inside Codat's {_hours(window)} retry "
            "window: a late retry of a purged delivery would run its handlers again. Use "
            f"--older-than {_hours(window)} or more, or pass --force (--dry-run shows what "
            "would go)",
            EXIT_USAGE,
        )
    with _with_store(args) as store:
        if args.dry_run:
            doomed = _purgeable(store.find(), args.older_than)
            return _report_purge(args, len(doomed), [r.key for r in doomed])
        removed = store.purge(older_than=args.older_than)
    return _report_purge(args, removed, None)


def _purgeable(records: Iterable[Record], older_than: float) -> list[Record]:
    """What :meth:`Store.purge` would delete: the same rule, evaluated on listed records."""
    now = time.time()
    cutoff = now - older_than
    return [
        record
        for record in records
        if record.last_seen < cutoff
        and not (record.state is State.PROCESSING and record.lease_expires > now)
    ]


def _report_purge(args: argparse.Namespace, count: int, keys: list[str] | None) -> int:
    if args.json:
        emit(
            {
                "dry_run": args.dry_run,
                "older_than_seconds": args.older_than,
                "count": count,
                "keys": keys,
            }
        )
        return EXIT_OK
    for key in keys or ():
        print(f"would purge {key}")
    verb = "would purge" if args.dry_run else "purged"
    count_text = plural(count, "delivery", ["deliveries"])
    print(f"{verb} {count_text} last seen over {_hours(args.older_than)} ago")
    return EXIT_OK


def _hours(seconds: float) -> str:
    """A duration as an operator would write it: ``15d``, ``28h``, ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
