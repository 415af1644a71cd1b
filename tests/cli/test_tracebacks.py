"""One error line, never a traceback, unless ``-v`` asks for it (issue 26, item 8)."""

from __future__ import annotations

import pytest
from cli_helpers import Cli

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.stores.sqlite import SQLiteStore
from codat_webhooks.testing import sample_body

pytestmark = pytest.mark.slow

APP = """import os
from codat_webhooks.settings import receiver_from_settings
receiver = receiver_from_settings(os.environ)
"""


class Broken:
    @hookimpl
    def on_alert(self) -> None:
        raise RuntimeError("first bug")


def failed_delivery(cli: Cli) -> str:
    """A delivery whose hook failed, in the database the commands read by default."""
    store = SQLiteStore(str(cli.cwd / "codat-webhooks.sqlite3"))
    receiver = Receiver(insecure=True, store=store, plugins=[Broken()], load_entrypoints=False)
    try:
        reply = receiver.handle("POST", {}, sample_body("Sync Failed"))
    finally:
        receiver.close()
    assert reply.outcome == "failed"
    return str(reply.key)


def test_a_replay_whose_hook_fails_prints_one_line_not_a_traceback(cli: Cli) -> None:
    key = failed_delivery(cli)
    cli.fail_marker.touch()  # the installed plugin's handler still raises
    done = cli("replay", "--state", "failed")
    assert done.returncode == 1
    assert f"{key}  failed -> failed  RuntimeError: handler bug" in done.stdout
    assert "replayed 1: 1 delivery failed" in done.stdout
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("codat-webhooks: error: hook failed for")
    assert "RuntimeError: handler bug (marker file present) (-v shows the traceback)" in line


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_shows_the_hooks_traceback(cli: Cli, where: str) -> None:
    failed_delivery(cli)
    cli.fail_marker.touch()
    args = ["-v", "replay", "--state", "failed"]
    done = cli(*(args if where == "before" else [*args[1:], "-v"]))
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert 'raise RuntimeError("handler bug (marker file present)")' in done.stderr


def test_an_app_missing_a_setting_is_one_line_naming_the_setting_and_the_line(cli: Cli) -> None:
    (cli.cwd / "myapp.py").write_text(APP)
    done = cli("events", "--app", "myapp:receiver")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("codat-webhooks: error: --app 'myapp:receiver': importing 'myapp'")
    assert "ConfigurationError: no credentials: set CODAT_WEBHOOKS_AUTHORIZATION" in line
    assert line.endswith("(at myapp.py:3) (-v shows the traceback)")
    verbose = cli("events", "--app", "myapp:receiver", "--verbose")
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].endswith("(at myapp.py:3)")
