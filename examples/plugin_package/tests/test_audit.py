"""The plugin's own tests: drive a real Receiver and read the audit file it writes."""

from __future__ import annotations

import json
from pathlib import Path

import codat_webhooks_audit
import pytest

from codat_webhooks import Receiver
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body

TOKEN = "Bearer audit-test"


@pytest.fixture
def audit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv(codat_webhooks_audit.AUDIT_FILE_VARIABLE, str(path))
    return path


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(
        authorization=TOKEN,
        store=MemoryStore(),
        plugins=[codat_webhooks_audit],
        load_entrypoints=False,
    )


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_processed_then_duplicate(receiver: Receiver, audit_file: Path) -> None:
    body = sample_body("Dataset data changed")
    headers = {"Authorization": TOKEN}
    assert receiver.handle("POST", headers, body).outcome == "processed"
    assert receiver.handle("POST", headers, body).outcome == "duplicate"
    first, second = lines(audit_file)
    assert first["outcome"] == "processed"
    assert first["rule_type"] == "Dataset data changed"
    assert first["verified_by"] == "authorization"
    assert first["attempt"] == 1
    assert second == {"outcome": "duplicate", "key": first["key"], "at": second["at"]}


def test_rejection_is_recorded_without_the_credential(receiver: Receiver, audit_file: Path) -> None:
    reply = receiver.handle("POST", {"Authorization": "Bearer wrong"}, b"{}")
    assert reply.status == 401
    (line,) = lines(audit_file)
    assert line["outcome"] == "rejected"
    assert "wrong" not in audit_file.read_text()


def test_nothing_is_written_unless_a_file_is_configured(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(codat_webhooks_audit.AUDIT_FILE_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    reply = receiver.handle("POST", {"Authorization": TOKEN}, sample_body("Sync Failed"))
    assert reply.outcome == "processed"
    assert list(tmp_path.iterdir()) == []
