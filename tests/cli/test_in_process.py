"""Commands run through ``main(argv)`` in this process, where coverage measures them.

The console-script tests run ``codat-webhooks`` in subprocesses, which coverage does not
measure; these cover the code the commands import only when they run (the receiver, the
models, the replay planner), so that deferring those imports left nothing unmeasured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import AUTHORIZATION, SECRET

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.cli import main
from codat_webhooks.cli._common import plugin_label
from codat_webhooks.hooks.manager import make_plugin_manager
from codat_webhooks.replaying import plugin_label as replaying_plugin_label
from codat_webhooks.stores.sqlite import SQLiteStore
from codat_webhooks.testing import sample_body, sign


class Broken:
    @hookimpl
    def on_alert(self) -> None:
        raise RuntimeError("handler bug")


def test_replay_dry_run_plans_a_failed_delivery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "deliveries.sqlite3"
    receiver = Receiver(
        insecure=True, store=SQLiteStore(str(db)), plugins=[Broken()], load_entrypoints=False
    )
    try:
        reply = receiver.handle("POST", {}, sample_body("Sync Completed"))
    finally:
        receiver.close()
    assert reply.outcome == "failed"
    assert reply.key is not None

    status = main(["replay", reply.key, "--dry-run", "--json", "--db", str(db)])
    [plan] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (plan["key"], plan["state"], plan["type"]) == (reply.key, "failed", "Sync Completed")
    assert "on_alert" in plan["hooks"]
    assert status == (0 if plan["runnable"] else 2)


def test_verify_authenticates_and_routes_a_captured_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = sample_body("Sync Completed")
    headers = tmp_path / "headers.json"
    headers.write_text(json.dumps(sign(body, SECRET)))
    raw = tmp_path / "body.json"
    raw.write_bytes(body)

    status = main(["verify", str(headers), str(raw), "--signing-secret", SECRET, "--json"])
    verdict = json.loads(capsys.readouterr().out)
    assert status == 0
    assert (verdict["ok"], verdict["verified_by"], verdict["type"]) == (
        True,
        "signing-secret-1",
        "Sync Completed",
    )

    raw.write_bytes(b"[]")
    headers.write_text(json.dumps({"Authorization": AUTHORIZATION}))
    status = main(["verify", str(headers), str(raw), "--authorization", AUTHORIZATION, "--json"])
    assert status == 1
    assert json.loads(capsys.readouterr().out)["status"] == 400


def test_plugin_label_is_the_replay_modules() -> None:
    manager = make_plugin_manager(plugins=[Broken()], load_entrypoints=False)
    labels = [plugin_label(manager, plugin) for plugin in manager.get_plugins()]
    assert "Broken" in labels
    assert labels == [replaying_plugin_label(manager, p) for p in manager.get_plugins()]
