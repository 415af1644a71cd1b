"""``codat-webhooks replay``: run stored deliveries through your handlers again.

After fixing a handler, failed deliveries (a hook raised) and parked ones (authenticated but
invalid when they arrived) can be run again without waiting for Codat. Replays go through the
normal receiver pipeline under the stored key, so idempotency holds: a key that is already
``done`` is skipped unless ``--force``, and two replays racing each other run the hooks once.

The handlers are your application's: ``--app myapp.web:app`` loads its receiver (plugins, store,
settings); without it, the plugins installed under the ``codat_webhooks`` entry point. A
replay marks a delivery done, and Codat's next retry is then answered as a duplicate, so
``replay`` refuses (exit 2) when nothing but the built-in log plugin would handle a delivery.

Authentication is not repeated: the delivery was authenticated when it was stored, and its
credentials were redacted before storing, so the replaying receiver trusts the store instead.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..stores.base import Record, State, Store
from ._app import ENV_APP, LoadedApp, add_app_flag, load_app, store_for
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_store_flags,
    command,
    cut,
    emit,
    plural,
    require_keys_or_state,
    select_records,
    stderr_is_tty,
)

if TYPE_CHECKING:
    from ..receiver import Receiver
    from ..replaying import HandlerPlan

__all__ = ["add_parser", "run"]

PROGRESS_FROM = 20
"""Show a progress bar (on a terminal) from this many deliveries on."""

_REPLAYABLE = (State.FAILED.value, State.PARKED.value)
"""``codat_webhooks.replaying.REPLAYABLE`` as ``--state`` choices, spelled out so that building
the parser does not import the receiver (tests/cli/test_scripting.py keeps the two equal)."""


def add_parser(subparsers: Any) -> None:
    parser = command(
        subparsers, "replay", "run stored deliveries through your handlers again", __doc__
    )
    parser.add_argument("keys", nargs="*", metavar="KEY", help="keys to replay")
    add_app_flag(parser)
    add_store_flags(parser)
    parser.add_argument(
        "--state", action="append", choices=_REPLAYABLE, help="every delivery in this state"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="re-run deliveries that were already processed, and run the hooks of stale ones"
        " an app with stale='skip' would skip",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list each delivery with the hooks and plugins that would run; change nothing",
    )
    parser.add_argument(
        "--no-plugins",
        action="store_true",
        help="with --app: leave out plugins installed under entry points, run only the app's",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..replaying import SUCCEEDED, handler_plan

    require_keys_or_state(args, "replay", "failed|parked")
    app = load_app(args)
    if args.no_plugins and app is None:
        raise CommandError(
            "--no-plugins without --app would replay through no handlers at all and mark the "
            f"deliveries done: load your application's receiver with --app MODULE:ATTRIBUTE (or "
            f"${ENV_APP})",
            EXIT_USAGE,
        )
    store = store_for(args, app, create=False)
    try:
        records = select_records(store, args.keys, args.state or [])
        receiver = _replaying_receiver(app, store, no_plugins=args.no_plugins)
    except BaseException:
        store.close()
        raise
    try:
        plans = [handler_plan(receiver.plugin_manager, record) for record in records]
        if args.dry_run:
            return _print_plans(records, plans, as_json=args.json)
        _refuse_unhandled(records, plans, app)
        outcomes = _replay_all(receiver, records, force=args.force, as_json=args.json)
    finally:
        receiver.close()
    if not args.json:
        summary = ", ".join(
            f"{plural(n, 'delivery', ['deliveries'])} {o}" for o, n in outcomes.items()
        )
        print(f"replayed {len(records)}: {summary or 'nothing to do'}")
    failed = sum(n for o, n in outcomes.items() if o not in SUCCEEDED)
    return EXIT_FAILED if failed else EXIT_OK


def _replaying_receiver(app: LoadedApp | None, store: Store, *, no_plugins: bool) -> Receiver:
    """A receiver that trusts the store, running the app's plugins (or the installed ones)."""
    from ..receiver import Receiver
    from ..replaying import replaying_receiver

    if app is None:
        return Receiver(store=store, insecure=True)
    manager = app.receiver.plugin_manager
    if no_plugins:
        for plugin, _ in list(manager.list_plugin_distinfo()):
            manager.unregister(plugin)
    return replaying_receiver(app.receiver, store=store, manager=manager)


def _refuse_unhandled(
    records: list[Record], plans: list[HandlerPlan], app: LoadedApp | None
) -> None:
    unhandled = [(r, p) for r, p in zip(records, plans, strict=True) if not p.runnable]
    if not unhandled:
        return
    lines = [
        f"  {record.key} ({plan.kind!r}): no plugin implements {' or '.join(plan.hooks)}"
        for record, plan in unhandled[:10]
    ]
    if len(unhandled) > 10:
        lines.append(f"  ... and {len(unhandled) - 10} more")
    where = (
        f"the receiver of --app {app.spec!r} has no such plugin"
        if app is not None
        else f"load your application's receiver with --app MODULE:ATTRIBUTE (or ${ENV_APP}), "
        "or install the package whose plugin handles them"
    )
    raise CommandError(
        f"refusing to replay: {plural(len(unhandled), 'delivery', ['deliveries'])} would be "
        "marked done without any handler running (the built-in log plugin does not count):\n"
        + "\n".join(lines)
        + f"\n{where}",
        EXIT_USAGE,
    )


def _print_plans(records: list[Record], plans: list[HandlerPlan], *, as_json: bool) -> int:
    for record, plan in zip(records, plans, strict=True):
        if as_json:
            emit(
                {
                    "key": record.key,
                    "state": record.state.value,
                    "type": plan.kind,
                    "hooks": list(plan.hooks),
                    "handlers": [{"hook": h, "plugin": p} for h, p in plan.handlers],
                    "runnable": plan.runnable,
                }
            )
            continue
        if not plan.routable:
            would = "still invalid: would be parked again"
        elif plan.handlers:
            would = ", ".join(f"{hook} ({plugin})" for hook, plugin in plan.handlers)
        else:
            would = f"NO HANDLER: nothing implements {' or '.join(plan.hooks)}"
        print(f"{record.key}  {record.state.value}  {plan.kind or '-'}  -> {would}")
    if not as_json:
        print(f"dry run: {plural(len(records), 'delivery', ['deliveries'])}, nothing replayed")
    return EXIT_OK if all(plan.runnable for plan in plans) else EXIT_USAGE


def _replay_all(
    receiver: Receiver, records: list[Record], *, force: bool, as_json: bool
) -> Counter[str]:
    from ..replaying import replay_record

    outcomes: Counter[str] = Counter()
    show_bar = not as_json and len(records) >= PROGRESS_FROM and stderr_is_tty()
    bar = _Progress(len(records)) if show_bar else None
    for done, record in enumerate(records, 1):
        replayed = replay_record(receiver, record, force=force)
        outcome, after, error = replayed.outcome, replayed.after, replayed.error
        outcomes[outcome] += 1
        if as_json:
            emit(
                {
                    "key": record.key,
                    "was": record.state.value,
                    "outcome": outcome,
                    "state": after.state.value if after else None,
                    "error": error,
                }
            )
            continue
        if bar is not None:
            bar.update(done)
        if bar is None or not replayed.succeeded:
            note = "  already processed; --force re-runs it" if outcome == "skipped" else ""
            detail = f"  {cut(error, 200)}" if error else ""
            print(f"{record.key}  {record.state.value} -> {outcome}{detail}{note}")
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
