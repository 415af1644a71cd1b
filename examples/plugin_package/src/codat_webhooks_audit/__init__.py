"""An audit trail for codat-webhooks: one JSON line per processed, duplicate or rejected delivery.

Installed, it is found through the ``codat_webhooks`` entry point, and so loaded by every
``Receiver`` in the environment (unless built with ``load_entrypoints=False``), including apps
that never asked for an audit. So it writes nothing until told where:
``CODAT_WEBHOOKS_AUDIT_FILE`` names the file. The variable is read on every call rather than at
import, so importing the plugin has no side effects.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from typing import Any

from codat_webhooks import Alert, Delivery, hookimpl

__all__ = ["AUDIT_FILE_VARIABLE", "on_alert", "on_duplicate", "on_rejected"]

AUDIT_FILE_VARIABLE = "CODAT_WEBHOOKS_AUDIT_FILE"
_lock = threading.Lock()  # async hooks run sync ones in worker threads: keep lines whole


def _write(record: dict[str, Any]) -> None:
    path = os.environ.get(AUDIT_FILE_VARIABLE)
    if not path:
        return  # not configured: an installed plugin must not write into whatever directory
    record["at"] = datetime.now(timezone.utc).isoformat()
    line = json.dumps(record, sort_keys=True) + "\n"
    with _lock, open(path, "a", encoding="utf-8") as file:
        file.write(line)


@hookimpl(trylast=True)
def on_alert(alert: Alert, delivery: Delivery) -> None:
    """Runs after every per-rule hook succeeded, so a line means the alert was handled."""
    _write(
        {
            "outcome": "processed",
            "key": delivery.key,
            "rule_type": alert.rule_type,
            "company_id": str(alert.company_id) if alert.company_id else None,
            "attempt": delivery.attempt,
            "verified_by": delivery.verified_by,
        }
    )


@hookimpl
def on_duplicate(delivery: Delivery) -> None:
    _write({"outcome": "duplicate", "key": delivery.key})


@hookimpl
def on_rejected(delivery: Delivery, error: Exception) -> None:
    """The reason is our own error message: it never contains credentials or the body."""
    _write({"outcome": "rejected", "key": delivery.key, "reason": str(error)})
