"""Where ``--app`` finds the receiver: every way the adapters can be mounted in real frameworks."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest

from codat_webhooks.cli._app import LoadedApp, load_app
from codat_webhooks.cli._common import CommandError

HEADER = """
from codat_webhooks import Receiver
from codat_webhooks.stores import MemoryStore
receiver = Receiver(insecure=True, store=MemoryStore(), load_entrypoints=False)
"""

APPS = {
    "starlette_middleware": """
from starlette.applications import Starlette
from codat_webhooks.asgi import WebhookMiddleware
app = Starlette()
app.add_middleware(WebhookMiddleware, receiver=receiver, path="/hooks/codat")
""",
    "starlette_middleware_built": """
from starlette.applications import Starlette
from starlette.middleware import Middleware
from codat_webhooks.asgi import WebhookMiddleware
app = Starlette(middleware=[Middleware(WebhookMiddleware, receiver, "/hooks/codat")])
app.build_middleware_stack()
""",
    "starlette_mount": """
from starlette.applications import Starlette
from starlette.routing import Mount
from codat_webhooks.asgi import WebhookApp
app = Starlette(routes=[Mount("/hooks/codat", app=WebhookApp(receiver))])
""",
    "fastapi_route": """
from fastapi import FastAPI
from codat_webhooks.asgi import WebhookApp
app = FastAPI()
app.add_route("/hooks/codat", WebhookApp(receiver), methods=["POST"])
""",
    "asgi_wrapped": """
from codat_webhooks.asgi import WebhookMiddleware
async def inner(scope, receive, send):
    pass
app = WebhookMiddleware(inner, receiver, path="/hooks/codat")
""",
    "werkzeug_dispatcher": """
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from codat_webhooks.wsgi import WebhookApp
app = Flask(__name__)
app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/hooks/codat": WebhookApp(receiver)})
""",
    "flask_factory": """
from flask import Flask
from codat_webhooks.wsgi import WebhookMiddleware
def create_app():
    app = Flask(__name__)
    app.wsgi_app = WebhookMiddleware(app.wsgi_app, receiver, path="/hooks/codat")
    return app
app = create_app
""",
}


def _load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str
) -> LoadedApp | None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(HEADER + source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("CODAT_WEBHOOKS_APP", raising=False)
    return load_app(argparse.Namespace(app=f"{name}:app"))


@pytest.mark.parametrize("name", sorted(APPS))
def test_the_receiver_is_found_at_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    loaded = _load(tmp_path, monkeypatch, name, APPS[name])
    module = __import__(name)
    assert loaded is not None
    assert loaded.receiver is module.receiver
    assert loaded.path == "/hooks/codat"
    assert loaded.is_asgi == (name.startswith(("starlette", "fastapi", "asgi")))


def test_two_receivers_must_be_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = """
from codat_webhooks.wsgi import WebhookApp
from werkzeug.middleware.dispatcher import DispatcherMiddleware
other = Receiver(insecure=True, store=MemoryStore(), load_entrypoints=False)
app = DispatcherMiddleware(WebhookApp(receiver), {"/b": WebhookApp(other)})
"""
    with pytest.raises(CommandError, match="2 receivers are mounted") as raised:
        _load(tmp_path, monkeypatch, "two_receivers", source)
    assert raised.value.status == 2


def test_a_factory_that_fails_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = """
def app():
    raise KeyError("DATABASE_URL")
"""
    with pytest.raises(CommandError, match="calling it failed: KeyError: 'DATABASE_URL'"):
        _load(tmp_path, monkeypatch, "failing_factory", source)


def test_an_import_error_inside_the_app_is_not_a_missing_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CommandError, match="importing 'broken_import' failed") as raised:
        _load(tmp_path, monkeypatch, "broken_import", "import no_such_dependency\n")
    assert raised.value.status == 1
    assert "broken_import.py:5) (-v shows the traceback)" in str(raised.value)
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(CommandError, match="importing 'broken_import' failed"):
        load_app(argparse.Namespace(app="broken_import:app", verbose=True))
    assert "Traceback" in capsys.readouterr().err
