"""An existing Flask app, plus a Codat webhook receiver at ``/webhooks/codat``.

The receiver is wrapped around ``app.wsgi_app``, so Flask never sees webhook requests (no
``request.get_json()`` re-serialising the body) and every other route works as before.
Settings come from the environment; see README.md for the commands.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

from flask import Flask, Response, jsonify

from codat_webhooks import Receiver
from codat_webhooks.stores import SQLiteStore
from codat_webhooks.wsgi import WebhookMiddleware

from ..alert_log import AlertLog, Handlers

logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(levelname)s %(message)s")


def create_app() -> Flask:
    app = Flask(__name__)
    alert_log = AlertLog(os.environ.get("EXAMPLE_APP_DB", "example-app.sqlite3"))

    @app.get("/")
    def index() -> Response:
        return jsonify(service="flask example", webhooks="/webhooks/codat")

    @app.get("/alerts")
    def alerts() -> Response:
        return jsonify(alert_log.rows())

    @app.get("/alerts.ndjson")
    def alerts_stream() -> Response:
        def lines() -> Iterator[str]:
            for row in alert_log.rows():
                yield json.dumps(row) + "\n"

        return Response(lines(), mimetype="application/x-ndjson")

    receiver = Receiver(
        authorization=os.environ.get("CODAT_WEBHOOKS_AUTHORIZATION") or None,
        signing_secrets=os.environ.get("CODAT_WEBHOOKS_SIGNING_SECRET") or None,
        store=SQLiteStore(os.environ.get("CODAT_WEBHOOKS_DB", "codat-webhooks.sqlite3")),
        plugins=[Handlers(alert_log)],
    )
    app.wsgi_app = WebhookMiddleware(app.wsgi_app, receiver, path="/webhooks/codat")  # type: ignore[method-assign]
    return app


app = create_app()
