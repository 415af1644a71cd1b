"""``codat-webhooks replay``: run stored deliveries through the current plugins again.

After fixing a handler, failed deliveries (a hook raised) and parked ones (authenticated but
invalid when they arrived) can be run again without waiting for Codat. Replays go through the
normal receiver pipeline under the stored key, so idempotency holds: a key that is already
``done`` is skipped unless ``--force``, and two replays racing each other run the hooks once.

Authentication is not repeated: the delivery was authenticated when it was stored, and its
credentials were redacted before storing, so the replaying receiver trusts the store instead.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from ..delivery import Outcome
from ..receiver import Receiver
from ..stores.base import Record, State, Store
from ..verify import SIGNATURE_HEADER_SETS
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_store_flags,
    open_store,
    plural,
    stderr_is_tty,
)

__all__ = ["add_parser", "replay_headers", "run"]

PROGRESS_FROM = 20
"""Show a progress bar (on a terminal) from this many deliveries on."""

_REPLAYABLE = (State.FAILED.value, State.PARKED.value)
_DROPPED = frozenset(name for names in SIGNATURE_HEADER_SETS for name in names)


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="run stored deliveries through the current plugins again",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("keys", nargs="*", metavar="KEY", help="keys to replay")
    add_store_flags(parser)
    parser.add_argument(
        "--state", action="append", choices=_REPLAYABLE, help="every delivery in this state"
    )
    parser.add_argument(
        "--force", action="store_true", help="re-run deliveries that were already processed"
    )
    parser.add_argument(
        "--no-plugins", action="store_true", help="do not load plugins from entry points"
    )
    parser.set_defaults(run=run)


def replay_headers(record: Record) -> list[tuple[str, str]]:
    """The stored headers, minus the (now meaningless) signature, keyed by the stored key.

    The receiver keys on ``webhook-id`` before anything in the body, so putting the record's
    key there makes the replay claim exactly the record it came from.
    """
    kept = [(name, value) for name, value in record.headers if name.lower() not in _DROPPED]
    return [("webhook-id", record.key), *kept]


def run(args: argparse.Namespace) -> int:
    if not args.keys and not args.state:
        raise CommandError("name the KEYs to replay, or pass --state failed|parked", EXIT_USAGE)
    store = open_store(args, create=False)
    try:
        records = _select(store, args.keys, args.state or [])
        receiver = Receiver(store=store, insecure=True, load_entrypoints=not args.no_plugins)
    except BaseException:
        store.close()
        raise
    try:
        outcomes = _replay_all(receiver, records, force=args.force)
    finally:
        receiver.close()
    summary = ", ".join(f"{plural(n, 'delivery', ['deliveries'])} {o}" for o, n in outcomes.items())
    print(f"replayed {len(records)}: {summary or 'nothing to do'}")
    failed = sum(n for o, n in outcomes.items() if o not in (Outcome.PROCESSED, "skipped"))
    return EXIT_FAILED if failed else EXIT_OK


def _select(store: Store, keys: list[str], states: list[str]) -> list[Record]:
    records: dict[str, Record] = {}
    missing = []
    for key in keys:
        record = store.get(key)
        if record is None:
            missing.append(key)
        else:
            records[key] = record
    if missing:
        raise CommandError(f"no delivery with key {', '.join(map(repr, missing))} in {store!r}")
    if states:
        for record in reversed(store.find(states=[State(s) for s in states])):  # oldest first
            records.setdefault(record.key, record)
    return list(records.values())


def _replay_all(receiver: Receiver, records: list[Record], *, force: bool) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    bar = _Progress(len(records)) if len(records) >= PROGRESS_FROM and stderr_is_tty() else None
    for done, record in enumerate(records, 1):
        reply = receiver.handle("POST", replay_headers(record), record.body, force=force)
        outcome = "skipped" if reply.outcome == Outcome.DUPLICATE else reply.outcome
        outcomes[outcome] += 1
        if bar is not None:
            bar.update(done)
        if bar is None or outcome not in (Outcome.PROCESSED, "skipped"):
            note = "already processed; --force re-runs it" if outcome == "skipped" else ""
            after = receiver.store.get(record.key)
            error = (
                f"  {after.last_error}"
                if after and after.last_error and outcome != "skipped"
                else ""
            )
            print(f"{record.key}  {record.state.value} -> {outcome}{error}  {note}".rstrip())
    if bar is not None:
        bar.finish()
    return outcomes


class _Progress:
    """A one-line stderr bar; stdout stays clean for the per-key lines and for pipes."""

    WIDTH = 30

    def __init__(self, total: int) -> None:
        self.total = total

    def update(self, done: int) -> None:
        filled = self.WIDTH * done // self.total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total}")
        sys.stderr.flush()

    def finish(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
