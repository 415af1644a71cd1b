"""``resend``: stored deliveries POSTed again to a running receiver, re-signed."""

from __future__ import annotations

import json

import pytest
from cli_helpers import AUTHORIZATION, SECRET, Cli, Server

pytestmark = pytest.mark.slow


def _trigger(cli: Cli, server: Server, rule: str) -> tuple[int, str]:
    done = cli("trigger", rule, "--url", server.url, "--authorization", AUTHORIZATION)
    return done.returncode, done.stdout.splitlines()[1].split()[3]


def test_resend_a_done_delivery_is_a_duplicate(cli: Cli, server: Server) -> None:
    code, key = _trigger(cli, server, "Sync Completed")
    assert code == 0
    again = cli("resend", key, "--url", server.url, "--signing-secret", SECRET)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"  200 duplicate    {key}" in again.stdout
    assert "(was done)" in again.stdout
    assert [entry["key"] for entry in cli.hook_log()] == [key], "the handler did not run again"


def test_resend_failed_deliveries_after_the_fix(cli: Cli, server: Server) -> None:
    cli.fail_marker.touch()
    code, key = _trigger(cli, server, "Push Operation Timed Out")
    assert code == 1
    cli.fail_marker.unlink()  # the fix is deployed on the running receiver

    done = cli("resend", "--state", "failed", "--url", server.url, "--json",
               "--authorization", AUTHORIZATION)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = [json.loads(text) for text in done.stdout.splitlines()]
    assert line == line | {"key": key, "status": 200, "outcome": "processed", "was": "failed"}
    assert set(line) == {"number", "key", "status", "outcome", "detail", "ms", "was"}
    [row] = cli.events()
    assert (row["key"], row["state"], row["attempts"]) == (key, "done", 2)

    signed_wrong = cli("resend", key, "--url", server.url, "--signing-secret",
                       "whsec_" + "A" * 32)  # fmt: skip
    assert signed_wrong.returncode == 1
    assert " 401 unauthorized " in signed_wrong.stdout


def test_resend_needs_a_credential_and_existing_keys(cli: Cli, server: Server) -> None:
    _, key = _trigger(cli, server, "Sync Completed")
    bare = cli("resend", key, "--url", server.url)
    assert bare.returncode == 2
    assert "stored credentials are redacted" in bare.stderr
    missing = cli("resend", "nope", "--url", server.url, "--authorization", AUTHORIZATION)
    assert missing.returncode == 1
    assert "no delivery with key 'nope'" in missing.stderr
    nothing = cli("resend", "--url", server.url)
    assert nothing.returncode == 2
    assert "name the KEYs to resend" in nothing.stderr
