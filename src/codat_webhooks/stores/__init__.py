"""Idempotency stores. ``RedisStore`` and ``PostgresStore`` import their drivers only when used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Claim, ClaimStatus, Entry, Record, State, Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .redis import RedisStore

__all__ = [
    "Claim",
    "ClaimStatus",
    "Entry",
    "MemoryStore",
    "PostgresStore",
    "Record",
    "RedisStore",
    "SQLiteStore",
    "State",
    "Store",
]


def __getattr__(name: str) -> Any:
    """Import optional backends on first use, so their drivers stay optional extras."""
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
