"""A FastAPI application with the receiver and the console mounted, for the console's tests.

Served by uvicorn as it is (the console at ``/ops``), and by ``codat-webhooks serve --console
--app`` (which adds one more at ``/console``). The store is the SQLite file ``$CONSOLE_TEST_DB``;
the plugin fails while ``$CONSOLE_TEST_FAIL`` exists.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from codat_webhooks import Receiver
from codat_webhooks.asgi import WebhookMiddleware
from codat_webhooks.console import Console
from codat_webhooks.stores import SQLiteStore
from tests.console.helpers import AUTHORIZATION, PASSWORD, FailsWhileMarked

receiver = Receiver(
    authorization=AUTHORIZATION,
    store=SQLiteStore(os.environ["CONSOLE_TEST_DB"]),
    plugins=[FailsWhileMarked()],
    load_entrypoints=False,
)
app = FastAPI()
app.add_middleware(WebhookMiddleware, receiver=receiver)
app.mount("/ops", Console(receiver, password=PASSWORD).asgi())


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}
