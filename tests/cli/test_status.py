"""``codat-webhooks status``: findings from a real store, each with what to do, and the exit
status a cron job or a probe acts on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.cli import main
from codat_webhooks.horizon import CODAT_DISABLES_AFTER
from codat_webhooks.stores import SQLiteStore
from codat_webhooks.testing import FakeClock, sample_body

AUTH = {"Authorization": "Bearer s3cret"}


class Down:
    @hookimpl
    def on_alert(self) -> None:
        raise RuntimeError("ledger API answered 502")


def run(db: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["status", "--db", str(db), *flags])
    return code, capsys.readouterr().out


def findings(db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    code, out = run(db, capsys, "--json")
    return code, json.loads(out)["findings"]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, FakeClock, Receiver]]:
    clock = FakeClock(time.time() - 7200)
    db = tmp_path / "d.sqlite3"
    receiver = Receiver(
        authorization="Bearer s3cret",
        store=SQLiteStore(db, clock=clock),
        plugins=[Down()],
        load_entrypoints=False,
        clock=clock,
    )
    yield db, clock, receiver
    receiver.close()


def test_a_failing_key_with_attempts_left_is_a_warning_with_its_next_attempt(
    setup: tuple[Path, FakeClock, Receiver], capsys: pytest.CaptureFixture[str]
) -> None:
    db, clock, receiver = setup
    clock.advance(7200 - 60)
    body = sample_body(RuleType.DATA_SYNC_COMPLETED)
    key = receiver.handle("POST", AUTH, body).key
    code, found = findings(db, capsys)
    assert code == 0
    (failing,) = [f for f in found if f["keys"]]
    assert failing["severity"] == "warning"
    assert failing["keys"] == [key]
    assert "attempt 1, 7 left from Codat, the next after" in failing["what"]
    assert "RuntimeError: ledger API answered 502" in failing["do"]
    assert any(f["what"].startswith("last hour: 1 failed") for f in found)
    code, text = run(db, capsys)
    assert code == 0
    assert text.startswith("WARNING")
    assert f"{key} (Data sync completed) is failing" in text


def test_answers_failing_for_hours_count_down_to_codats_5_day_rule(
    setup: tuple[Path, FakeClock, Receiver], capsys: pytest.CaptureFixture[str]
) -> None:
    db, clock, receiver = setup
    first = clock.now
    for _ in range(4):  # four different alerts, every answer a 503
        receiver.handle("POST", AUTH, sample_body(RuleType.DATASET_DATA_CHANGED))
        clock.advance(1200)
    code, found = findings(db, capsys)
    assert code == 1
    (risk,) = [f for f in found if "5 days" in f["what"]]
    assert risk["severity"] == "action"
    disabled = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first + CODAT_DISABLES_AFTER))
    assert disabled in risk["what"]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first))
    assert f"recover failed messages since {since}" in risk["do"]
    assert "Monitor > Webhooks > Events > Endpoints" in risk["do"]


def test_a_rotated_secret_shows_as_a_share_of_401s(
    setup: tuple[Path, FakeClock, Receiver], capsys: pytest.CaptureFixture[str]
) -> None:
    db, clock, receiver = setup
    clock.advance(7200 - 600)
    stale = {"Authorization": "Bearer old-secret"}
    for _ in range(3):
        assert (
            receiver.handle("POST", stale, sample_body(RuleType.DATASET_DATA_CHANGED)).status == 401
        )
        clock.advance(2)
    code, found = findings(db, capsys)
    assert code == 1
    (share,) = [f for f in found if "401" in f["what"]]
    assert share["severity"] == "action"
    assert share["what"].startswith("100% of answers in the last hour were 401 (3 in the last hour")
    assert "rotation" in share["do"]


def test_401s_are_noted_at_most_once_a_second(
    setup: tuple[Path, FakeClock, Receiver], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, receiver = setup
    for _ in range(5):
        receiver.handle("POST", {}, sample_body(RuleType.DATASET_DATA_CHANGED))
    assert len(receiver.store.history("~unauthorized")) == 1


def test_an_empty_store_is_fine_and_a_missing_one_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "d.sqlite3"
    SQLiteStore(db).close()
    code, found = findings(db, capsys)
    assert code == 0
    assert [f["severity"] for f in found] == ["info"] * 3
    assert "Codat Portal" in found[-1]["do"]
    assert main(["status", "--db", str(tmp_path / "missing.sqlite3")]) == 2


def test_show_prints_the_history_and_the_horizon(
    setup: tuple[Path, FakeClock, Receiver], capsys: pytest.CaptureFixture[str]
) -> None:
    db, clock, receiver = setup
    clock.advance(7200 - 20)
    body = sample_body(RuleType.DATA_SYNC_COMPLETED)
    key = receiver.handle("POST", AUTH, body).key
    assert key is not None
    clock.advance(5)
    receiver.handle("POST", AUTH, body)
    capsys.readouterr()
    assert main(["show", key, "--db", str(db), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    first, second = shown["history"]
    assert set(first) >= {"at", "status", "outcome", "duration_ms", "error"}
    assert (first["status"], first["outcome"]) == (503, "failed")
    assert first["error"] == "RuntimeError: ledger API answered 502"
    assert first["at"].endswith("Z")
    assert time.strptime(second["at"], "%Y-%m-%dT%H:%M:%SZ")
    next_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now + 300))
    assert shown["sender"] == {
        "attempts_seen": 2,
        "attempts_left": 6,
        "next_attempt_after": next_at,
        "abandoned": False,
        "by": "codat",
    }
    assert main(["show", key, "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert f"sender:     Codat's next attempt in about 5 min (after {next_at}); 6 left" in text
    assert "503  failed" in text
    assert main(["events", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert f"6 left, next {next_at}" in table
    assert main(["events", "--db", str(db), "--json"]) == 0
    (event,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert event["sender"]["attempts_left"] == 6


def test_a_few_failures_in_a_minute_are_not_an_endpoint_being_disabled(
    setup: tuple[Path, FakeClock, Receiver], capsys: pytest.CaptureFixture[str]
) -> None:
    db, clock, receiver = setup
    clock.advance(7200 - 120)
    for _ in range(3):
        receiver.handle("POST", AUTH, sample_body(RuleType.DATASET_DATA_CHANGED))
        clock.advance(5)
    code, found = findings(db, capsys)
    assert code == 0
    assert not [f for f in found if "5 days" in f["what"]]
    assert len([f for f in found if f["keys"]]) == 3  # each failing, with attempts left


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("raise RuntimeError('no settings')\n", "RuntimeError: no settings"),
        ("import a_module_that_is_not_installed\n", "ModuleNotFoundError"),
    ],
    ids=["raises", "imports-a-missing-module"],
)
def test_an_app_that_does_not_load_is_a_configuration_error_not_an_action(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
    said: str,
) -> None:
    """Exit 1 tells cron that a person must act on a finding; an app that fails to import is
    the documented exit 2, with one error line."""
    (tmp_path / "brokenapp.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    capsys.readouterr()
    assert main(["status", "--app", "brokenapp:receiver"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert line.startswith("codat-webhooks: error: --app 'brokenapp:receiver': importing")
    assert said in line
