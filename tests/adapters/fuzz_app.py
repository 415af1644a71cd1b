"""A receiver over the store named by the environment, as both a WSGI and an ASGI app.

``HOSTILE_STORE`` is ``sqlite``, ``redis`` or ``postgres`` and ``HOSTILE_TARGET`` its file, URL
or DSN; ``HOSTILE_AUTHORIZATION`` and ``HOSTILE_SECRET`` are the credentials;
``HOSTILE_NAMESPACE`` isolates the records (Redis prefix, PostgreSQL table). Serve
``tests.adapters.fuzz_app:wsgi`` with gunicorn or ``tests.adapters.fuzz_app:asgi`` with uvicorn.
"""

from __future__ import annotations

import os

from codat_webhooks import Receiver
from codat_webhooks.asgi import WebhookApp as AsgiApp
from codat_webhooks.stores import SQLiteStore, Store
from codat_webhooks.wsgi import WebhookApp as WsgiApp


def store_from_environment() -> Store:
    kind, target = os.environ["HOSTILE_STORE"], os.environ["HOSTILE_TARGET"]
    namespace = os.environ.get("HOSTILE_NAMESPACE", "hostile")
    if kind == "redis":
        from codat_webhooks.stores import RedisStore

        return RedisStore(target, prefix=f"{namespace}:")
    if kind == "postgres":
        from codat_webhooks.stores import PostgresStore

        return PostgresStore(target, table=namespace)
    return SQLiteStore(target)


receiver = Receiver(
    authorization=os.environ["HOSTILE_AUTHORIZATION"],
    signing_secrets=os.environ["HOSTILE_SECRET"],
    store=store_from_environment(),
    load_entrypoints=False,
)
wsgi = WsgiApp(receiver)
asgi = AsgiApp(receiver)
