"""``--app``: the commands use the application's own receiver, and replay never loses work.

The lost-work case: an app builds its receiver with its own plugin, a delivery fails, the
handler is fixed, and ``replay`` is run. Without the app's plugin nothing would handle the
delivery, yet it would be marked done and Codat's next retry answered ``200 duplicate``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import AUTHORIZATION, EXECUTABLE, Cli, start_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

LEDGER_APP = """
import os
from pathlib import Path

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.stores import SQLiteStore


class Ledger:
    '''Books push timeouts; fails once while the flag file exists (the bug, then the fix).'''

    @hookimpl
    def on_push_operation_timed_out(self, alert, delivery):
        flag = Path(os.environ["LEDGER_FAIL_ONCE"])
        if flag.exists():
            flag.unlink()
            raise RuntimeError("ledger API timed out")
        with open(os.environ["LEDGER_LOG"], "a") as log:
            log.write(delivery.key + "\\n")


def make_receiver():
    return Receiver(
        authorization=os.environ["LEDGER_AUTHORIZATION"],
        store=SQLiteStore(os.environ["LEDGER_DB"]),
        plugins=[Ledger()],
    )


receiver = make_receiver()
"""


@dataclass
class LedgerApp:
    cli: Cli
    db: Path
    log: Path
    fail_once: Path

    def booked(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []


@pytest.fixture
def ledger(cli: Cli, tmp_path: Path) -> LedgerApp:
    """The app module on PYTHONPATH, and no installed plugin: only the app's Ledger handles."""
    code = tmp_path / "appcode"
    code.mkdir()
    (code / "ledger_app.py").write_text(textwrap.dedent(LEDGER_APP))
    app = LedgerApp(cli, tmp_path / "ledger.sqlite3", tmp_path / "ledger.log", tmp_path / "flag")
    cli.env |= {
        "PYTHONPATH": str(code),
        "LEDGER_DB": str(app.db),
        "LEDGER_LOG": str(app.log),
        "LEDGER_FAIL_ONCE": str(app.fail_once),
        "LEDGER_AUTHORIZATION": AUTHORIZATION,
    }
    return app


def _push_timeout(cli: Cli, url: str) -> subprocess.CompletedProcess[str]:
    credential = f"--authorization={AUTHORIZATION}"
    sent: subprocess.CompletedProcess[str] = cli(
        "trigger", "Push Operation Timed Out", "--url", url, credential
    )
    return sent


