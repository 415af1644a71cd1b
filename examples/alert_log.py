"""What both example apps do with Codat alerts: keep a log of them in the app's own SQLite table.

One plugin serves the Flask (WSGI) and the FastAPI (ASGI) app unchanged: hooks know nothing of
the framework they run under.

The hooks run exactly once per alert (codat-webhooks deduplicates across all workers through the
shared store), so ``alerts`` gets one row per alert however often Codat retries it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

from codat_webhooks import Alert, Delivery, hookimpl

logger = logging.getLogger("example.webhooks")

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    rule_type TEXT NOT NULL,
    company_id TEXT,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connection_status (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    data_connection_id TEXT,
    new_status TEXT
);
"""


class AlertLog:
    """The app's own table of alerts; one short connection per call, so any thread may use it."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # several workers write to one file
            conn.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def add(self, table: str, **row: Any) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        with self._connect() as conn:
            conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))  # noqa: S608

    def rows(self, table: str = "alerts") -> list[dict[str, Any]]:
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY id")]  # noqa: S608


class Handlers:
    """A plugin: a sync hook for every alert and an async one for connection changes."""

    def __init__(self, log: AlertLog) -> None:
        self.log = log

    @hookimpl
    def on_alert(self, alert: Alert, delivery: Delivery) -> None:
        self.log.add(
            "alerts",
            key=delivery.key,
            rule_type=alert.rule_type,
            company_id=str(alert.company_id) if alert.company_id else None,
            received_at=delivery.received_at.isoformat(),
        )
        logger.info("recorded %s alert %s", alert.rule_type, delivery.key)

    @hookimpl
    async def on_data_connection_status_changed(self, alert: Any, delivery: Delivery) -> None:
        # An async hook: blocking work goes to a thread so an event loop would stay free.
        await asyncio.to_thread(
            self.log.add,
            "connection_status",
            key=delivery.key,
            data_connection_id=str(alert.data.data_connection_id),
            new_status=alert.data.new_status,
        )
        logger.info("connection %s is now %s", alert.data.data_connection_id, alert.data.new_status)
