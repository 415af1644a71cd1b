"""Replaying stored deliveries through an application's handlers: shared by the CLI's
``replay`` and the deliveries console, so both refuse and report in the same way.

A replay goes through the normal receiver pipeline under the stored key, so idempotency holds.
It marks the delivery done, and Codat's next retry is then answered as a duplicate: so a replay
is refused when no plugin but the built-in log plugin implements the delivery's hooks.
Authentication is not repeated: the delivery was authenticated when it was stored.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import pluggy

from .errors import PayloadError
from .hooks.dispatch import Dispatcher
from .hooks.manager import BUILTIN_PLUGINS
from .models._parse import load_object
from .outcomes import Outcome
from .receiver import Receiver
from .routing import route
from .stores.base import Record, State, Store
from .verify import SIGNATURE_HEADER_SETS

__all__ = [
    "REPLAYABLE",
    "SUCCEEDED",
    "HandlerPlan",
    "Replayed",
    "handler_plan",
    "plugin_label",
    "replay_headers",
    "replay_record",
    "replaying_receiver",
]

REPLAYABLE = (State.FAILED, State.PARKED)
"""The states a replay picks up by default: a hook raised, or the body was invalid."""
SUCCEEDED = (Outcome.PROCESSED, Outcome.QUEUED, "skipped", Outcome.STALE)
"""Replay outcomes that are not failures: with a queue, the receiver's workers run the hooks."""
_DROPPED = frozenset(name for names in SIGNATURE_HEADER_SETS for name in names)
_BUILTIN_NAMES = frozenset(BUILTIN_PLUGINS)


def plugin_label(manager: pluggy.PluginManager, plugin: object) -> str:
    """A readable plugin name: the module, the entry-point name, or the class of an instance.

    pluggy names an instance registered without a name by its ``id()``, which tells an
    operator nothing.
    """
    name = manager.get_name(plugin)
    if inspect.ismodule(plugin):
        return name or plugin.__name__
    if name and not name.isdigit():
        return name
    return type(plugin).__qualname__


@dataclass(frozen=True, slots=True)
class HandlerPlan:
    """What replaying one delivery would run."""

    kind: str | None
    hooks: tuple[str, ...]
    """The hooks its type calls, in order (empty when the body no longer routes)."""
    handlers: tuple[tuple[str, str], ...]
    """(hook, plugin) pairs that would run, the built-in log plugin left out."""

    @property
    def routable(self) -> bool:
        return bool(self.hooks)

    @property
    def runnable(self) -> bool:
        """False when replaying would mark the delivery done without any handler running."""
        return not self.routable or bool(self.handlers)


def handler_plan(manager: pluggy.PluginManager, record: Record) -> HandlerPlan:
    """The hooks a stored delivery calls and which plugins implement them.

    A body that does not route (still invalid) calls no hook: its replay parks it again,
    it cannot be marked done, so it needs no handler.
    """
    try:
        routed = route(load_object(record.body))
    except PayloadError:
        return HandlerPlan(record.kind, (), ())
    handlers = []
    for hook in routed.hooks:
        caller = getattr(manager.hook, hook, None)
        for impl in reversed(caller.get_hookimpls() if caller is not None else []):
            if impl.plugin_name not in _BUILTIN_NAMES:  # pluggy lists them last-called first
                handlers.append((hook, plugin_label(manager, impl.plugin)))
    return HandlerPlan(routed.kind, routed.hooks, tuple(handlers))


def replay_headers(record: Record) -> list[tuple[str, str]]:
    """The stored headers, minus the (now meaningless) signature, keyed by the stored key.

    The receiver keys on ``webhook-id`` before anything in the body, so putting the record's
    key there makes the replay claim exactly the record it came from.
    """
    kept = [(name, value) for name, value in record.headers if name.lower() not in _DROPPED]
    return [("webhook-id", record.key), *kept]


def replaying_receiver(
    receiver: Receiver, *, store: Store | None = None, manager: pluggy.PluginManager | None = None
) -> Receiver:
    """A receiver that trusts the store and runs ``receiver``'s plugins on ``receiver``'s store
    (or the ``store``/``manager`` given).

    The plugin manager is reused, never rebuilt: building another from entry points would
    register every installed plugin a second time.
    """
    return Receiver(
        store=store or receiver.store,
        insecure=True,
        dispatcher=receiver.dispatcher if manager is None else Dispatcher(manager),
        lease=receiver.lease,
        clock=receiver.clock,
        stale=receiver.stale,
    )


@dataclass(frozen=True, slots=True)
class Replayed:
    """What one replay did: ``outcome`` is the receiver's, or ``skipped`` for one already done."""

    outcome: str
    after: Record | None
    """The record as the store holds it after the replay."""

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCEEDED

    @property
    def error(self) -> str | None:
        """The stored error when the replay failed (a hook raised, or parked again)."""
        return self.after.last_error if self.after and not self.succeeded else None


def replay_record(replayer: Receiver, record: Record, *, force: bool = False) -> Replayed:
    """Run one stored delivery through ``replayer`` (see :func:`replaying_receiver`).

    The caller checks :func:`handler_plan` first and refuses what is not ``runnable``.
    """
    reply = replayer.handle("POST", replay_headers(record), record.body, force=force)
    outcome = "skipped" if reply.outcome == Outcome.DUPLICATE else str(reply.outcome)
    return Replayed(outcome, replayer.store.get(record.key))
