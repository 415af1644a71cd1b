"""Calls hook implementations one by one, sync or async, in pluggy's order.

pluggy itself would call an ``async def`` implementation and move on with an un-awaited
coroutine, losing both ordering and exceptions. So we walk the implementations ourselves:
each is called with just the arguments it asks for, awaited if it is a coroutine, and the
first exception stops the chain. ``call`` never needs an event loop for sync implementations;
``call_async`` never runs a sync implementation on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import time
from collections.abc import Awaitable, Callable
from operator import attrgetter, itemgetter
from typing import Any, TypeAlias, TypeVar

import pluggy

from .._logging import library_logger
from ..observe import Facts, HookTiming, log_fields

__all__ = ["Dispatcher", "nonblocking"]

_NONBLOCKING = "codat_webhooks_nonblocking"
_F = TypeVar("_F", bound=Callable[..., Any])


def nonblocking(function: _F) -> _F:
    """Mark a sync hook implementation that never blocks (no I/O, no locks held for long).

    :meth:`Receiver.handle_async` then calls it directly on the event loop instead of handing it
    to a worker thread, which costs a few hundred microseconds per call. Misusing it on code
    that does block stalls every request of the process, so leave it off when in doubt.
    """
    setattr(function, _NONBLOCKING, True)
    return function


logger = library_logger("codat_webhooks.receiver")

_Arguments: TypeAlias = Callable[[dict[str, Any]], tuple[Any, ...]]
_Plan: TypeAlias = tuple[tuple[Callable[..., Any], _Arguments], ...]
_Observers: TypeAlias = tuple[tuple[Callable[..., Any], Callable[[Facts], tuple[Any, ...]]], ...]


def _picker(names: tuple[str, ...], pick: Callable[..., Any]) -> Callable[[Any], tuple[Any, ...]]:
    """Picks an implementation's positional arguments, by name, out of a source: the hook's
    keyword arguments (``pick=itemgetter``) or, for ``on_outcome``, the delivery's facts
    (``pick=attrgetter``), whose attributes carry the arguments' names.

    Built once per implementation: a getter does in C what a comprehension over the names did
    in Python for every call, which cost twice as much as the call itself for an
    ``on_outcome`` taking six arguments.
    """
    if len(names) > 1:
        getter: Callable[[Any], tuple[Any, ...]] = pick(*names)  # a tuple, for two or more
        return getter
    if names:
        one = pick(names[0])
        return lambda source: (one(source),)
    return lambda source: ()


def _arguments(names: tuple[str, ...]) -> _Arguments:
    return _picker(names, itemgetter)


def _facts(names: tuple[str, ...]) -> Callable[[Facts], tuple[Any, ...]]:
    return _picker(names, attrgetter)


def _run_to_completion(awaitable: Awaitable[Any]) -> Any:
    """Run a coroutine from sync code, even when this thread already runs an event loop."""

    async def wrapper() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapper())
    with concurrent.futures.ThreadPoolExecutor(1, "codat-webhooks-async-hook") as pool:
        return pool.submit(asyncio.run, wrapper()).result()


class Dispatcher:
    """Calls hooks of one plugin manager; see the module docstring for the semantics."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self._plans: dict[str, tuple[list[pluggy.HookImpl], _Plan]] = {}
        self._observed: _Plan = ()
        self._observers: _Observers = ()
        self.timed_observers = False
        """Whether an ``on_outcome`` implementation asks for hook timings (``hooks``)."""

    def _implementations(self, name: str) -> _Plan:
        """``(function, argument names)`` in call order, rebuilt only when plugins change.

        Every delivery calls two or three hooks; re-reading pluggy's implementation objects
        each time costs more than the calls themselves. The cache is checked against pluggy's
        current list (an identity comparison of a few items), so registering or unregistering a
        plugin at any time is seen by the next delivery.
        """
        current = getattr(self.manager.hook, name).get_hookimpls()
        cached = self._plans.get(name)
        if cached is not None and cached[0] == current:
            return cached[1]
        # pluggy calls the last registered first
        plan = tuple((impl.function, _arguments(impl.argnames)) for impl in reversed(current))
        self._plans[name] = (current, plan)
        return plan

    def call(
        self,
        names: tuple[str, ...],
        kwargs: dict[str, Any],
        timings: list[HookTiming] | None = None,
    ) -> None:
        """Call every implementation of each hook in ``names``, stopping at the first error.

        With ``timings``, a :class:`~codat_webhooks.observe.HookTiming` is appended to it (for
        ``on_outcome``) per hook that has an implementation: a hook nobody implements runs
        nothing, so it gets no timing, no histogram series and no span.
        """
        if timings is None:  # the usual case, kept to one loop: it runs for every delivery
            for name in names:
                self._call_each(self._implementations(name), kwargs)
            return
        # Each hook's end is the next one's start: one clock read per hook.
        started = time.perf_counter()
        for name in names:
            plan = self._implementations(name)
            if not plan:
                continue
            try:
                self._call_each(plan, kwargs)
            except BaseException as exc:
                timings.append(HookTiming(name, started, time.perf_counter() - started, exc))
                raise
            ended = time.perf_counter()
            timings.append(HookTiming(name, started, ended - started, None))
            started = ended

    def _call_each(self, plan: _Plan, kwargs: dict[str, Any]) -> None:
        for function, arguments in plan:
            result = function(*arguments(kwargs))
            if result is not None and inspect.isawaitable(result):
                _run_to_completion(result)

    async def call_async(
        self,
        names: tuple[str, ...],
        kwargs: dict[str, Any],
        timings: list[HookTiming] | None = None,
    ) -> None:
        """As :meth:`call`, awaiting async implementations and threading sync ones."""
        if timings is None:
            for name in names:
                await self._call_each_async(self._implementations(name), kwargs)
            return
        started = time.perf_counter()
        for name in names:
            plan = self._implementations(name)
            if not plan:
                continue
            try:
                await self._call_each_async(plan, kwargs)
            except BaseException as exc:
                timings.append(HookTiming(name, started, time.perf_counter() - started, exc))
                raise
            ended = time.perf_counter()
            timings.append(HookTiming(name, started, ended - started, None))
            started = ended

    async def _call_each_async(self, plan: _Plan, kwargs: dict[str, Any]) -> None:
        for function, arguments in plan:
            args = arguments(kwargs)
            if inspect.iscoroutinefunction(function):
                await function(*args)
                continue
            if getattr(function, _NONBLOCKING, False):
                result = function(*args)
            else:
                from asgiref.sync import sync_to_async  # only the async path needs asgiref

                result = await sync_to_async(function, thread_sensitive=False)(*args)
            if inspect.isawaitable(result):
                await result

    # --- on_outcome: every implementation called, each one's errors logged and ignored ---------

    def observers(self) -> _Observers:
        """The implementations of ``on_outcome``; empty (and so free) when no plugin has one."""
        plan = self._implementations("on_outcome")
        if plan is not self._observed:
            self._observed = plan
            implementations = self._plans["on_outcome"][0]
            self.timed_observers = any("hooks" in impl.argnames for impl in implementations)
            self._observers = tuple(
                (impl.function, _facts(impl.argnames)) for impl in reversed(implementations)
            )
        return self._observers

    def observe(self, plan: _Observers, facts: Facts) -> None:
        """Call each of ``plan`` with ``on_outcome``'s arguments; an error never propagates,
        and never keeps the other implementations from running."""
        for function, arguments in plan:
            try:
                result = function(*arguments(facts))
                if result is not None and inspect.isawaitable(result):
                    _run_to_completion(result)
            except Exception:
                logger.exception("on_outcome hook raised; ignored", extra=_observed(facts))

    async def observe_async(self, plan: _Observers, facts: Facts) -> None:
        from asgiref.sync import sync_to_async

        for function, arguments in plan:
            args = arguments(facts)
            try:
                if inspect.iscoroutinefunction(function):
                    await function(*args)
                elif getattr(function, _NONBLOCKING, False):
                    function(*args)
                else:
                    await sync_to_async(function, thread_sensitive=False)(*args)
            except Exception:
                logger.exception("on_outcome hook raised; ignored", extra=_observed(facts))

    def notify(self, name: str, kwargs: dict[str, Any]) -> None:
        """Call an informational hook; its errors are logged, never propagated."""
        try:
            self.call((name,), kwargs)
        except Exception:
            logger.exception("%s hook raised; ignored", name, extra=_fields(kwargs))

    async def notify_async(self, name: str, kwargs: dict[str, Any]) -> None:
        try:
            await self.call_async((name,), kwargs)
        except Exception:
            logger.exception("%s hook raised; ignored", name, extra=_fields(kwargs))


def _fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The log fields of a hook call: what its delivery tells."""
    return _told(kwargs.get("delivery"), kwargs.get("key"), kwargs.get("outcome"))


def _observed(facts: Facts) -> dict[str, Any]:
    """The log fields of an ``on_outcome`` call: what its delivery tells."""
    return _told(facts.delivery, facts.key, facts.outcome)


def _told(delivery: Any, key: str | None, outcome: str | None) -> dict[str, Any]:
    if delivery is None:
        return log_fields(key=key, outcome=outcome)
    return log_fields(key=delivery.key, attempt=delivery.attempt, outcome=outcome)
