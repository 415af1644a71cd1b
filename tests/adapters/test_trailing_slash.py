"""Both spellings of the webhook path are answered in place, in Flask and FastAPI apps alike.

Codat's new service counts any 3xx as a failed delivery, so a redirect from ``/webhooks/codat/``
to ``/webhooks/codat`` (or back) would turn every delivery into a retry and then a failure.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask

from codat_webhooks import Receiver
from codat_webhooks.asgi import WebhookApp
from codat_webhooks.asgi import WebhookMiddleware as AsgiMiddleware
from codat_webhooks.testing import sample_body
from codat_webhooks.wsgi import WebhookMiddleware as WsgiMiddleware

from .conftest import AUTH, Recorder

SPELLINGS = ["/webhooks/codat", "/webhooks/codat/"]


def flask_app(receiver: Receiver, path: str = "/webhooks/codat") -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/codat/other")
    def other() -> str:
        return "flask"

    app.wsgi_app = WsgiMiddleware(app.wsgi_app, receiver, path=path)  # type: ignore[method-assign]
    return app


def fastapi_apps(receiver: Receiver) -> dict[str, FastAPI]:
    """The two documented ways to mount the receiver in FastAPI on both spellings."""
    middleware = FastAPI()
    middleware.add_middleware(AsgiMiddleware, receiver=receiver)
    routes = FastAPI()
    webhook = WebhookApp(receiver)
    for path in SPELLINGS:
        routes.add_route(path, webhook, methods=["POST", "PUT"])  # type: ignore[arg-type]
    for app in (middleware, routes):

        @app.post("/webhooks/codat/other")
        async def other() -> str:
            return "fastapi"

    return {"add_middleware": middleware, "add_route twice": routes}


async def post_all(app: Any, paths: list[str]) -> list[tuple[int, str]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        results = []
        for path in paths:
            body = sample_body("Sync Completed")  # a fresh AlertId each time
            response = await client.post(path, content=body, headers={"Authorization": AUTH})
            results.append((response.status_code, response.text))
        return results


@pytest.mark.parametrize("configured", ["/webhooks/codat", "/webhooks/codat/"])
def test_flask_answers_both_spellings_without_redirect(
    receiver: Receiver, recorder: Recorder, configured: str
) -> None:
    client = flask_app(receiver, configured).test_client()
    for path in SPELLINGS:
        response = client.post(
            path, data=sample_body("Sync Completed"), headers={"Authorization": AUTH}
        )
        assert (response.status_code, response.json["outcome"]) == (200, "processed"), path  # type: ignore[index]
    assert recorder.kinds() == ["sync on_alert"] * 2
    assert client.post("/webhooks/codat/other").text == "flask"


@pytest.mark.parametrize("style", ["add_middleware", "add_route twice"])
def test_fastapi_answers_both_spellings_without_redirect(
    receiver: Receiver, recorder: Recorder, style: str
) -> None:
    app = fastapi_apps(receiver)[style]
    results = asyncio.run(post_all(app, [*SPELLINGS, "/webhooks/codat/other"]))
    assert [status for status, _ in results] == [200, 200, 200]
    assert '"processed"' in results[0][1]
    assert '"processed"' in results[1][1]
    assert results[2][1] == '"fastapi"'  # the app's own route under the prefix is untouched
    assert recorder.kinds() == ["sync on_alert"] * 2


def test_one_fastapi_route_alone_redirects_the_other_spelling(receiver: Receiver) -> None:
    # Why the documentation says "add_middleware, or add_route for both spellings": Starlette
    # answers the spelling with no route with a 307, which Codat would count as a failure.
    app = FastAPI()
    app.add_route("/webhooks/codat", WebhookApp(receiver), methods=["POST"])  # type: ignore[arg-type]
    [(status, _)] = asyncio.run(post_all(app, ["/webhooks/codat/"]))
    assert status == 307
