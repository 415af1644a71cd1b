"""After the hooks: what the store must record about a claimed key, and what happens when the
store cannot record it.

Each step is a small pipeline (it *yields* its store call as an effect, like the receiver's
pipelines) with the entry for the key's history (:mod:`.attempts`). None of them raises: the
hooks have run, so the answer stands, and a key the store could not settle is settled by its
lease running out (or, for a completion, retried in the background) instead.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ._logging import library_logger
from .effects import Ask, CompleteLater, Effect
from .errors import StoreError
from .observe import log_fields
from .stores.history import HistoryEntry

__all__ = ["complete", "defer", "noted", "release"]

logger = library_logger("codat_webhooks.receiver")

_Step = Generator[Effect, Any, None]


def complete(key: str, token: int, attempt: HistoryEntry | None = None) -> _Step:
    """The key is done. Answering 200 is right even if recording that fails, because a retry
    would run the hooks again: the claim is kept and completed in the background instead."""
    try:
        if not (yield Ask("complete", (key, token, attempt))):
            logger.warning(
                "%s completed after its lease was taken over", key, extra=log_fields(key)
            )
    except StoreError as exc:
        message = "processed %s but could not record it (%s); retrying in the background"
        logger.error(message, key, exc, extra=log_fields(key))
        yield CompleteLater(key, token)


def release(key: str, token: int, exc: BaseException, attempt: HistoryEntry | None) -> _Step:
    """A hook failed: the key is ``failed``, so the sender's retry claims it again."""
    try:
        yield Ask("release", (key, token, f"{type(exc).__name__}: {exc}", attempt))
    except StoreError as store_exc:
        message = "could not release %s (%s); its lease will expire"
        logger.error(message, key, store_exc, extra=log_fields(key))


def defer(
    key: str, token: int, exc: BaseException, due: float, attempt: HistoryEntry | None
) -> _Step:
    """A hook failed on a worker: the key is queued again, due at ``due`` (the retry policy)."""
    error = f"{type(exc).__name__}: {exc}"
    try:
        yield Ask("defer", (key, token, due, error, attempt))
    except StoreError as store_exc:
        message = "could not defer %s (%s); its lease will expire"
        logger.error(message, key, store_exc, extra=log_fields(key))


def noted(key: str, attempt: HistoryEntry) -> _Step:
    """An answer that changed no state (a queue that refused a recorded key): on the key's
    history only. The answer stands if the store cannot note it."""
    try:
        yield Ask("note", (key, attempt))
    except StoreError as exc:
        logger.warning("could not note %s's answer (%s)", key, exc, extra=log_fields(key))
