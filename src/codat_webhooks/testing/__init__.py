"""Helpers for testing code that receives Codat webhooks: samples, signatures, recorders.

Public and stable, in the spirit of ``werkzeug.test``: use them in your own test suites.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
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

# The retry helpers need the Receiver (pydantic and the models), which `codat-webhooks trigger`
# never uses: imported on first use.
__getattr__, __dir__ = lazy_names(
    __name__,
    dict.fromkeys(
        (
            "LEGACY_RETRIES",
            "SVIX_RETRIES",
            "Attempt",
            "FakeClock",
            "RetrySchedule",
            "deliver_concurrently",
            "deliver_with_retries",
        ),
        "retries",
    ),
)
