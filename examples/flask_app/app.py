"""An existing Flask app, plus a Codat webhook receiver at ``/webhooks/codat``.

The :class:`~codat_webhooks.flask.CodatWebhooks` extension wraps the receiver around
``app.wsgi_app``, so Flask never sees webhook requests (no ``request.get_json()`` re-serialising
the body) and every other route works as before. Settings come from the environment, copied into
``app.config`` under the same names; see README.md for the commands.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

from flask import Flask, Response, jsonify

from codat_webhooks.flask import CodatWebhooks

from ..alert_log import AlertLog, Handlers

logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(levelname)s %(message)s")


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        {name: value for name, value in os.environ.items() if name.startswith("CODAT_WEBHOOKS_")}
    )
    app.config.setdefault("CODAT_WEBHOOKS_DB", "flask-example-webhooks.sqlite3")
    alert_log = AlertLog(os.environ.get("EXAMPLE_APP_DB", "flask-example-app.sqlite3"))

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

    # The same as app.wsgi_app = WebhookMiddleware(app.wsgi_app, receiver), with the receiver
    # built from app.config (a placeholder such as "whsec_..." counts as unset, with a warning).
    CodatWebhooks(app, plugins=[Handlers(alert_log)])
    return app


app = create_app()
