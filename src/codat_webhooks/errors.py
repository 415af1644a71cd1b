"""Every error codat-webhooks raises, each carrying the HTTP status it should become.

Lower layers raise these; only :class:`codat_webhooks.Receiver` turns them into replies, by
reading ``status_hint`` and ``outcome`` instead of consulting a lookup table (the h11 pattern).
"""

from __future__ import annotations

from .outcomes import Outcome

__all__ = [
    "CodatWebhookError",
    "ConfigurationError",
    "ConflictError",
    "MethodNotAllowedError",
    "PayloadError",
    "PayloadTooLargeError",
    "StoreError",
    "VerificationError",
]


class CodatWebhookError(Exception):
    """Base class, so callers can catch everything this library raises in one place."""

    status_hint: int = 503
    """503 unless a subclass knows better: a failure on our side must make Codat retry."""
    outcome: Outcome = Outcome.ERROR

    def __init__(self, message: str, *, status_hint: int | None = None) -> None:
        super().__init__(message)
        if status_hint is not None:
            self.status_hint = status_hint

    @property
    def reason(self) -> str:
        """The human-readable reason, for logs and ``on_rejected`` hooks (never for the sender)."""
        return str(self.args[0]) if self.args else ""


class ConfigurationError(CodatWebhookError):
    """The receiver or a store was set up in a way that cannot work safely.

    Raised at construction time so a misconfigured service fails on start, not on the first
    delivery.
    """

    outcome = Outcome.MISCONFIGURED


class VerificationError(CodatWebhookError):
    """The request could not be proven to come from Codat.

    The reason (missing header, stale timestamp, ...) goes to logs and hooks; the sender only
    ever sees a generic 401, so a prober learns nothing about what part was wrong.
    """

    status_hint = 401
    outcome = Outcome.UNAUTHORIZED


class PayloadError(CodatWebhookError):
    """The body is not something we can process.

    ``status_hint`` is 400 when the body is not a JSON object at all and 422 when it is a JSON
    object that is not a valid alert or event (those are parked, so nothing is lost).
    """

    status_hint = 422
    outcome = Outcome.INVALID


class PayloadTooLargeError(PayloadError):
    """The body exceeds ``max_body_bytes``.

    Never raised: the receiver hands it to ``on_rejected`` (the adapters stop reading such a
    body and ask the receiver for its reply through ``Receiver.reject_too_large``).
    """

    status_hint = 413
    outcome = Outcome.TOO_LARGE


class MethodNotAllowedError(CodatWebhookError):
    """The request is neither a POST nor a PUT, so it cannot be a delivery.

    Never raised and never passed to a hook: it only carries the 405 of the status policy.
    """

    status_hint = 405
    outcome = Outcome.METHOD_NOT_ALLOWED


class ConflictError(PayloadError):
    """A key already seen arrived with different body bytes.

    Either the sender reused an ID or someone is replaying a tampered body; both need a human,
    so the answer is 422 and hooks do not run.
    """

    outcome = Outcome.CONFLICT


class StoreError(CodatWebhookError):
    """The idempotency store could not be reached or answered wrongly.

    Becomes a 503 so Codat retries later: without the store we cannot promise exactly-once, so
    no hook runs.
    """

    status_hint = 503
    outcome = Outcome.UNAVAILABLE
