"""Logs every answer and every worker run, one record each, credentials never included.

Records go to the ``codat_webhooks.receiver`` logger (``codat_webhooks.queue`` for a worker's
runs) with the fields of :data:`codat_webhooks.observe.LOG_FIELDS` as ``extra`` attributes,
so a JSON formatter can emit ``key``, ``type``, ``company``, ``outcome``, ``status``,
``duration_ms`` and ``attempt`` as fields of their own.
"""

from __future__ import annotations

import logging

from .._logging import library_logger
from ..hooks.dispatch import nonblocking
from ..hooks.markers import hookimpl
from ..observe import log_fields
from ..outcomes import Outcome

__all__ = ["LogPlugin"]

logger = library_logger("codat_webhooks.receiver")
worker_logger = library_logger("codat_webhooks.queue")

_DEBUG, _INFO, _WARNING, _ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR

_LEVELS = {
    Outcome.PROCESSED: _INFO,
    Outcome.QUEUED: _INFO,
    Outcome.DUPLICATE: _INFO,
    Outcome.IN_PROGRESS: _INFO,
    Outcome.CONFLICT: _WARNING,
    Outcome.UNAUTHORIZED: _WARNING,
    Outcome.INVALID: _WARNING,
    Outcome.TOO_LARGE: _WARNING,
    Outcome.METHOD_NOT_ALLOWED: _WARNING,
    Outcome.RETRY: _WARNING,
    Outcome.FAILED: _ERROR,
    Outcome.ABANDONED: _ERROR,
    Outcome.UNAVAILABLE: _ERROR,
    Outcome.STALE: _INFO,
}
_WORKER_LEVELS = {**_LEVELS, Outcome.DUPLICATE: _DEBUG, Outcome.IN_PROGRESS: _DEBUG}
"""A worker finding nothing to run, or a key held by another worker, is routine."""

_MESSAGES = {
    Outcome.PROCESSED: "processed %s %r in %.1f ms (attempt %d)",
    Outcome.QUEUED: "queued %s %r in %.1f ms",
    Outcome.DUPLICATE: "duplicate %s %r ignored",
    Outcome.IN_PROGRESS: "%s %r is being processed elsewhere; asked the sender to retry",
    Outcome.RETRY: "hook failed for %s %r (attempt %d), will retry: %s",
    Outcome.FAILED: "hook failed for %s %r (attempt %d)",
    Outcome.UNAVAILABLE: "could not reach the store or queue for %s %r: %s",
    Outcome.STALE: "stale %s %r skipped: a newer event of its scope came first",
    Outcome.ABANDONED: "hook failed for %s %r on Codat's last attempt (attempt %d): only a"
    " replay will run it now: codat-webhooks replay %s",
}


class LogPlugin:
    """Registered by default; silence it with the logging configuration, not by removing it.

    :func:`nonblocking`: a log call must not cost each async delivery a hop to a worker thread.
    """

    @hookimpl
    @nonblocking
    def on_outcome(
        self,
        outcome: Outcome,
        status: int | None,
        key: str | None,
        kind: str | None,
        company_id: str | None,
        attempt: int,
        duration: float,
        error: BaseException | None,
        worker: bool,
    ) -> None:
        log = worker_logger if worker else logger
        level = (_WORKER_LEVELS if worker else _LEVELS).get(outcome, _ERROR)
        if not log.isEnabledFor(level):
            return
        millis = round(duration * 1000, 3)
        extra = log_fields(key, kind, company_id, outcome, status, millis, attempt)
        shown = key or "(no key)"
        if outcome == Outcome.PROCESSED:
            log.log(level, _MESSAGES[outcome], shown, kind, millis, attempt, extra=extra)
        elif outcome == Outcome.QUEUED:
            log.log(level, _MESSAGES[outcome], shown, kind, millis, extra=extra)
        elif outcome in (Outcome.DUPLICATE, Outcome.IN_PROGRESS, Outcome.STALE):
            log.log(level, _MESSAGES[outcome], shown, kind, extra=extra)
        elif outcome == Outcome.RETRY:
            log.log(level, _MESSAGES[outcome], shown, kind, attempt, error, extra=extra)
        elif outcome == Outcome.FAILED:
            log.log(level, _MESSAGES[outcome], shown, kind, attempt, exc_info=error, extra=extra)
        elif outcome == Outcome.ABANDONED:
            message = _MESSAGES[outcome]
            log.log(level, message, shown, kind, attempt, shown, exc_info=error, extra=extra)
        elif outcome == Outcome.UNAVAILABLE:
            log.log(level, _MESSAGES[outcome], shown, kind, _describe(error), extra=extra)
        else:  # a rejection, with the precise reason the sender never sees
            reason = f": {error}" if error is not None else ""
            log.log(level, "rejected %s (%s %s)%s", shown, status, outcome, reason, extra=extra)


def _describe(error: BaseException | None) -> str:
    return "unknown error" if error is None else f"{type(error).__name__}: {error}"
