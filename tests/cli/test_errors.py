"""Bad input gives one line on stderr and a non-zero status, never a traceback."""

from __future__ import annotations

import pytest
from cli_helpers import Cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["trigger", "No Such Rule"], 2, "unknown type 'No Such Rule'"),
        (["trigger", "Sync Failed", "--set", "Data.syncId"], 2, "malformed --set 'Data.syncId'"),
        (["trigger", "Sync Failed", "--set", "=x"], 2, "malformed --set"),
        (["trigger", "Sync Failed", "--url", "http://127.0.0.1:9/x"], 1, "cannot reach"),
        (["trigger", "Sync Failed", "--url", "ftp://example"], 2, "--url must be an http(s)"),
        (["trigger", "Sync Failed", "--repeat", "0"], 2, "expected a positive integer"),
        (["events"], 1, "no database at codat-webhooks.sqlite3"),
        (["events", "--db", "missing.sqlite3"], 1, "no database at missing.sqlite3"),
        (["show", "some-key"], 1, "no database at"),
        (["replay", "--state", "failed"], 1, "no database at"),
        (["replay"], 2, "name the KEYs to replay"),
        (["purge", "--older-than", "30d"], 1, "no database at"),
        (["purge", "--older-than", "soon"], 2, "invalid duration 'soon'"),
        (["events", "--since", "yesterday-ish"], 2, "invalid --since"),
        (["events", "--state", "lost"], 2, "invalid choice: 'lost'"),
        (["samples", "connection.exploded"], 2, "unknown type"),
        (["samples", "{dataType}.write.successful"], 2, "is a pattern"),
        (["serve", "--insecure", "--db", "no/such/dir/x.sqlite3"], 1, "directory no/such/dir"),
        (["serve", "--insecure", "--path", "hooks"], 2, "--path must start with '/'"),
        (["nonsense"], 2, "invalid choice: 'nonsense'"),
    ],
)
def test_bad_input(cli: Cli, args: list[str], status: int, message: str) -> None:
    done = cli(*args)
    assert done.returncode == status, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("codat-webhooks")


def test_unknown_key_on_an_existing_database(cli: Cli) -> None:
    from codat_webhooks.stores.sqlite import SQLiteStore

    SQLiteStore(cli.cwd / "codat-webhooks.sqlite3").close()
    for args in (["show", "nope"], ["replay", "nope"]):
        done = cli(*args)
        assert done.returncode == 1
        assert "no delivery with key 'nope'" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
