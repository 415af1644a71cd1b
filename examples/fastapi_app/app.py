"""An existing FastAPI app, plus a Codat webhook receiver at ``/webhooks/codat``.

The receiver is plain ASGI middleware in front of FastAPI's router, so FastAPI does no body
parsing for it (the signature is checked over the raw bytes), both ``/webhooks/codat`` and
``/webhooks/codat/`` are answered without a redirect, and no other route changes. The
``codat_webhooks.fastapi.lifespan`` helper puts the receiver on ``app.state`` and closes it at
shutdown. Settings come from the environment; see README.md for the commands.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from codat_webhooks.asgi import WebhookMiddleware
from codat_webhooks.fastapi import lifespan
from codat_webhooks.settings import receiver_from_settings

from ..alert_log import AlertLog, Handlers

logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(levelname)s %(message)s")


def create_app() -> FastAPI:
    alert_log = AlertLog(os.environ.get("EXAMPLE_APP_DB", "fastapi-example-app.sqlite3"))
    # CODAT_WEBHOOKS_* from the environment; a placeholder such as "whsec_..." counts as unset.
    receiver = receiver_from_settings(
        os.environ, default_db="fastapi-example-webhooks.sqlite3", plugins=[Handlers(alert_log)]
    )
    app = FastAPI(lifespan=lifespan(receiver))  # app.state.codat_webhooks while it runs

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

    app.add_middleware(WebhookMiddleware, receiver=receiver)
    return app


app = create_app()
