"""An ASGI app whose only hook is slow and sync: it blocks until another request releases it.

If the adapter ran that hook on the event loop, the releasing request could never be served.
"""

from __future__ import annotations

import threading
from typing import Any

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.asgi import WebhookMiddleware
from codat_webhooks.stores import MemoryStore

released = threading.Event()
state = {"hook": "not called"}


class SlowHook:
    @hookimpl
    def on_alert(self) -> None:
        state["hook"] = "waiting"
        state["hook"] = "released" if released.wait(timeout=60) else "timed out"


async def control(scope: Any, receive: Any, send: Any) -> None:
    """``GET /state`` reports the hook's state; ``POST /release`` lets it finish."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/release":
        released.set()
    body = state["hook"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


receiver = Receiver(
    authorization="Bearer slow", store=MemoryStore(), plugins=[SlowHook()], load_entrypoints=False
)
app = WebhookMiddleware(control, receiver)
