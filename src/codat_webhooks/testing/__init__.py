"""Helpers for testing code that receives Codat webhooks: samples, signatures, recorders.

Public and stable, in the spirit of ``werkzeug.test``: use them in your own test suites.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .recorder import HookCall, Recorder
from .samples import event_body, event_sample, event_type_string, legacy_sample, sample_body
from .signing import sign

if TYPE_CHECKING:
    from .retries import (
        LEGACY_RETRIES,
        SVIX_RETRIES,
        Attempt,
        FakeClock,
        RetrySchedule,
        deliver_concurrently,
        deliver_with_retries,
    )

__all__ = [
    "LEGACY_RETRIES",
    "SVIX_RETRIES",
    "Attempt",
    "FakeClock",
    "HookCall",
    "Recorder",
    "RetrySchedule",
    "deliver_concurrently",
    "deliver_with_retries",
    "event_body",
    "event_sample",
    "event_type_string",
    "legacy_sample",
    "sample_body",
    "sign",
]

_RETRIES = {
    "LEGACY_RETRIES",
    "SVIX_RETRIES",
    "Attempt",
    "FakeClock",
    "RetrySchedule",
    "deliver_concurrently",
    "deliver_with_retries",
}
"""Imported from :mod:`.retries` on first use: it needs the :class:`~codat_webhooks.Receiver`
(pydantic and the models), which ``codat-webhooks trigger`` never uses."""


def __getattr__(name: str) -> Any:
    if name not in _RETRIES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.retries"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_RETRIES})
