"""End to end through the real executable: serve, trigger every type, inspect, replay."""

from __future__ import annotations

import json
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest
from cli_helpers import AUTHORIZATION, SECRET, Cli, Server, start_server

from codat_webhooks.cli import _catalog
from codat_webhooks.rules import RULES

pytestmark = pytest.mark.slow

ALL_TYPES = _catalog.types()


def test_every_rule_and_event_type_is_triggerable() -> None:
    names = {sample_type.name for sample_type in ALL_TYPES}
    assert {rule.type.value for rule in RULES} <= names
    assert len(ALL_TYPES) > len(RULES), "the new-service event types are listed too"


def test_trigger_every_type_then_events_show_and_replay_see_them(cli: Cli, server: Server) -> None:
    def trigger(index: int) -> tuple[str, str]:
        sample_type = ALL_TYPES[index]
        # alternate the two credential kinds, so both reach every code path
        credential = (
            ["--authorization", AUTHORIZATION] if index % 2 else ["--signing-secret", SECRET]
        )
        done = cli("trigger", sample_type.concrete, "--url", server.url, *credential)
        assert done.returncode == 0, (sample_type.name, done.stdout, done.stderr)
        assert " 200 processed " in done.stdout, done.stdout
        key = done.stdout.splitlines()[1].split()[3]
        return sample_type.name, key

    with ThreadPoolExecutor(8) as pool:
        sent = dict(pool.map(trigger, range(len(ALL_TYPES))))

    stored = {row["key"]: row for row in cli.events()}
    assert set(sent.values()) <= set(stored)
    assert {stored[key]["state"] for key in sent.values()} == {"done"}
    logged = [entry["key"] for entry in cli.hook_log()]
    assert sorted(logged) == sorted(sent.values()), "each delivery ran the plugin exactly once"

    key = sent["DataConnectionStatusChanged"]
    shown = cli("show", key)
    assert shown.returncode == 0, shown.stderr
    assert "DataConnectionStatusChanged" in shown.stdout
    assert AUTHORIZATION not in shown.stdout
    record = json.loads(cli("show", key, "--json").stdout)
    assert record["state"] == "done"
    assert json.loads(record["body"])["RuleType"] == "DataConnectionStatusChanged"

    table = cli("events", "--type", "data connection status changed")
    assert key in table.stdout
    assert "1 delivery" in table.stdout

    skipped = cli("replay", key)
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped" in skipped.stdout
    assert len(cli.hook_log()) == len(sent)
    forced = cli("replay", key, "--force")
    assert forced.returncode == 0, forced.stderr
    assert [e["key"] for e in cli.hook_log()].count(key) == 2

    code, out, _ = server.stop()
    assert code == 0
    assert out.count(" 200 processed ") == len(sent), out


def test_repeats_reuse_the_key_and_run_the_handler_once(cli: Cli, server: Server) -> None:
    done = cli(
        "trigger", "Data sync completed", "--url", server.url, "--authorization", AUTHORIZATION,
        "--repeat", "6", "--concurrency", "6",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    *lines, summary = done.stdout.splitlines()[1:]
    assert len(lines) == 6
    assert len({line.split()[3] for line in lines}) == 1
    assert sum(" processed " in line for line in lines) == 1
    assert len(cli.hook_log()) == 1
    assert summary.startswith("6 sent: ")
    assert "1 x 200 processed" in summary

    fresh = cli(
        "trigger", "Data sync completed", "--url", server.url, "--authorization", AUTHORIZATION,
        "--repeat", "3", "--new-key",
    )  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.count(" processed ") == 3


def test_set_overrides_reach_the_stored_body(cli: Cli, server: Server) -> None:
    company = "1e43b5a2-0c8b-4ebc-9d2c-b4a1f0e9f1a8"
    done = cli(
        "trigger", "DataConnectionStatusChanged", "--url", server.url,
        "--authorization", AUTHORIZATION, "--company-id", company,
        "--set", "Data.newStatus=Unlinked", "--set", "Data.extra={\"n\": 2}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [row] = cli.events("--company", company)
    body = json.loads(json.loads(cli("show", str(row["key"]), "--json").stdout)["body"])
    assert body["Data"]["newStatus"] == "Unlinked"
    assert body["Data"]["extra"] == {"n": 2}


def test_failed_deliveries_replay_after_the_fix(cli: Cli, server: Server) -> None:
    cli.fail_marker.touch()
    keys = []
    for rule in ("Push Operation Timed Out", "Rate Limit Reached"):
        done = cli("trigger", rule, "--url", server.url, "--authorization", AUTHORIZATION)
        assert done.returncode == 1
        assert " 503 failed " in done.stdout
        keys.append(done.stdout.splitlines()[1].split()[3])
    failed = cli.events("--state", "failed")
    assert {row["key"] for row in failed} == set(keys)
    assert all("handler bug" in str(row["last_error"]) for row in failed)

    still_broken = cli("replay", "--state", "failed")
    assert still_broken.returncode == 1
    assert "-> failed" in still_broken.stdout

    cli.fail_marker.unlink()  # the fix is deployed
    fixed = cli("replay", "--state", "failed")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "2 deliveries processed" in fixed.stdout
    assert cli.events("--state", "failed") == []
    assert {row["state"] for row in cli.events()} == {"done"}


def test_signed_only_server_rejects_unsigned_trigger(cli: Cli) -> None:
    running = start_server(cli, "--signing-secret", SECRET)
    try:
        unsigned = cli("trigger", "Sync Failed", "--url", running.url)
        assert unsigned.returncode == 1
        assert " 401 unauthorized " in unsigned.stdout
        signed = cli("trigger", "Sync Failed", "--url", running.url, "--signing-secret", SECRET)
        assert signed.returncode == 0, signed.stdout
    finally:
        code, out, err = running.stop(signal.SIGINT)
    assert code == 0
    assert "stopped" in out
    assert "missing webhook-signature header" in err  # the reason, in the server's log only


def test_environment_provides_credentials_and_database(cli: Cli) -> None:
    cli.env |= {
        "CODAT_WEBHOOKS_AUTHORIZATION": AUTHORIZATION,
        "CODAT_WEBHOOKS_DB": str(cli.cwd / "from-env.sqlite3"),
    }
    running = start_server(cli)
    try:
        done = cli("trigger", "Sync Started", "--url", running.url)
        assert done.returncode == 0, done.stdout
    finally:
        running.stop()
    assert (cli.cwd / "from-env.sqlite3").exists()
    assert len(cli.events()) == 1


def test_serve_without_credentials_refuses_and_says_how_to_fix(cli: Cli) -> None:
    done = cli("serve", "--port", "0")
    assert done.returncode == 2
    assert "--authorization" in done.stderr
    assert "--signing-secret" in done.stderr
    assert "--insecure" in done.stderr
    assert "Traceback" not in done.stderr


def test_insecure_serve_accepts_anything(cli: Cli) -> None:
    running = start_server(cli, "--insecure")
    try:
        done = cli("trigger", "Rate Limit Reset", "--url", running.url)
        assert done.returncode == 0, done.stdout
    finally:
        code, _, err = running.stop()
    assert code == 0
    assert "--insecure" in err


def test_plugins_lists_the_installed_plugin_and_its_hooks(cli: Cli) -> None:
    done = cli("plugins")
    assert done.returncode == 0, done.stderr
    assert "hook-log  (codat-cli-test-plugin 1.0)" in done.stdout
    assert "on_alert, on_event" in done.stdout
    assert "codat_webhooks.log  (built-in)" in done.stdout
