"""Helpers for testing code that receives Codat webhooks: samples, signatures, recorders.

Public and stable, in the spirit of ``werkzeug.test``: use them in your own test suites.
"""

from __future__ import annotations

from .recorder import HookCall, Recorder
from .retries import (
    LEGACY_RETRIES,
    SVIX_RETRIES,
    Attempt,
    FakeClock,
    RetrySchedule,
    deliver_concurrently,
    deliver_with_retries,
)
from .samples import event_body, event_sample, event_type_string, legacy_sample, sample_body
from .signing import sign

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
