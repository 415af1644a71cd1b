"""An existing FastAPI app, plus a Codat webhook receiver at ``/webhooks/codat``.

The receiver is a plain ASGI app added as a route, so FastAPI does no body parsing for it (the
signature is checked over the raw bytes) and no other route changes. Settings come from the
environment; see README.md for the commands.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from codat_webhooks import Receiver
from codat_webhooks.asgi import WebhookApp
from codat_webhooks.stores import SQLiteStore

from ..alert_log import AlertLog, Handlers

logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(levelname)s %(message)s")


def create_app() -> FastAPI:
    alert_log = AlertLog(os.environ.get("EXAMPLE_APP_DB", "example-app.sqlite3"))
    receiver = Receiver(
        authorization=os.environ.get("CODAT_WEBHOOKS_AUTHORIZATION") or None,
        signing_secrets=os.environ.get("CODAT_WEBHOOKS_SIGNING_SECRET") or None,
        store=SQLiteStore(os.environ.get("CODAT_WEBHOOKS_DB", "codat-webhooks.sqlite3")),
        plugins=[Handlers(alert_log)],
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        receiver.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"service": "fastapi example", "webhooks": "/webhooks/codat"}

    @app.get("/alerts")
    def alerts() -> list[dict[str, Any]]:
        return alert_log.rows()

    @app.get("/alerts.ndjson")
    def alerts_stream() -> StreamingResponse:
        def lines() -> Iterator[str]:
            for row in alert_log.rows():
                yield json.dumps(row) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    app.add_route("/webhooks/codat", WebhookApp(receiver), methods=["POST", "PUT"])
    return app


app = create_app()
