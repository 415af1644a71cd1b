"""Operator safety and scripting: --json, events --follow/--limit, purge guards, summaries."""

from __future__ import annotations

import argparse
import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import AUTHORIZATION, EXECUTABLE, SECRET, Cli, Server

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.cli import replay
from codat_webhooks.cli.records import find_records
from codat_webhooks.replaying import REPLAYABLE
from codat_webhooks.stores import MemoryStore
from codat_webhooks.stores.base import Record
from codat_webhooks.stores.sqlite import SQLiteStore
from codat_webhooks.testing import sample_body, sign

pytestmark = pytest.mark.slow


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_events_follow_prints_new_deliveries_until_interrupted(cli: Cli, server: Server) -> None:
    follow = subprocess.Popen(
        [EXECUTABLE, "events", "--follow", "--json"],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell that runs the suite in the background hands its children SIGINT ignored;
        # Ctrl+C is what this test stands for, so the child gets the default disposition.
        preexec_fn=_default_sigint,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follow.stdout is not None

    def read() -> None:
        for line in follow.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        sent = cli("trigger", "Sync Failed", "--url", server.url, "--signing-secret", SECRET)
        key = sent.stdout.splitlines()[1].split()[3]
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not any(row["state"] == "done" for row in seen):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(json.loads(line))
        assert {row["key"] for row in seen} == {key}
        assert seen[-1]["type"] == "Sync Failed"
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=20)
        reader.join(timeout=20)
    assert follow.returncode == 0
    assert follow.stderr is not None
    with follow.stdout, follow.stderr:
        assert follow.stderr.read() == ""


