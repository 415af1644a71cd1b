"""
FastAPI (and Starlette) lifespan
================================

The receiver's store holds connections and a lease-renewing thread; the app's lifespan is where
they should be let go. :func:`lifespan` is a ready lifespan for ``FastAPI(lifespan=...)`` or
``Starlette(lifespan=...)`` that puts the receiver on ``app.state`` at startup (where tests and
your own routes find it) and closes it, store included, at shutdown::

    from codat_webhooks.asgi import WebhookMiddleware
    from codat_webhooks.fastapi import lifespan

    receiver = Receiver(...)
    app = FastAPI(lifespan=lifespan(receiver))
    app.add_middleware(WebhookMiddleware, receiver=receiver)   # both /webhooks/codat spellings

    # later, in a test or a route: app.state.codat_webhooks is receiver

Your own lifespan composes: ``lifespan(receiver, then=my_lifespan)`` runs it inside, and what it
yields (lifespan state) is yielded on. Plain ASGI: this module imports no framework.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from .receiver import Receiver

__all__ = ["STATE_NAME", "Lifespan", "lifespan"]

STATE_NAME = "codat_webhooks"
"""The ``app.state`` attribute that holds the receiver while the app runs."""

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
"""What ``FastAPI(lifespan=...)`` takes: the app in, an async context manager out."""


def lifespan(receiver: Receiver, *, then: Lifespan | None = None) -> Lifespan:
    """A lifespan that publishes ``receiver`` on ``app.state`` and closes it at shutdown.

    :param then: your own lifespan, run inside this one; its yielded state is passed on.
    """

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        state = getattr(app, "state", None)
        if state is not None:
            setattr(state, STATE_NAME, receiver)
        try:
            if then is None:
                yield None
            else:
                async with then(app) as value:
                    yield value
        finally:
            await asyncio.to_thread(receiver.close)  # closing a store may block on its server

    return run
