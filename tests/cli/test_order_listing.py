"""``events``, ``show`` and the console say which deliveries were stale or broke a chain.

The deliveries are made by a real receiver over a real SQLite file; the commands run through
``main(argv)`` and the console over real HTTP, as the other CLI and console tests do.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.console.helpers import PASSWORD, login, serving
from tests.test_ordering import DISCONNECTED, RECONNECTED, REORDERED, raw, status_change

from codat_webhooks import Receiver
from codat_webhooks.cli import main
from codat_webhooks.console import Console
from codat_webhooks.stores.sqlite import SQLiteStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "deliveries.sqlite3"
    receiver = Receiver(insecure=True, store=SQLiteStore(path), load_entrypoints=False)
    try:
        for body in REORDERED:
            assert receiver.handle("POST", {}, raw(body)).outcome == "processed"
        for old, new in (("PendingAuth", "Linked"), ("Deauthorized", "Linked")):
            receiver.handle("POST", {"webhook-id": f"chain-{old}"}, raw(status_change(old, new)))
    finally:
        receiver.close()
    return path


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_events_json_and_table_mark_stale_and_gap(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", "--db", str(db), "--json"]) == 0
    by_key = {row["key"]: row for row in lines(capsys)}
    assert by_key[DISCONNECTED]["stale"] is True
    assert by_key[DISCONNECTED]["newer"] == {
        "key": RECONNECTED,
        "generated_date": "2026-11-24T10:05:00Z",
    }
    assert by_key[RECONNECTED]["stale"] is False
    assert by_key["chain-Deauthorized"]["gap"] is True
    assert by_key["chain-PendingAuth"]["gap"] is False
    assert main(["events", "--db", str(db)]) == 0
    table = capsys.readouterr().out.splitlines()
    header = table[0].split()
    assert header[-1] == "ERROR"  # the widest column stays last
    order = table[0].index("ORDER")
    [row] = [line for line in table if DISCONNECTED in line]
    assert row[order:].split()[0] == "stale"


def test_events_stale_lists_only_stale_deliveries(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", "--db", str(db), "--stale", "--json", "--limit", "1"]) == 0
    assert [row["key"] for row in lines(capsys)] == [DISCONNECTED]


def test_show_prints_the_order(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", DISCONNECTED, "--db", str(db), "--json"]) == 0
    [shown] = lines(capsys)
    assert shown["stale"] is True
    assert shown["newer"]["key"] == RECONNECTED  # type: ignore[index]
    assert main(["show", DISCONNECTED, "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert f"order:      stale: {RECONNECTED} (generated 2026-11-24T10:05:00Z) came first" in text
    assert main(["show", RECONNECTED, "--db", str(db)]) == 0
    assert "order:      in order" in capsys.readouterr().out


def test_the_console_marks_stale_and_gapped_deliveries(db: Path) -> None:
    receiver = Receiver(insecure=True, store=SQLiteStore(db), load_entrypoints=False)
    try:
        with serving(Console(receiver, password=PASSWORD)) as base, httpx.Client() as client:
            login(client, base)
            listing = client.get(f"{base}/").text
            assert listing.count('class="order stale"') == 1
            assert listing.count('class="order gap"') == 1
            page = client.get(f"{base}/delivery", params={"key": DISCONNECTED}).text
            assert 'id="order"' in page
            assert RECONNECTED in page
            plain = client.get(f"{base}/delivery", params={"key": RECONNECTED}).text
            assert 'id="order"' not in plain
    finally:
        receiver.close()
