"""Commands that work on a store or a capture without a server: events, show, purge, verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import AUTHORIZATION, SECRET, Cli

from codat_webhooks import Receiver
from codat_webhooks.stores.sqlite import SQLiteStore
from codat_webhooks.testing import legacy_sample, sample_body, sign

pytestmark = pytest.mark.slow


def _fill(db: Path, count: int) -> list[str]:
    """Deliver ``count`` alerts in-process, one of them invalid (parked)."""
    receiver = Receiver(authorization=AUTHORIZATION, store=SQLiteStore(db), load_entrypoints=False)
    keys = []
    try:
        for _ in range(count):
            body = sample_body("Dataset data changed")
            reply = receiver.handle("POST", {"Authorization": AUTHORIZATION}, body)
            keys.append(str(reply.key))
        parked = receiver.handle(
            "POST", {"Authorization": AUTHORIZATION}, b'{"AlertId": "no-rule-type"}'
        )
        assert parked.status == 422
        keys.append(str(parked.key))
    finally:
        receiver.close()
    return keys


def test_events_json_table_and_purge(cli: Cli) -> None:
    db = cli.cwd / "x.sqlite3"
    keys = _fill(db, 3)
    rows = cli.events("--db", str(db))
    assert {row["key"] for row in rows} == set(keys)
    parked = cli.events("--db", str(db), "--state", "parked")
    assert [row["key"] for row in parked] == ["no-rule-type"]
    assert len(cli.events("--db", str(db), "--type", "DatasetDataChanged", "--since", "1h")) == 3
    table = cli("events", "--db", str(db), "--limit", "2")
    assert table.stdout.splitlines()[0].split()[:3] == ["LAST", "SEEN", "STATE"]
    assert "2 deliveries" in table.stdout

    kept = cli("purge", "--older-than", "30d", "--db", str(db))
    assert kept.returncode == 0
    assert "purged 0 deliveries" in kept.stdout
    purged = cli("purge", "--older-than", "0s", "--db", str(db), "--force")
    assert "purged 4 deliveries" in purged.stdout
    assert cli.events("--db", str(db)) == []


def test_show_redacts_credentials(cli: Cli) -> None:
    db = cli.cwd / "codat-webhooks.sqlite3"
    [key, _] = _fill(db, 1)
    shown = cli("show", key)
    assert shown.returncode == 0
    assert "authorization: [redacted]" in shown.stdout.lower()
    assert AUTHORIZATION not in shown.stdout
    assert '"RuleType": "Dataset data changed"' in shown.stdout


def test_replay_of_a_parked_delivery_stays_parked(cli: Cli) -> None:
    db = cli.cwd / "codat-webhooks.sqlite3"
    _fill(db, 1)
    done = cli("replay", "--state", "parked")
    assert done.returncode == 1
    assert "no-rule-type  parked -> invalid" in done.stdout
    [row] = cli.events("--state", "parked")
    assert row["attempts"] == 2


def _capture(tmp: Path, headers: dict[str, str], body: bytes) -> tuple[str, str]:
    head = tmp / "headers.txt"
    head.write_text(
        "POST /webhooks/codat HTTP/1.1\n" + "".join(f"{k}: {v}\n" for k, v in headers.items())
    )
    raw = tmp / "body.json"
    raw.write_bytes(body)
    return str(head), str(raw)


def test_verify_explains_exactly_why(cli: Cli, tmp_path: Path) -> None:
    body = sample_body("Sync Completed")
    good = _capture(tmp_path, sign(body, SECRET), body)
    ok = cli("verify", *good, "--signing-secret", SECRET)
    assert ok.returncode == 0, ok.stdout
    assert "authenticated by signing-secret" in ok.stdout
    assert "OK: 'Sync Completed'" in ok.stdout

    tampered = _capture(tmp_path, sign(body, SECRET), body.replace(b"Expense", b"Expensf"))
    bad = cli("verify", *tampered, "--signing-secret", SECRET)
    assert bad.returncode == 1
    assert "no signature matches a configured signing secret" in bad.stdout

    stale = _capture(tmp_path, sign(body, SECRET, timestamp=1_700_000_000), body)
    old = cli("verify", *stale, "--signing-secret", SECRET)
    assert "signature timestamp is stale by" in old.stdout

    legacy = _capture(tmp_path, {"Authorization": "Bearer wrong"}, body)
    wrong = cli("verify", *legacy, "--authorization", AUTHORIZATION)
    assert "Authorization header matches no configured value" in wrong.stdout

    invalid_body = json.dumps({**legacy_sample("Sync Completed"), "RuleType": 5}).encode()
    invalid = _capture(tmp_path, {"Authorization": AUTHORIZATION}, invalid_body)
    rejected = cli("verify", *invalid, "--authorization", AUTHORIZATION)
    assert rejected.returncode == 1
    assert "REJECTED (422)" in rejected.stdout
