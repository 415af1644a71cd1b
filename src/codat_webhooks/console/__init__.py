"""The deliveries console: see every stored delivery in a browser, look inside, replay.

A small server-rendered WSGI application (Jinja2 templates, no JavaScript) over the store and
plugins of your receiver, behind its own operator password. Mount it beside your webhook::

    from codat_webhooks.console import Console
    console = Console(receiver, password=os.environ["CODAT_WEBHOOKS_CONSOLE_PASSWORD"])
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/console": console})  # Flask
    app.mount("/console", console.asgi())                                      # FastAPI

Needs the ``console`` extra (``pip install 'codat-webhooks[console]'``).
"""

from __future__ import annotations

from .app import ENV_PASSWORD, Console

__all__ = ["ENV_PASSWORD", "Console"]
