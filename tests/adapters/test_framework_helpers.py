"""The Flask extension, the FastAPI lifespan and the settings they read: real apps, real stores."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask, current_app

from codat_webhooks import ConfigurationError, Receiver, StoreError
from codat_webhooks.asgi import WebhookMiddleware
from codat_webhooks.fastapi import lifespan
from codat_webhooks.flask import CodatWebhooks
from codat_webhooks.settings import is_placeholder, receiver_from_settings
from codat_webhooks.stores import MemoryStore, SQLiteStore
from codat_webhooks.testing import sample_body, sign

from .conftest import AUTH, SECRET, Recorder

AUTH_HEADERS = {"Authorization": AUTH}


@asynccontextmanager
async def served(app: Any, state: dict[str, Any] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app between its ASGI lifespan startup and shutdown, as a server runs it.

    ``state`` receives the lifespan state (a server copies it into every request's scope).
    """
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {
        "type": "lifespan",
        "asgi": {"version": "3.0"},
        "state": {} if state is None else state,
    }
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


def settings(tmp_path: Path, **more: str) -> dict[str, str]:
    return {"CODAT_WEBHOOKS_DB": str(tmp_path / "store.sqlite3"), **more}


def flask_app(config: dict[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(config)

    @app.get("/")
    def index() -> str:
        return "app"

    return app


@pytest.mark.parametrize(
    "value", ["whsec_...", "Bearer ...", "<your signing secret>", "whsec_…", "  whsec_...  "]
)
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("value", ["Bearer change-me", SECRET, "whsec_abc.def"])
def test_real_values_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_a_placeholder_secret_is_unset_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = settings(
        tmp_path, CODAT_WEBHOOKS_AUTHORIZATION=AUTH, CODAT_WEBHOOKS_SIGNING_SECRET="whsec_..."
    )
    with caplog.at_level(logging.WARNING, "codat_webhooks"):
        receiver = receiver_from_settings(config, load_entrypoints=False)
    assert "CODAT_WEBHOOKS_SIGNING_SECRET is a placeholder" in caplog.text
    body = sample_body("Sync Failed")
    assert receiver.handle("POST", {"Authorization": AUTH}, body).outcome == "processed"
    receiver.close()
    # Nothing but placeholders: no credential at all, which the receiver refuses as always.
    with pytest.raises(ConfigurationError):
        receiver_from_settings(settings(tmp_path, CODAT_WEBHOOKS_AUTHORIZATION="Bearer ..."))


def test_several_secrets_and_the_sqlite_file_come_from_settings(tmp_path: Path) -> None:
    other = "whsec_" + "c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="
    config = settings(tmp_path, CODAT_WEBHOOKS_SIGNING_SECRET=f"{other}, {SECRET}")
    receiver = receiver_from_settings(config, load_entrypoints=False)
    body = sample_body("Sync Failed")
    reply = receiver.handle("POST", sign(body, SECRET), body)
    assert reply.outcome == "processed"
    assert isinstance(receiver.store, SQLiteStore)
    assert receiver.store.get(reply.key or "") is not None  # recorded in the configured file
    assert (tmp_path / "store.sqlite3").exists()
    receiver.close()
    default = receiver_from_settings(
        {"CODAT_WEBHOOKS_AUTHORIZATION": AUTH}, default_db=str(tmp_path / "mine.sqlite3")
    )
    assert (tmp_path / "mine.sqlite3").exists()
    default.close()


def test_flask_extension_from_config_in_an_app_factory(tmp_path: Path, recorder: Recorder) -> None:
    webhooks = CodatWebhooks(plugins=[recorder], load_entrypoints=False)

    def create_app() -> Flask:
        app = flask_app(settings(tmp_path, CODAT_WEBHOOKS_AUTHORIZATION=AUTH))
        webhooks.init_app(app)
        return app

    app = create_app()
    client = app.test_client()
    for path in ("/webhooks/codat", "/webhooks/codat/"):
        reply = client.post(path, data=sample_body("Sync Failed"), headers={"Authorization": AUTH})
        assert reply.json["outcome"] == "processed"  # type: ignore[index]
    assert client.get("/").text == "app"
    assert recorder.kinds() == ["sync on_alert"] * 2
    receiver = app.extensions["codat_webhooks"]
    with app.app_context():
        assert webhooks.receiver() is receiver is webhooks.receiver(current_app)
    assert create_app().extensions["codat_webhooks"] is not receiver  # one per app
    webhooks.close(app)
    with pytest.raises(StoreError):
        receiver.store.get("any")  # closed, store included


def test_flask_extension_with_a_receiver_and_a_path(receiver: Receiver) -> None:
    app = flask_app({"CODAT_WEBHOOKS_PATH": "/from-config"})
    CodatWebhooks(app, receiver, path="/hooks/codat")
    client = app.test_client()
    reply = client.post(
        "/hooks/codat", data=sample_body("Sync Failed"), headers={"Authorization": AUTH}
    )
    assert reply.json["outcome"] == "processed"  # type: ignore[index]
    assert client.post("/from-config").status_code == 404
    configured = flask_app({"CODAT_WEBHOOKS_PATH": "/from-config"})
    CodatWebhooks(configured, receiver)
    assert configured.test_client().post("/from-config").status_code == 401  # ours, no auth


def test_flask_extension_takes_plugins_from_config(tmp_path: Path) -> None:
    recorder = Recorder()
    config = settings(tmp_path, CODAT_WEBHOOKS_AUTHORIZATION=AUTH)
    app = flask_app({**config, "CODAT_WEBHOOKS_PLUGINS": [recorder]})
    webhooks = CodatWebhooks(app, load_entrypoints=False)
    body = sample_body("Data Connection Status Changed")
    reply = app.test_client().post("/webhooks/codat", data=body, headers=AUTH_HEADERS)
    assert reply.json["outcome"] == "processed"  # type: ignore[index]
    assert recorder.kinds() == ["async status changed", "sync on_alert"]
    webhooks.close(app)


def test_fastapi_lifespan_publishes_then_closes_the_receiver(tmp_path: Path) -> None:
    receiver = Receiver(authorization=AUTH, store=SQLiteStore(tmp_path / "s.sqlite3"))
    app = FastAPI(lifespan=lifespan(receiver))
    app.add_middleware(WebhookMiddleware, receiver=receiver)

    @app.get("/key-count")
    def key_count() -> int:
        return len(app.state.codat_webhooks.store.find())

    async def session() -> None:
        async with served(app) as client:
            assert app.state.codat_webhooks is receiver
            body = sample_body("Sync Failed")
            reply = await client.post(
                "/webhooks/codat/", content=body, headers={"Authorization": AUTH}
            )
            assert reply.json()["outcome"] == "processed"
            assert (await client.get("/key-count")).json() == 1

    asyncio.run(session())
    with pytest.raises(StoreError):
        receiver.store.find()  # closed at shutdown


def test_fastapi_lifespan_runs_your_own_inside_and_passes_its_state_on() -> None:
    receiver = Receiver(authorization=AUTH, store=MemoryStore(), load_entrypoints=False)
    events: list[str] = []

    @asynccontextmanager
    async def mine(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append(f"start, receiver published: {app.state.codat_webhooks is receiver}")
        yield {"greeting": "hello"}
        events.append("stop")

    app = FastAPI(lifespan=lifespan(receiver, then=mine))

    @app.get("/")
    def index() -> str:
        return "ok"

    state: dict[str, Any] = {}

    async def session() -> str:
        async with served(app, state) as client:
            return (await client.get("/")).json()  # type: ignore[no-any-return]

    assert asyncio.run(session()) == "ok"
    assert state == {"greeting": "hello"}  # your lifespan's state, yielded on to the server
    assert events == ["start, receiver published: True", "stop"]


def test_fastapi_example_exposes_its_receiver_on_app_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODAT_WEBHOOKS_AUTHORIZATION", AUTH)
    monkeypatch.setenv("CODAT_WEBHOOKS_DB", str(tmp_path / "store.sqlite3"))
    monkeypatch.setenv("EXAMPLE_APP_DB", str(tmp_path / "app.sqlite3"))
    from examples.fastapi_app.app import create_app

    app = create_app()
    body = sample_body("Sync Completed")

    async def session() -> list[str]:
        async with served(app) as client:
            reply = await client.post("/webhooks/codat", content=body, headers=AUTH_HEADERS)
            assert reply.json()["outcome"] == "processed"
            return [record.key for record in app.state.codat_webhooks.store.find()]

    assert asyncio.run(session()) == [json.loads(body)["AlertId"]]
