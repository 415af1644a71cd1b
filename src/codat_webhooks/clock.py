"""The one clock the receiver, its leases, its signature checks and its stores read.

Unix seconds from the wall clock, because several machines that share a store must agree on
when a lease runs out and when a record expires. Passing the same callable everywhere lets a
test move time forward (expire a lease, age a signature) without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeAlias

__all__ = ["Clock", "system_clock", "utc_now"]

Clock: TypeAlias = Callable[[], float]
"""Returns the current time in Unix seconds (UTC)."""

system_clock: Clock = time.time


def utc_now(clock: Clock) -> datetime:
    """The clock's reading as an aware UTC datetime, as :attr:`Delivery.received_at` holds it."""
    return datetime.fromtimestamp(clock(), timezone.utc)