class _CountingStore(MemoryStore):
    """A real MemoryStore that remembers the limit each query asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.limits: list[int | None] = []

    def find(self, **query: Any) -> list[Record]:
        self.limits.append(query.get("limit"))
        return super().find(**query)


def test_events_limit_is_applied_by_the_store_query() -> None:
    store = _CountingStore()
    receiver = Receiver(insecure=True, store=store, load_entrypoints=False)
    for rule in ["Dataset data changed"] * 5 + ["Sync Completed"] * 3:
        receiver.handle("POST", {}, sample_body(rule))

    def query(**flags: Any) -> list[Record]:
        args = {"state": None, "type": None, "company": None, "since": None, "limit": None}
        return find_records(store, argparse.Namespace(**(args | flags)))

    assert len(query(limit=2)) == 2
    assert store.limits == [2]
    assert len(query(type="connection.connected", limit=1)) == 0
    assert store.limits[-1] == 1
    # rule types are matched in every spelling after the query, which is still bounded
    found = query(type="DatasetDataChanged", limit=4)
    assert [r.kind for r in found] == ["Dataset data changed"] * 4
    assert store.limits[-1] is not None


def test_events_limit_and_type_through_the_executable(cli: Cli, server: Server) -> None:
    for rule in ("Sync Completed", "Sync Failed", "Sync Completed"):
        cli("trigger", rule, "--url", server.url, "--authorization", AUTHORIZATION)
    assert len(cli.events("--limit", "2")) == 2
    assert [r["type"] for r in cli.events("--type", "SyncCompleted", "--limit", "1")] == [
        "Sync Completed"
    ]
    bad = cli("events", "--limit", "0")
    assert bad.returncode == 2


def test_parked_delivery_keeps_type_and_company(cli: Cli, server: Server) -> None:
    company = "1e43b5a2-0c8b-4ebc-9d2c-b4a1f0e9f1a8"
    done = cli(
        "trigger", "Rate Limit Reached", "--url", server.url, "--authorization", AUTHORIZATION,
        "--set", f"CompanyId={company}", "--set", "Data.DailyQuota=lots",
    )  # fmt: skip
    assert " 422 invalid " in done.stdout
    [row] = cli.events("--type", "Rate Limit Reached", "--state", "parked")
    assert (row["type"], row["company_id"]) == ("Rate Limit Reached", company)
    table = cli("events", "--state", "parked")
    assert f"Rate Limit Reached  {company}" in table.stdout


class _Verbose:
    @hookimpl
    def on_alert(self) -> None:
        raise RuntimeError("upstream said: " + "x" * 200 + " END")


def test_long_errors_are_cut_with_an_ellipsis(cli: Cli) -> None:
    db = cli.cwd / "codat-webhooks.sqlite3"
    receiver = Receiver(insecure=True, store=SQLiteStore(db), plugins=[_Verbose()])
    receiver.handle("POST", {}, sample_body("Sync Completed"))
    receiver.close()
    table = cli("events")
    [row] = table.stdout.splitlines()[1:-1]
    assert row.endswith("…")
    assert "END" not in row
    assert "END" in cli.events()[0]["last_error"]


def test_purge_guards_the_retry_window(cli: Cli) -> None:
    db = cli.cwd / "codat-webhooks.sqlite3"
    receiver = Receiver(insecure=True, store=SQLiteStore(db), load_entrypoints=False)
    key = receiver.handle("POST", {}, sample_body("Sync Completed")).key
    receiver.close()

    refused = cli("purge", "--older-than", "1h")
    assert refused.returncode == 2
    assert "inside Codat's 28h retry window" in refused.stderr
    assert "--force" in refused.stderr

    dry = cli("purge", "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would purge {key}" in dry.stdout
    assert "would purge 1 delivery" in dry.stdout
    assert len(cli.events()) == 1

    dry_json = _json_lines(cli("purge", "--older-than", "0s", "--dry-run", "--json").stdout)
    assert dry_json == [{"dry_run": True, "older_than_seconds": 0.0, "count": 1, "keys": [key]}]
    done = _json_lines(cli("purge", "--older-than", "0s", "--force", "--json").stdout)
    assert done == [{"dry_run": False, "older_than_seconds": 0.0, "count": 1, "keys": None}]
    assert cli.events() == []


def test_trigger_repeat_summary_and_json(cli: Cli, server: Server) -> None:
    done = cli("trigger", "Sync Completed", "--url", server.url, "--authorization", AUTHORIZATION,
               "--repeat", "4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = done.stdout.splitlines()[-1]
    assert summary.startswith("4 sent: 3 x 200 duplicate, 1 x 200 processed; p50 ")
    assert " ms, p99 " in summary

    as_json = cli("trigger", "Sync Completed", "--url", server.url,
                  "--authorization", AUTHORIZATION, "--repeat", "2", "--json")  # fmt: skip
    rows = _json_lines(as_json.stdout)
    assert len(rows) == 2
    assert {tuple(sorted(row)) for row in rows} == {
        ("detail", "key", "ms", "number", "outcome", "status")
    }
    assert sorted(row["outcome"] for row in rows) == ["duplicate", "processed"]


def test_json_on_samples_plugins_verify(cli: Cli, tmp_path: Path) -> None:
    samples = _json_lines(cli("samples", "--json").stdout)
    assert {"type": "Sync Failed", "hook": "on_expenses_sync_failed"} in [
        {k: row[k] for k in ("type", "hook")} for row in samples
    ]
    one = cli("samples", "Sync Failed", "--json").stdout
    assert len(one.splitlines()) == 1
    assert json.loads(one)["RuleType"] == "Sync Failed"

    plugins = _json_lines(cli("plugins", "--json").stdout)
    assert {"name": "hook-log", "origin": "codat-cli-test-plugin", "version": "1.0",
            "hooks": ["on_alert", "on_event"]} in plugins  # fmt: skip

    body = sample_body("Sync Failed")
    headers, raw = tmp_path / "h.json", tmp_path / "b.json"
    headers.write_text(json.dumps(sign(body, SECRET, msg_id="msg_1")))
    raw.write_bytes(body)
    ok = cli("verify", str(headers), str(raw), "--signing-secret", SECRET, "--json")
    assert ok.returncode == 0
    assert _json_lines(ok.stdout)[0] == {
        "ok": True, "status": 200, "verified_by": "signing-secret-1", "reason": None,
        "type": "Sync Failed", "company_id": json.loads(body)["CompanyId"], "key": "msg_1",
    }  # fmt: skip
    bad = cli("verify", str(headers), str(raw), "--authorization", AUTHORIZATION, "--json")
    assert bad.returncode == 1
    verdict = _json_lines(bad.stdout)[0]
    assert (verdict["ok"], verdict["status"]) == (False, 401)


def test_replay_json_and_dry_run_json(cli: Cli, server: Server) -> None:
    cli.fail_marker.touch()
    cli("trigger", "Sync Failed", "--url", server.url, "--authorization", AUTHORIZATION)
    [row] = cli.events("--state", "failed")
    plan = _json_lines(cli("replay", "--state", "failed", "--dry-run", "--json").stdout)
    assert plan == [
        {
            "key": row["key"],
            "state": "failed",
            "type": "Sync Failed",
            "hooks": ["on_expenses_sync_failed", "on_alert"],
            "handlers": [{"hook": "on_alert", "plugin": "hook-log"}],
            "runnable": True,
        }
    ]
    cli.fail_marker.unlink()
    done = _json_lines(cli("replay", "--state", "failed", "--json").stdout)
    assert done == [
        {"key": row["key"], "was": "failed", "outcome": "processed", "state": "done", "error": None}
    ]


@pytest.mark.parametrize("served", ["werkzeug", "uvicorn"])
def test_serve_on_a_busy_port_prints_one_line(cli: Cli, server: Server, served: str) -> None:
    (cli.cwd / "asgi_app.py").write_text(
        "from codat_webhooks import Receiver\n"
        "from codat_webhooks.asgi import WebhookApp\n"
        "from codat_webhooks.stores import MemoryStore\n"
        "app = WebhookApp(Receiver(insecure=True, store=MemoryStore()))\n"
    )
    port = server.url.split(":")[2].split("/")[0]
    flags = ["--insecure"] if served == "werkzeug" else ["--app", "asgi_app:app"]
    done = cli("serve", *flags, "--port", port)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"codat-webhooks: error: cannot listen on 127.0.0.1:{port}: address already in use"
    ]


def test_replay_state_choices_are_the_replayable_states() -> None:
    # spelled out in the command so that building the parser does not import the receiver
    assert tuple(state.value for state in REPLAYABLE) == replay._REPLAYABLE