def test_lost_work_replay_runs_the_apps_handler_exactly_once(ledger: LedgerApp) -> None:
    cli = ledger.cli
    ledger.fail_once.touch()
    server = start_server(cli, "--app", "ledger_app:receiver")
    try:
        assert "plugins=Ledger" in server.banner
        sent = _push_timeout(cli, server.url)
    finally:
        server.stop()
    assert sent.returncode == 1
    assert " 503 failed " in sent.stdout, sent.stdout
    key = sent.stdout.splitlines()[1].split()[3]
    assert ledger.booked() == []

    # Without --app nothing but the built-in log plugin would run: refused, record untouched.
    refused = cli("replay", "--db", str(ledger.db), "--state", "failed")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "on_push_operation_timed_out or on_alert" in refused.stderr
    assert "--app MODULE:ATTRIBUTE" in refused.stderr
    assert key in refused.stderr
    [row] = cli.events("--db", str(ledger.db))
    assert (row["state"], row["last_error"]) == ("failed", "RuntimeError: ledger API timed out")

    no_plugins = cli("replay", "--db", str(ledger.db), "--state", "failed", "--no-plugins")
    assert no_plugins.returncode == 2
    assert "--no-plugins without --app" in no_plugins.stderr

    plan = cli("replay", "--app", "ledger_app:receiver", "--state", "failed", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert f"{key}  failed  Push Operation Timed Out  -> on_push_operation_timed_out (Ledger)" in (
        plan.stdout
    )
    assert ledger.booked() == []

    fixed = cli("replay", "--app", "ledger_app:receiver", "--state", "failed")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "1 delivery processed" in fixed.stdout
    assert ledger.booked() == [key], "the app's handler ran exactly once"
    [row] = cli.events("--app", "ledger_app:receiver")
    assert row["state"] == "done"

    again = cli("replay", "--app", "ledger_app:receiver", key)
    assert "already processed" in again.stdout
    assert ledger.booked() == [key]


def test_a_replay_whose_hook_raises_stays_failed_with_the_new_error(ledger: LedgerApp) -> None:
    cli = ledger.cli
    ledger.fail_once.touch()
    first = cli("replay", "--app", "ledger_app:make_receiver", "--state", "failed")
    assert "nothing to do" in first.stdout, "no delivery yet"
    server = start_server(cli, "--app", "ledger_app:make_receiver")
    try:
        sent = _push_timeout(cli, server.url)
        assert " 503 failed " in sent.stdout
    finally:
        server.stop()
    ledger.fail_once.touch()  # the "fix" did not fix it
    ledger.log.write_text("")
    (ledger.log.parent / "appcode" / "ledger_app.py").write_text(
        textwrap.dedent(LEDGER_APP).replace("ledger API timed out", "still broken")
    )
    done = cli("replay", "--app", "ledger_app:make_receiver", "--state", "failed", "--json")
    assert done.returncode == 1
    [line] = [json.loads(text) for text in done.stdout.splitlines()]
    assert line["outcome"] == "failed"
    assert line["state"] == "failed"
    assert line["error"] == "RuntimeError: still broken"
    [row] = cli.events("--app", "ledger_app:make_receiver")
    assert (row["state"], row["last_error"]) == ("failed", "RuntimeError: still broken")


def test_resend_show_and_purge_use_the_apps_store(ledger: LedgerApp) -> None:
    cli = ledger.cli
    cli.env["CODAT_WEBHOOKS_APP"] = "ledger_app:receiver"  # instead of --app on every command
    ledger.fail_once.touch()
    server = start_server(cli)
    try:
        assert "app=ledger_app:receiver" in server.banner
        key = _push_timeout(cli, server.url).stdout.splitlines()[1].split()[3]
        shown = json.loads(cli("show", key, "--json").stdout)
        assert (shown["state"], shown["type"]) == ("failed", "Push Operation Timed Out")
        resent = cli("resend", "--state", "failed", "--url", server.url,
                     "--authorization", AUTHORIZATION)  # fmt: skip
        assert resent.returncode == 0, resent.stdout + resent.stderr
        assert f"200 processed    {key}" in resent.stdout
    finally:
        server.stop()
    assert ledger.booked() == [key]
    dry = json.loads(cli("purge", "--older-than", "0s", "--dry-run", "--json").stdout)
    assert dry["keys"] == [key]
    assert cli("purge", "--older-than", "0s", "--force").returncode == 0
    assert cli.events() == []


def test_app_errors_name_what_was_not_found(ledger: LedgerApp) -> None:
    cli = ledger.cli
    cases = [
        (["events", "--app", "no_such_module:app"], "no module named 'no_such_module'"),
        (["events", "--app", "ledger_app:nope"], "module 'ledger_app' has no attribute 'nope'"),
        (["events", "--app", "ledger_app"], "use MODULE:ATTRIBUTE"),
        (["events", "--app", "ledger_app:Ledger"], "found no codat_webhooks Receiver in type"),
        (["replay", "--app", "os:path", "--state", "failed"], "found no codat_webhooks Receiver"),
    ]
    for args, message in cases:
        done = cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    cli.env["CODAT_WEBHOOKS_APP"] = "ledger_app:missing"
    from_env = cli("plugins")
    assert from_env.returncode == 2
    assert "'ledger_app:missing'" in from_env.stderr


def test_app_is_importable_from_the_current_directory(cli: Cli) -> None:
    (cli.cwd / "here_app.py").write_text(
        "from codat_webhooks import Receiver\n"
        "from codat_webhooks.stores import MemoryStore\n"
        "receiver = Receiver(insecure=True, store=MemoryStore())\n"
    )
    done = cli("events", "--app", "here_app:receiver", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_plugins_app_lists_the_apps_plugins_once(cli: Cli, ledger: LedgerApp) -> None:
    site = cli.env["PYTHONPATH"]
    cli.env["PYTHONPATH"] = os.pathsep.join([site, str(cli.cwd.parent / "site")])
    done = cli("plugins", "--app", "ledger_app:receiver", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    names = [row["name"] for row in rows]
    assert names.count("hook-log") == 1, "the entry-point plugin is not registered twice"
    assert {"name": "Ledger", "origin": "app", "version": None} | {
        "hooks": ["on_push_operation_timed_out"]
    } in rows
    plain = cli("plugins")
    assert "Ledger" not in plain.stdout


def test_replay_app_no_plugins_leaves_out_the_installed_ones(cli: Cli, ledger: LedgerApp) -> None:
    cli.env["PYTHONPATH"] += os.pathsep + str(cli.cwd.parent / "site")
    ledger.fail_once.touch()
    server = start_server(cli, "--app", "ledger_app:receiver")
    try:
        assert " 503 failed " in _push_timeout(cli, server.url).stdout
    finally:
        server.stop()

    def handlers(*flags: str) -> list[dict[str, str]]:
        done = cli("replay", "--app", "ledger_app:receiver", "--state", "failed", "--dry-run",
                   "--json", *flags)  # fmt: skip
        assert done.returncode == 0, done.stderr
        [plan] = [json.loads(line) for line in done.stdout.splitlines()]
        return list(plan["handlers"])

    ledger_hook = {"hook": "on_push_operation_timed_out", "plugin": "Ledger"}
    assert handlers() == [ledger_hook, {"hook": "on_alert", "plugin": "hook-log"}]
    assert handlers("--no-plugins") == [ledger_hook]


def test_db_flag_overrides_the_apps_store_only_when_given(ledger: LedgerApp) -> None:
    cli = ledger.cli
    other = cli.cwd / "other.sqlite3"
    server = start_server(cli, "--app", "ledger_app:receiver", "--db", str(other))
    try:
        sent = _push_timeout(cli, server.url)
        assert " 200 processed " in sent.stdout
        unauthorized = cli("trigger", "Push Operation Timed Out", "--url", server.url)
        assert " 401 " in unauthorized.stdout, "the app's credentials still apply"
    finally:
        server.stop()
    assert len(cli.events("--db", str(other))) == 1
    assert cli.events("--app", "ledger_app:receiver") == []
    assert len(cli.events("--app", "ledger_app:receiver", "--db", str(other))) == 1


def test_serve_app_refuses_its_own_credential_flags(ledger: LedgerApp) -> None:
    done = ledger.cli("serve", "--app", "ledger_app:receiver", "--insecure", "--port", "0")
    assert done.returncode == 2
    assert "--insecure: with --app, the app's receiver decides" in done.stderr


# --- the examples: a Flask and a FastAPI app with a receiver mounted ---------------------------


@pytest.mark.parametrize("example", ["flask_app", "fastapi_app"])
def test_serve_app_serves_the_examples_handlers(cli: Cli, tmp_path: Path, example: str) -> None:
    alert_db = tmp_path / "example-alerts.sqlite3"
    cli.env |= {
        "PYTHONPATH": str(REPO),
        "CODAT_WEBHOOKS_AUTHORIZATION": AUTHORIZATION,
        "CODAT_WEBHOOKS_DB": str(tmp_path / "example-webhooks.sqlite3"),
        "EXAMPLE_APP_DB": str(alert_db),
    }
    server = start_server(cli, "--app", f"examples.{example}.app:app")
    try:
        assert server.url.endswith("/webhooks/codat"), "the path where the app mounts it"
        assert "plugins=Handlers" in server.banner
        sent = cli("trigger", "DataConnectionStatusChanged", "--url", server.url)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert " 200 processed " in sent.stdout
        key = sent.stdout.splitlines()[1].split()[3]
        root = server.url.rsplit("/webhooks/codat", 1)[0]
        # the app is served whole (Flask under werkzeug, FastAPI under uvicorn): its routes too
        with urllib.request.urlopen(root + "/alerts", timeout=10) as response:  # noqa: S310
            assert [row["key"] for row in json.load(response)] == [key]
    finally:
        code, out, _ = server.stop()
    assert code == 0
    assert " 200 processed " in out
    import sqlite3

    with sqlite3.connect(alert_db) as conn:
        rows = conn.execute("SELECT key, rule_type FROM alerts").fetchall()
        statuses = conn.execute("SELECT key FROM connection_status").fetchall()
    assert rows == [(key, "DataConnectionStatusChanged")], "the example's plugin ran"
    assert statuses == [(key,)]
    # the example's store (CODAT_WEBHOOKS_DB as the app reads it) holds the delivery
    [row] = cli.events("--app", f"examples.{example}.app:create_app")
    assert (row["key"], row["state"]) == (key, "done")


def test_serve_app_without_uvicorn_serves_the_asgi_apps_receiver_only(
    cli: Cli, tmp_path: Path
) -> None:
    """uvicorn is a dev dependency, not a runtime one: without it, ``serve --app`` on a FastAPI
    app still receives (under werkzeug, with the app's own handlers) and says what it left out."""
    shim = tmp_path / "no-uvicorn"
    shim.mkdir()
    (shim / "uvicorn.py").write_text('raise ImportError("uvicorn is not installed here")\n')
    alert_db = tmp_path / "example-alerts.sqlite3"
    cli.env |= {
        "PYTHONPATH": f"{shim}{os.pathsep}{REPO}",
        "CODAT_WEBHOOKS_AUTHORIZATION": AUTHORIZATION,
        "CODAT_WEBHOOKS_DB": str(tmp_path / "example-webhooks.sqlite3"),
        "EXAMPLE_APP_DB": str(alert_db),
    }
    server = start_server(cli, "--app", "examples.fastapi_app.app:app")
    try:
        assert server.process.stdout is not None
        started = [server.banner]
        while "press Ctrl+C" not in started[-1]:  # the rest of what it prints on starting
            started.append(server.process.stdout.readline())
        note = "note: only the receiver is served; install uvicorn to serve the whole app"
        assert note in "".join(started)
        sent = cli("trigger", "DataConnectionStatusChanged", "--url", server.url)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert " 200 processed " in sent.stdout
        root = server.url.rsplit("/webhooks/codat", 1)[0]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(root + "/alerts", timeout=10)  # noqa: S310
        missing.value.close()
        assert missing.value.code == 404, "the app's own routes need uvicorn"
    finally:
        code, out, _ = server.stop()
    assert (code, " 200 processed " in out) == (0, True)
    with sqlite3.connect(alert_db) as conn:
        rows = conn.execute("SELECT rule_type FROM alerts").fetchall()
    assert rows == [("DataConnectionStatusChanged",)], "the example's plugin ran"


def test_serve_app_under_gunicorn_then_replay_with_the_same_app(ledger: LedgerApp) -> None:
    """The receiver in production is served by gunicorn; replay loads the very same module."""
    cli = ledger.cli
    code = ledger.log.parent / "appcode"
    (code / "ledger_wsgi.py").write_text(
        "from codat_webhooks.wsgi import WebhookApp\n"
        "from ledger_app import receiver\n"
        "app = WebhookApp(receiver)\n"
    )
    ledger.fail_once.touch()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), "-w", "1", "-b", "127.0.0.1:0", "ledger_wsgi:app"],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _gunicorn_port(process)
        url = f"http://127.0.0.1:{port}/webhooks/codat"
        sent = _push_timeout(cli, url)
        assert " 503 failed " in sent.stdout, sent.stdout + sent.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    fixed = cli("replay", "--app", "ledger_wsgi:app", "--state", "failed")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert len(ledger.booked()) == 1


def _gunicorn_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    for line in process.stderr:
        if "Listening at: http://127.0.0.1:" in line:
            return int(line.rsplit(":", 1)[1].split()[0])
        if "Booting worker" in line:
            continue
    pytest.fail("gunicorn did not start")


def test_help_texts_carry_no_restructuredtext_markup(cli: Cli) -> None:
    import argparse

    from codat_webhooks.cli import build_parser

    [subparsers] = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    commands = list(subparsers.choices)
    assert {"serve", "replay", "resend", "events", "purge"} <= set(commands)
    for args in [[], *([command] for command in commands)]:
        done = subprocess.run(
            [EXECUTABLE, *args, "--help"], capture_output=True, text=True, env=cli.env, check=True
        )
        assert "``" not in done.stdout, args
        assert ":class:" not in done.stdout, args
        assert ":mod:" not in done.stdout, args
