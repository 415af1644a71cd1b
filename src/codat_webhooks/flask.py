"""
Flask extension
===============

The usual Flask shape for the WSGI middleware, settings included::

    import os

    from codat_webhooks.flask import CodatWebhooks

    webhooks = CodatWebhooks()          # at module level, no app yet

    def create_app():
        app = Flask(__name__)
        app.config["CODAT_WEBHOOKS_AUTHORIZATION"] = os.environ["CODAT_WEBHOOKS_AUTHORIZATION"]
        webhooks.init_app(app)
        return app

``CodatWebhooks(app)`` does the same in one step. Without a ``receiver``, one is built from
``app.config`` under the environment variables' names (:mod:`codat_webhooks.settings`), with the
app's plugins from ``CODAT_WEBHOOKS_PLUGINS`` (a list of plugin objects). It is mounted as
:class:`codat_webhooks.wsgi.WebhookMiddleware` around ``app.wsgi_app`` at ``CODAT_WEBHOOKS_PATH``
(default ``/webhooks/codat``, with or without a trailing slash), so Flask never parses a webhook
body. ``app.extensions["codat_webhooks"]`` holds the receiver, for tests and commands.

Closing: Flask has no application-shutdown signal (``teardown_appcontext`` runs after every
request, when the store must stay open), so a receiver the extension built is closed when the
interpreter exits, or earlier by :meth:`CodatWebhooks.close`. A receiver passed in is the
caller's to close.

This module imports Flask; nothing in the core imports this module.
"""

from __future__ import annotations

import atexit
from typing import Any

from flask import Flask, current_app

from .receiver import Receiver
from .settings import receiver_from_settings
from .wsgi import WebhookMiddleware

__all__ = ["DEFAULT_PATH", "EXTENSION_NAME", "CodatWebhooks"]

DEFAULT_PATH = "/webhooks/codat"
EXTENSION_NAME = "codat_webhooks"
"""The key in ``app.extensions`` under which the app's receiver is kept."""


class CodatWebhooks:
    """Mounts a Codat webhook receiver in a Flask app, now or later with :meth:`init_app`."""

    def __init__(
        self,
        app: Flask | None = None,
        receiver: Receiver | None = None,
        *,
        path: str | None = None,
        **receiver_args: Any,
    ) -> None:
        """:param receiver: use this one instead of building one from ``app.config``.
        :param path: where to answer; else ``CODAT_WEBHOOKS_PATH``, else ``/webhooks/codat``.
        :param receiver_args: more :class:`Receiver` arguments (``plugins``, ``max_body_bytes``,
            ...) for a receiver built from the config.
        """
        self._receiver = receiver
        self._path = path
        self._receiver_args = receiver_args
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> Receiver:
        """Build (or take) the receiver, mount it on ``app``, and return it."""
        receiver = self._receiver
        if receiver is None:
            args = {"plugins": app.config.get("CODAT_WEBHOOKS_PLUGINS", ()), **self._receiver_args}
            receiver = receiver_from_settings(app.config, **args)
            atexit.register(receiver.close)
        path = self._path or app.config.get("CODAT_WEBHOOKS_PATH") or DEFAULT_PATH
        app.wsgi_app = WebhookMiddleware(app.wsgi_app, receiver, path=path)  # type: ignore[method-assign]
        app.extensions[EXTENSION_NAME] = receiver
        return receiver

    def receiver(self, app: Flask | None = None) -> Receiver:
        """The receiver mounted on ``app`` (default: the current app)."""
        target = app if app is not None else current_app
        found: Receiver = target.extensions[EXTENSION_NAME]
        return found

    def close(self, app: Flask | None = None) -> None:
        """Close the receiver mounted on ``app`` (default: the current app) and its store."""
        receiver = self.receiver(app)
        receiver.close()
        atexit.unregister(receiver.close)
