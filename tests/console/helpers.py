"""Serving a console for tests: in this process over real HTTP, or as ``serve --console``."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from werkzeug.serving import make_server

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.console import Console
from codat_webhooks.stores import Entry, MemoryStore
from tests.adapters.servers import free_port, running

PASSWORD = "operator-console-pass-1"
AUTHORIZATION = "Bearer console-test-codat-credential"
"""What the served test app (``console_app``) expects from Codat."""
EXECUTABLE = shutil.which("codat-webhooks", path=str(Path(sys.executable).parent))
SCRIPT_BODY = b'{"note": "<script>document.title = \\"pwned\\"</script>", "AlertId": 1}'
"""An authenticated but invalid body (it is parked) carrying markup an attacker would send."""


class Handler:
    """A plugin that handles every alert and event, failing while ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = False
        self.calls: list[str] = []

    @hookimpl
    def on_alert(self, alert: object, delivery: object) -> None:
        self.calls.append(getattr(delivery, "key", "?"))
        if self.broken:
            raise RuntimeError("handler bug <b>boom</b>")


class FailsWhileMarked:
    """For served apps: handles every alert and event, failing while ``$CONSOLE_TEST_FAIL``
    exists (how a test breaks the handler, then "deploys the fix")."""

    @hookimpl
    def on_alert(self, alert: object, delivery: object) -> None:
        if Path(os.environ["CONSOLE_TEST_FAIL"]).exists():
            raise RuntimeError("handler bug (marker file present)")

    @hookimpl
    def on_event(self, event: object, delivery: object) -> None:
        self.on_alert(event, delivery)


@contextmanager
def serving(app: object) -> Iterator[str]:
    """``app`` (WSGI) on a loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, page
    return found.group(1)


def login(client: httpx.Client, base: str, password: str = PASSWORD) -> httpx.Response:
    """Log in through the form, as a browser does: GET the form, POST it with its token."""
    form = client.get(f"{base}/login")
    assert form.status_code == 200, (form.status_code, form.headers, form.text[:500])
    return client.post(f"{base}/login", data={"csrf": csrf_of(form.text), "password": password})


def park(store: MemoryStore, key: str, body: bytes = SCRIPT_BODY, **fields: object) -> None:
    headers = (("Authorization", "[redacted]"),)
    entry = Entry(key, hashlib.sha256(body).hexdigest(), body, headers, **fields)  # type: ignore[arg-type]
    store.park(entry, reason="invalid payload")


def make_console(**options: object) -> tuple[Console, MemoryStore, Handler]:
    store, handler = MemoryStore(), Handler()
    receiver = Receiver(
        authorization="Bearer codat-credential-xyz",
        store=store,
        plugins=[handler],
        load_entrypoints=False,
    )
    options.setdefault("password", PASSWORD)
    return Console(receiver, **options), store, handler  # type: ignore[arg-type]


@contextmanager
def served_console(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``codat-webhooks serve --console --app tests.console.console_app:receiver`` on a free
    port; yields its base URL. The app's store is ``tmp_path/deliveries.sqlite3``."""
    assert EXECUTABLE is not None
    port = free_port()
    command = [
        EXECUTABLE, "serve", "--port", str(port), "--console",
        "--app", "tests.console.console_app:receiver", *extra,
    ]  # fmt: skip
    variables = {
        "CONSOLE_TEST_DB": str(tmp_path / "deliveries.sqlite3"),
        "CONSOLE_TEST_FAIL": str(tmp_path / "fail"),
        "CODAT_WEBHOOKS_CONSOLE_PASSWORD": PASSWORD,
        **(env or {}),
    }
    with running(command, port, variables, tmp_path / "serve.log", ready="/console/login") as url:
        yield url
