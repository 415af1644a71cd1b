"""Logs every answer and every worker run, one record each, credentials never included.

Records go to the ``codat_webhooks.receiver`` logger (``codat_webhooks.queue`` for a worker's
runs) with the fields of :data:`codat_webhooks.observe.LOG_FIELDS` as ``extra`` attributes,
so a JSON formatter can emit ``key``, ``type``, ``company``, ``outcome``, ``status``,
``duration_ms`` and ``attempt`` as fields of their own.
"""

from __future__ import annotations

import logging

from ..hooks.dispatch import nonblocking
from ..hooks.markers import hookimpl
from ..observe import log_fields

__all__ = ["LogPlugin"]

logger = logging.getLogger("codat_webhooks.receiver")
worker_logger = logging.getLogger("codat_webhooks.queue")

_DEBUG, _INFO, _WARNING, _ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR

_LEVELS = {
    "processed": _INFO,
    "queued": _INFO,
    "duplicate": _INFO,
    "in_progress": _INFO,
    "conflict": _WARNING,
    "unauthorized": _WARNING,
    "invalid": _WARNING,
    "too_large": _WARNING,
    "method_not_allowed": _WARNING,
    "retry": _WARNING,
    "failed": _ERROR,
    "unavailable": _ERROR,
}
_WORKER_LEVELS = {**_LEVELS, "duplicate": _DEBUG, "in_progress": _DEBUG}
"""A worker finding nothing to run, or a key held by another worker, is routine."""

_MESSAGES = {
    "processed": "processed %s %r in %.1f ms (attempt %d)",
    "queued": "queued %s %r in %.1f ms",
    "duplicate": "duplicate %s %r ignored",
    "in_progress": "%s %r is being processed elsewhere; asked the sender to retry",
    "retry": "hook failed for %s %r (attempt %d), will retry: %s",
    "failed": "hook failed for %s %r (attempt %d)",
    "unavailable": "could not reach the store or queue for %s %r: %s",
}


class LogPlugin:
    """Registered by default; silence it with the logging configuration, not by removing it.

    :func:`nonblocking`: a log call must not cost each async delivery a hop to a worker thread.
    """

    @hookimpl
    @nonblocking
    def on_outcome(
        self,
        outcome: str,
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
        if outcome == "processed":
            log.log(level, _MESSAGES[outcome], shown, kind, millis, attempt, extra=extra)
        elif outcome == "queued":
            log.log(level, _MESSAGES[outcome], shown, kind, millis, extra=extra)
        elif outcome in ("duplicate", "in_progress"):
            log.log(level, _MESSAGES[outcome], shown, kind, extra=extra)
        elif outcome == "retry":
            log.log(level, _MESSAGES[outcome], shown, kind, attempt, error, extra=extra)
        elif outcome == "failed":
            log.log(level, _MESSAGES[outcome], shown, kind, attempt, exc_info=error, extra=extra)
        elif outcome == "unavailable":
            log.log(level, _MESSAGES[outcome], shown, kind, _describe(error), extra=extra)
        else:  # a rejection, with the precise reason the sender never sees
            reason = f": {error}" if error is not None else ""
            log.log(level, "rejected %s (%s %s)%s", shown, status, outcome, reason, extra=extra)


def _describe(error: BaseException | None) -> str:
    return "unknown error" if error is None else f"{type(error).__name__}: {error}"
