"""Logs every delivery outcome to the ``codat_webhooks`` logger, credentials never included."""

from __future__ import annotations

import logging

from ..delivery import Delivery
from ..hooks.dispatch import nonblocking
from ..hooks.markers import hookimpl
from ..models.events import Event
from ..models.legacy import Alert

__all__ = ["LogPlugin"]

logger = logging.getLogger("codat_webhooks")


class LogPlugin:
    """Registered by default; silence it with the logging configuration, not by removing it.

    Every method is :func:`nonblocking`: a log call must not cost each async delivery a hop
    to a worker thread.
    """

    @hookimpl(trylast=True)
    @nonblocking
    def on_alert(self, alert: Alert, delivery: Delivery) -> None:
        logger.debug(
            "processed %s %r (attempt %d)", delivery.key, alert.rule_type, delivery.attempt
        )

    @hookimpl
    @nonblocking
    def on_duplicate(self, delivery: Delivery) -> None:
        logger.info("duplicate %s ignored", delivery.key)

    @hookimpl
    @nonblocking
    def on_rejected(self, delivery: Delivery, error: Exception) -> None:
        logger.warning("rejected %s: %s", delivery.key or "(no key)", error)

    @hookimpl(trylast=True)
    @nonblocking
    def on_event(self, event: Event, delivery: Delivery) -> None:
        logger.debug(
            "processed %s %r (attempt %d)", delivery.key, event.event_type, delivery.attempt
        )

    @hookimpl
    @nonblocking
    def on_handler_error(
        self, payload: Alert | Event, delivery: Delivery, error: Exception
    ) -> None:
        kind = payload.rule_type if isinstance(payload, Alert) else payload.event_type
        # Inline, Codat retries; on a worker, the retries are spent: say neither.
        logger.error(
            "hook failed for %s %r (attempt %d)", delivery.key, kind, delivery.attempt,
            exc_info=error,
        )  # fmt: skip
