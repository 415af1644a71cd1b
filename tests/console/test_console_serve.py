"""The console served for real: mounted in FastAPI under uvicorn, and by ``codat-webhooks
serve --console`` (WSGI under werkzeug, ASGI under uvicorn), with the app's store and plugins."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from codat_webhooks.stores import SQLiteStore, State
from codat_webhooks.testing import sample_body
from tests.adapters.servers import free_port, running, uvicorn

from .helpers import AUTHORIZATION, EXECUTABLE, PASSWORD, csrf_of, login, served_console

pytestmark = pytest.mark.slow


def deliver(base: str, body: bytes) -> int:
    headers = {"Authorization": AUTHORIZATION}
    return httpx.post(f"{base}/webhooks/codat", content=body, headers=headers).status_code


def replay_failed(http: httpx.Client, base: str, fail: Path, db: Path) -> None:
    """A delivery fails, the handler is fixed, the console (at /console) replays it: done."""
    console = f"{base}/console"
    fail.touch()
    body = sample_body("Sync Failed", alert_id="00000000-0000-4000-8000-0000000000aa")
    assert deliver(base, body) >= 500
    fail.unlink()
    assert login(http, console).status_code == 303
    detail = http.get(f"{console}/delivery", params={"key": "00000000-0000-4000-8000-0000000000aa"})
    assert ">failed<" in detail.text
    answer = http.post(
        f"{console}/replay",
        data={"key": "00000000-0000-4000-8000-0000000000aa", "csrf": csrf_of(detail.text)},
    )
    assert answer.status_code == 303
    with SQLiteStore(db) as store:
        record = store.get("00000000-0000-4000-8000-0000000000aa")
    assert record is not None
    assert record.state is State.DONE


def test_mounted_in_fastapi_under_uvicorn(tmp_path: Path) -> None:
    port = free_port()
    env = {"CONSOLE_TEST_DB": str(tmp_path / "d.sqlite3"), "CONSOLE_TEST_FAIL": "/nonexistent"}
    command = uvicorn("tests.console.fastapi_app:app", port)
    with running(command, port, env, tmp_path / "log", ready="/hello") as base:
        with httpx.Client(timeout=20) as http:
            page = http.get(f"{base}/ops/")
            assert (page.status_code, page.headers["location"]) == (303, "/ops/login")
            answer = login(http, f"{base}/ops")
            assert answer.headers.get("location") == "/ops/", (
                answer.status_code,
                answer.text[-600:],
            )
            assert "No delivery matches" in http.get(f"{base}/ops/").text
            assert deliver(base, sample_body("Data sync completed")) == 200
            assert ">done<" in http.get(f"{base}/ops/").text
        assert httpx.get(f"{base}/hello").json() == {"hello": "world"}  # the rest of the app


def test_serve_console_with_a_wsgi_app_replays_through_its_handlers(tmp_path: Path) -> None:
    with served_console(tmp_path) as base, httpx.Client(timeout=20) as http:
        replay_failed(http, base, tmp_path / "fail", tmp_path / "deliveries.sqlite3")


def test_serve_console_with_an_asgi_app(tmp_path: Path) -> None:
    port = free_port()
    command = [
        str(EXECUTABLE), "serve", "--port", str(port), "--console",
        "--app", "tests.console.fastapi_app:app",
    ]  # fmt: skip
    env = {
        "CONSOLE_TEST_DB": str(tmp_path / "d.sqlite3"),
        "CONSOLE_TEST_FAIL": str(tmp_path / "fail"),
        "CODAT_WEBHOOKS_CONSOLE_PASSWORD": PASSWORD,
    }
    with (
        running(command, port, env, tmp_path / "log", ready="/hello") as base,
        httpx.Client(timeout=20) as http,
    ):
        replay_failed(http, base, tmp_path / "fail", tmp_path / "d.sqlite3")
    assert "deliveries console on http://127.0.0.1" in (tmp_path / "log").read_text()


def run_serve(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``serve`` in ``cwd``: it opens its default SQLite store there before it checks flags."""
    return subprocess.run(
        [str(EXECUTABLE), "serve", "--port", "0", "--insecure", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--console"], "needs an operator password"),
        (["--console", "--console-insecure", "--host", "192.0.2.1"], "loopback address only"),
        (["--console-insecure"], "goes with --console"),
    ],
)
def test_serve_refuses_an_unprotected_console(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = run_serve(tmp_path, *args)
    assert done.returncode == 2, done
    assert message in done.stderr


def test_serve_refuses_codats_credential_as_the_console_password(tmp_path: Path) -> None:
    done = run_serve(
        tmp_path,
        "--console",
        "--authorization",
        "Bearer shared-secret-value",
        env={"CODAT_WEBHOOKS_CONSOLE_PASSWORD": "shared-secret-value"},
    )
    assert done.returncode == 2
    assert "must not be Codat's Authorization" in done.stderr
