"""A plugin that implements every hook and records each call, for assertions in tests.

It is built from the hookspec modules themselves, so hooks added later (new event types) are
recorded without changing this file. It can also be told to fail, to exercise retries.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..hookspecs import PROJECT_NAME, SPEC_MODULES, hookimpl

__all__ = ["HookCall", "Recorder"]

_SPEC_MARKER = PROJECT_NAME + "_spec"


@dataclass(frozen=True, slots=True)
class HookCall:
    """One hook call: its name and every argument it was given, by name."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, argument: str) -> Any:
        try:
            return self.arguments[argument]
        except KeyError:
            raise AttributeError(f"{self.name} has no argument {argument!r}") from None


class Recorder:
    """Register it as a plugin: ``Receiver(plugins=[recorder], ...)``; thread-safe.

    ``recorder.calls`` is every call in order; :meth:`names` just the hook names;
    :meth:`fail` makes a hook raise the next N times (a handler bug, then its fix).
    ``on_outcome``, called after every answer, is recorded only with ``outcomes=True``, so
    the calls of other hooks read as they always did.
    """

    def __init__(self, *, outcomes: bool = False) -> None:
        self.calls: list[HookCall] = []
        self._lock = threading.Lock()
        self._failures: dict[str, list[BaseException]] = {}
        for module in SPEC_MODULES:
            for name, spec in vars(module).items():
                if callable(spec) and hasattr(spec, _SPEC_MARKER):
                    if name == "on_outcome" and not outcomes:
                        continue
                    setattr(self, name, self._implementation(name, spec))

    def _implementation(self, name: str, spec: Callable[..., Any]) -> Callable[..., None]:
        parameters = list(inspect.signature(spec).parameters)

        def record(*args: Any) -> None:
            with self._lock:
                self.calls.append(HookCall(name, dict(zip(parameters, args, strict=True))))
                pending = self._failures.get(name)
                error = pending.pop(0) if pending else None
            if error is not None:
                raise error

        # pluggy reads the argument names to pass through ``__wrapped__``: we ask for all of them
        record.__wrapped__ = spec  # type: ignore[attr-defined]
        record.__name__ = name
        return hookimpl(record)

    def fail(self, hook: str, times: int = 1, error: BaseException | None = None) -> None:
        """Make ``hook`` raise ``error`` (a ``RuntimeError`` by default) on its next calls."""
        if not callable(getattr(self, hook, None)) or hook.startswith("_"):
            raise ValueError(f"no hook named {hook!r}")
        with self._lock:
            self._failures.setdefault(hook, []).extend(
                [error or RuntimeError(f"{hook} failed (Recorder.fail)")] * times
            )

    def names(self) -> list[str]:
        with self._lock:
            return [call.name for call in self.calls]

    def calls_to(self, hook: str) -> list[HookCall]:
        with self._lock:
            return [call for call in self.calls if call.name == hook]

    def keys(self, hook: str = "on_alert") -> list[str | None]:
        """The delivery keys ``hook`` saw, in order: exactly-once shows as no repeats."""
        return [call.arguments["delivery"].key for call in self.calls_to(hook)]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures.clear()
