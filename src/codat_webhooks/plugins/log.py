"""Logs every delivery outcome to the ``codat_webhooks`` logger, credentials never included."""

from __future__ import annotations

import logging

from ..delivery import Delivery
from ..hooks.hookspecs import hookimpl
from ..models.legacy import Alert

__all__ = ["LogPlugin"]

logger = logging.getLogger("codat_webhooks")


class LogPlugin:
    """Registered by default; silence it with the logging configuration, not by removing it."""

    @hookimpl(trylast=True)
    def on_alert(self, alert: Alert, delivery: Delivery) -> None:
        logger.debug("processed %s %r (attempt %d)", delivery.key, alert.rule_type, delivery.attempt)

    @hookimpl
    def on_duplicate(self, delivery: Delivery) -> None:
        logger.info("duplicate %s ignored", delivery.key)

    @hookimpl
    def on_rejected(self, delivery: Delivery, error: Exception) -> None:
        logger.warning("rejected %s: %s", delivery.key or "(no key)", error)

    @hookimpl
    def on_handler_error(self, alert: Alert, delivery: Delivery, error: Exception) -> None:
        logger.error(
            "hook failed for %s %r; Codat will retry", delivery.key, alert.rule_type, exc_info=error
        )
