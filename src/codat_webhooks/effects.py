"""The I/O a delivery needs, as plain values, and the one performer that carries them out.

The receiver's pipelines (``receiver.py``) decide everything and *yield* what they need done:
ask the store, run hooks under a lease, tell an informational hook, hand a key to the queue.
The :class:`Performer` holds the parts that do I/O (store, dispatcher, leases, queue, and the
store's outage state) and performs each effect; :func:`run` and :func:`run_async` feed the
results (or exceptions) back into the pipeline. So the decisions exist once, and the two
calling styles differ only here: the async runner awaits hooks without blocking the event loop
and runs a blocking store in a worker thread.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, TypeVar

from .errors import StoreError
from .hooks.dispatch import Dispatcher
from .leases import LeaseKeeper
from .observe import Facts
from .outage import StoreOutage
from .stores.base import Claim, Entry, Record, Store
from .stores.history import HistoryEntry
from .stores.marks import Mark, Verdict

if TYPE_CHECKING:
    from .queues.base import Queue

__all__ = [
    "Ask",
    "CompleteLater",
    "Effect",
    "Enqueue",
    "Hooks",
    "Notify",
    "Performer",
    "run",
    "run_async",
]


class Ask(NamedTuple):
    """Ask the store: ``operation`` is a :class:`Performer` method that calls it."""

    operation: str
    args: tuple[Any, ...]


class Hooks(NamedTuple):
    """Call these hooks in order under a claim, whose lease is renewed while they run; the
    first exception stops them and is thrown back into the pipeline."""

    names: tuple[str, ...]
    kwargs: dict[str, Any]
    key: str
    token: int


class Notify(NamedTuple):
    """Call an informational hook (``on_duplicate``, ...): its errors are logged, never raised."""

    name: str
    kwargs: dict[str, Any]


class Enqueue(NamedTuple):
    """Hand a recorded key to the queue."""

    key: str


class CompleteLater(NamedTuple):
    """Keep the claim and record the key as done in the background once the store answers:
    its hooks ran, so a retry must find it done rather than run them again."""

    key: str
    token: int


Effect: TypeAlias = Ask | Hooks | Notify | Enqueue | CompleteLater
_Result = TypeVar("_Result")


class Performer:
    """Carries out effects; every store call goes through the outage state, so a store that
    is down is answered at once instead of waited for."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        leases: LeaseKeeper,
        outage: StoreOutage,
        queue: Queue | None,
        lease: float,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.leases = leases
        self.outage = outage
        self.queue = queue
        self.lease = lease

    # --- the store operations an Ask names ------------------------------------------------------

    def claim(self, entry: Entry, force: bool, attempt: HistoryEntry | None = None) -> Claim:
        return self.store.claim(entry, lease=self.lease, force=force, attempt=attempt)

    def enqueue(self, entry: Entry, attempt: HistoryEntry | None = None) -> Claim:
        return self.store.enqueue(entry, attempt=attempt)

    def take(self, key: str) -> tuple[Claim, Record | None]:
        return self.store.take_record(key, lease=self.lease)

    def recheck(self, key: str, mark: Mark) -> Verdict:
        return self.store.recheck(key, mark)

    def park(self, entry: Entry, reason: str, attempt: HistoryEntry | None = None) -> None:
        self.store.park(entry, reason=reason, attempt=attempt)

    def note(self, key: str, entry: HistoryEntry) -> None:
        self.store.note(key, entry)

    def complete(self, key: str, token: int, attempt: HistoryEntry | None = None) -> bool:
        return self.store.complete(key, token, attempt=attempt)

    def release(
        self, key: str, token: int, error: str, attempt: HistoryEntry | None = None
    ) -> bool:
        return self.store.release(key, token, error=error, attempt=attempt)

    def defer(
        self, key: str, token: int, due: float, error: str, attempt: HistoryEntry | None = None
    ) -> bool:
        return self.store.defer(key, token, due=due, error=error, attempt=attempt)

    def _ask(self, operation: str, args: tuple[Any, ...]) -> Any:
        """One store call through the outage state: refused at once while the store is known
        to be down, and a failure starts an outage."""
        self.outage.check()
        try:
            return getattr(self, operation)(*args)
        except StoreError as exc:
            self.outage.failed(exc)
            raise

    # --- performing ------------------------------------------------------------------------------

    def perform(self, effect: Effect, facts: Facts) -> Any:
        if isinstance(effect, Ask):
            operation, args = effect
            return self._ask(operation, args)
        if isinstance(effect, Hooks):
            names, kwargs, key, token = effect
            self.leases.track(key, token)
            try:
                self.dispatcher.call(names, kwargs, facts.timings)
            finally:
                self.leases.untrack(key, token)
        elif isinstance(effect, Notify):
            self.dispatcher.notify(*effect)
        elif isinstance(effect, Enqueue):
            assert self.queue is not None
            self.queue.enqueue(*effect)
        else:
            self.leases.complete_later(*effect)
        return None

    async def perform_async(self, effect: Effect, facts: Facts) -> Any:
        if isinstance(effect, Ask):
            operation, args = effect
            if not self.store.blocking:
                return self._ask(operation, args)
            return await _in_thread(self._ask, operation, args)
        if isinstance(effect, Hooks):
            names, kwargs, key, token = effect
            self.leases.track(key, token)
            try:
                await self.dispatcher.call_async(names, kwargs, facts.timings)
            finally:
                self.leases.untrack(key, token)
        elif isinstance(effect, Notify):
            await self.dispatcher.notify_async(*effect)
        elif isinstance(effect, Enqueue):
            assert self.queue is not None
            if self.queue.blocking:
                await _in_thread(self.queue.enqueue, *effect)
            else:
                self.queue.enqueue(*effect)
        else:
            self.leases.complete_later(*effect)
        return None


async def _in_thread(function: Any, *args: Any) -> Any:
    from asgiref.sync import sync_to_async  # only the async path needs asgiref

    return await sync_to_async(function, thread_sensitive=False)(*args)


# An effect's result is sent back into the pipeline, and its exception thrown into it, at the
# ``yield`` that asked for it; the pipeline's ``return`` ends the loop with its final value.


def run(pipeline: Generator[Effect, Any, _Result], performer: Performer, facts: Facts) -> _Result:
    try:
        effect = next(pipeline)
        while True:
            try:
                result = performer.perform(effect, facts)
            except Exception as exc:
                effect = pipeline.throw(exc)
            else:
                effect = pipeline.send(result)
    except StopIteration as done:
        final: _Result = done.value
        return final


async def run_async(
    pipeline: Generator[Effect, Any, _Result], performer: Performer, facts: Facts
) -> _Result:
    try:
        effect = next(pipeline)
        while True:
            try:
                result = await performer.perform_async(effect, facts)
            except Exception as exc:
                effect = pipeline.throw(exc)
            else:
                effect = pipeline.send(result)
    except StopIteration as done:
        final: _Result = done.value
        return final
