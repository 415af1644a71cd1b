"""Every ``outcome`` a reply or a worker's run can have: the word a sender, a log line, a
metric, a trace or the CLI sees.

One enum, so the status policy, the errors that map onto it and the reply bodies cannot
disagree about the spelling of an outcome.
"""

from __future__ import annotations

from .text_enum import TextEnum

__all__ = ["Outcome"]


class Outcome(TextEnum):
    """A reply's ``outcome``; compares equal to its string, so ``reply.outcome == "processed"``."""

    PROCESSED = "processed"
    """Every hook returned (or an unknown type was authenticated and passed to its hook)."""
    QUEUED = "queued"
    """Queued dispatch: recorded and handed to the queue; the hooks run on a worker."""
    DUPLICATE = "duplicate"
    """The key was already processed; only ``on_duplicate`` ran."""
    IN_PROGRESS = "in_progress"
    """Another worker holds a live lease on the key; retry later."""
    CONFLICT = "conflict"
    """The key was already received with a different body."""
    UNAUTHORIZED = "unauthorized"
    """Missing or wrong credentials, or a bad or stale signature."""
    INVALID = "invalid"
    """Not a JSON object (400), or not an alert or event (422, parked)."""
    TOO_LARGE = "too_large"
    """The body exceeds ``max_body_bytes``."""
    METHOD_NOT_ALLOWED = "method_not_allowed"
    """Neither POST nor PUT."""
    FAILED = "failed"
    """A hook raised; the claim was released so the retry runs the hooks again."""
    UNAVAILABLE = "unavailable"
    """The store could not be reached; no hook ran."""
    RETRY = "retry"
    """On a worker only (never a reply): a hook raised and the key is queued again, to run
    after a backoff; after the last attempt the outcome is ``failed``."""
    ABANDONED = "abandoned"
    """Told to ``on_outcome`` only (the reply is ``failed``): a hook raised on the sender's last
    attempt (Codat's eighth), so nothing will run the delivery again but a replay
    (``codat-webhooks replay KEY``) or a resend from the Codat Portal."""
    MISCONFIGURED = "misconfigured"
    """The receiver or its store is set up in a way that cannot work."""
    ERROR = "error"
    """Any other failure of this library."""
    STALE = "stale"
    """Older than an event of the same scope already received, and ``Receiver(stale="skip")``:
    ``on_stale`` ran instead of the rule's hooks; answered 200 so Codat stops sending it."""
