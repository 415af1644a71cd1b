"""The commands read the environment as the app reads its settings (issue 26, item 2).

A README line such as ``export CODAT_WEBHOOKS_SIGNING_SECRET="whsec_..."`` is ignored with a
warning by the app; the commands must ignore it in the same way, and an error about a value
from the environment must name the variable, never a flag the user did not pass.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import AUTHORIZATION, Cli, Server, start_server

from codat_webhooks.errors import ConfigurationError
from codat_webhooks.settings import receiver_from_settings

pytestmark = pytest.mark.slow

PLACEHOLDER = "whsec_..."
MALFORMED = "whsec_not base64!"


def test_trigger_ignores_a_placeholder_secret_in_the_environment(cli: Cli, server: Server) -> None:
    cli.env["CODAT_WEBHOOKS_SIGNING_SECRET"] = PLACEHOLDER
    done = cli("trigger", "Sync Failed", "--url", server.url, "--authorization", AUTHORIZATION)
    assert done.returncode == 0, done.stderr
    assert " 200 processed " in done.stdout
    assert "CODAT_WEBHOOKS_SIGNING_SECRET is a placeholder" in done.stderr
    assert "--signing-secret" not in done.stderr


def test_serve_ignores_the_same_placeholder(cli: Cli) -> None:
    cli.env["CODAT_WEBHOOKS_SIGNING_SECRET"] = PLACEHOLDER
    running = start_server(cli, "--authorization", AUTHORIZATION)
    try:
        done = cli("trigger", "Sync Failed", "--url", running.url, "--authorization", AUTHORIZATION)
        assert done.returncode == 0, done.stderr
    finally:
        _, _, err = running.stop()
    assert "CODAT_WEBHOOKS_SIGNING_SECRET is a placeholder" in err


@pytest.mark.parametrize("command", ["trigger", "serve", "verify"])
def test_a_malformed_secret_in_the_environment_is_named_by_its_variable(
    cli: Cli, command: str
) -> None:
    cli.env["CODAT_WEBHOOKS_SIGNING_SECRET"] = MALFORMED
    (cli.cwd / "headers.txt").write_text("Content-Type: application/json\n")
    (cli.cwd / "body.json").write_text("{}")
    args = {
        "trigger": ["trigger", "Sync Failed", "--url", "http://127.0.0.1:9/x"],
        "serve": ["serve", "--port", "0"],
        "verify": ["verify", "headers.txt", "body.json"],
    }[command]
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("codat-webhooks: error: CODAT_WEBHOOKS_SIGNING_SECRET: ")
    assert "--signing-secret" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_malformed_secret_flag_is_named_by_its_flag(cli: Cli) -> None:
    done = cli("trigger", "Sync Failed", "--signing-secret", MALFORMED)
    assert done.returncode == 2
    assert "error: --signing-secret: a signing secret must be" in done.stderr
    placeholder = cli("trigger", "Sync Failed", "--signing-secret", PLACEHOLDER)
    assert placeholder.returncode == 2
    assert "--signing-secret 'whsec_...' is a documentation placeholder" in placeholder.stderr


def test_the_app_names_the_variable_too() -> None:
    with pytest.raises(ConfigurationError, match=r"^CODAT_WEBHOOKS_SIGNING_SECRET: "):
        receiver_from_settings({"CODAT_WEBHOOKS_SIGNING_SECRET": MALFORMED})
    with pytest.raises(ConfigurationError, match="set CODAT_WEBHOOKS_AUTHORIZATION"):
        receiver_from_settings({"CODAT_WEBHOOKS_SIGNING_SECRET": PLACEHOLDER})


def test_trigger_without_a_credential_says_it_sends_unauthenticated_requests(
    cli: Cli, server: Server
) -> None:
    done = cli("trigger", "Sync Failed", "--url", server.url, "--json")
    assert json.loads(done.stdout)["status"] == 401
    [warning] = done.stderr.strip().splitlines()
    assert warning.startswith("codat-webhooks: warning: no credential: sending unauthenticated")
    signed = cli("trigger", "Sync Failed", "--url", server.url, "--authorization", AUTHORIZATION)
    assert signed.returncode == 0
    assert signed.stderr == ""
