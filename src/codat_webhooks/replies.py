"""The status policy: every reply the receiver can give, and why each status is the one.

Codat's legacy sender retries only 408, 420, 429, 460, 502, 503, 504, 522 and 524, and its new
service retries anything but a 2xx, so every answer here falls in one of three kinds:

- **2xx: done, never send it again** — processed, queued for our workers (202), a duplicate;
- **503 + Retry-After: try again later** — a hook failed, the key is held by another worker,
  or the store (or queue) is unavailable. 503 because it is the one status both senders retry;
- **4xx: retrying cannot help** — a wrong method (405), bad credentials (401, with no hint of
  which check failed), a body too large (413), not JSON (400), not an alert or event, or a
  second body under a known key (422).

A reply body is always ``{"outcome", "key", "detail"}`` in that order; ``GET <path>/health`` is
the one other shape.
"""

from __future__ import annotations

import math

from .delivery import Reply
from .errors import CodatWebhookError
from .outcomes import Outcome
from .stores.base import State

__all__ = [
    "ALLOWED",
    "HEALTHY",
    "duplicate",
    "failed",
    "in_progress",
    "processed",
    "queued",
    "rejected",
    "stale",
    "unavailable",
    "unhealthy",
]

ALLOWED = ("Allow", "POST, PUT")

_GENERIC_DETAILS = {401: "authentication failed", 413: "body too large"}
"""Details that replace the error's reason in replies: a prober learns nothing from them."""

_HEALTH_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
HEALTHY = Reply(200, list(_HEALTH_HEADERS), b'{"status": "ok"}', "ok")


def processed(key: str) -> Reply:
    return Reply.build(200, Outcome.PROCESSED, key, "processed")


def queued(key: str) -> Reply:
    return Reply.build(202, Outcome.QUEUED, key, "queued")


def stale(key: str) -> Reply:
    """Older than what the scope already had, and skipped: 200, so the sender stops."""
    return Reply.build(200, Outcome.STALE, key, "stale; a newer event was received first")


_FIRST_COPY: dict[State | None, str] = {
    State.DONE: "already processed",
    State.QUEUED: "already received; queued",
    State.PROCESSING: "already received; being processed",
}
"""With a queue, a duplicate's first copy may still wait for a worker or be running: saying
"already processed" would send whoever reads the answer looking for a result not there yet."""


def duplicate(key: str, first: State | None = State.DONE) -> Reply:
    """Received before: 200, so the sender stops; the detail says where the first copy is
    (``first`` is its state, ``None`` from a store that does not tell)."""
    detail = _FIRST_COPY.get(first, "already received")
    return Reply.build(200, Outcome.DUPLICATE, key, detail)


def in_progress(key: str, seconds_left: float) -> Reply:
    """Another worker holds the key's lease: come back when it would have run out."""
    retry = ("Retry-After", str(max(1, math.ceil(seconds_left))))
    detail = "this key is being processed; retry later"
    return Reply.build(503, Outcome.IN_PROGRESS, key, detail, (retry,))


def failed(key: str, retry_after: int) -> Reply:
    """A hook raised; its claim was released, so the sender's retry runs the hooks again."""
    detail = "a handler failed; retry later"
    return Reply.build(503, Outcome.FAILED, key, detail, (("Retry-After", str(retry_after)),))


def unavailable(key: str | None, retry_after: int, part: str = "store") -> Reply:
    """The store (or the queue) could not take the delivery; no hook ran."""
    detail = f"{part} unavailable; retry later"
    retry = (("Retry-After", str(retry_after)),)
    return Reply.build(503, Outcome.UNAVAILABLE, key, detail, retry)


def rejected(error: CodatWebhookError, key: str | None, retry_after: int) -> Reply:
    """The reply for an error raised before the hooks: its status comes with it."""
    status = error.status_hint
    detail = _GENERIC_DETAILS.get(status, error.reason)
    extra: tuple[tuple[str, str], ...] = ()
    if status == 405:
        extra = (ALLOWED,)
    elif status == 503:  # our failure, not the delivery's: Codat must try again
        extra = (("Retry-After", str(retry_after)),)
    return Reply.build(status, error.outcome, key, detail, extra)


def unhealthy(retry_after: int) -> Reply:
    """``GET <path>/health`` while the store does not answer; names nothing of the setup."""
    headers = [*_HEALTH_HEADERS, ("Retry-After", str(retry_after))]
    return Reply(503, headers, b'{"status": "unavailable"}', "unavailable")
