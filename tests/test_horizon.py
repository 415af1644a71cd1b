"""The sender's horizon: Codat's schedule read off a key's history, and a key driven through all
of it on the test clock until Codat gives up, then replayed."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.cli import main
from codat_webhooks.horizon import (
    CODAT_ATTEMPTS,
    CODAT_GIVES_UP_AFTER,
    CODAT_SCHEDULE,
    Horizon,
    sender_horizon,
)
from codat_webhooks.outcomes import Outcome
from codat_webhooks.queues import RetryPolicy
from codat_webhooks.replaying import replay_record
from codat_webhooks.stores import Record, SQLiteStore, State
from codat_webhooks.stores.history import History, HistoryEntry
from codat_webhooks.testing import FakeClock, RetrySchedule, deliver_with_retries, sample_body

START = 1_800_000_000.0
CODAT = RetrySchedule("codat", CODAT_SCHEDULE, None, False)


def record(state: State, attempts: int = 1, **fields: object) -> Record:
    values: dict[str, object] = {"first_seen": START, "last_seen": START}
    values.update(fields)
    return Record("k", state, "f", attempts, **values)  # type: ignore[arg-type]


def answers(*times: float, status: int = 503) -> History:
    return History([HistoryEntry(START + t, status, "failed") for t in times])


def test_codat_schedule_is_eight_attempts_over_about_28_hours() -> None:
    assert CODAT_ATTEMPTS == 8
    assert sum(CODAT_SCHEDULE) == 5 + 300 + 1800 + 7200 + 18000 + 36000 + 36000
    assert sum(CODAT_SCHEDULE) < CODAT_GIVES_UP_AFTER <= sum(CODAT_SCHEDULE) + 3600


def test_after_the_first_failure_the_next_attempt_is_5_seconds_later() -> None:
    horizon = sender_horizon(record(State.FAILED), answers(0), START + 1)
    assert horizon == Horizon(1, 7, START + 5, False, "codat")


def test_after_three_failures_the_next_is_30_minutes_after_the_third() -> None:
    horizon = sender_horizon(record(State.FAILED, 3), answers(0, 5, 305), START + 400)
    assert horizon == Horizon(3, 5, START + 305 + 1800, False)


def test_eight_failed_attempts_mean_abandoned() -> None:
    times = [sum(CODAT_SCHEDULE[: n + 1]) for n in range(8)]
    horizon = sender_horizon(record(State.FAILED, 8), answers(*times), START + times[-1])
    assert horizon == Horizon(8, 0, None, True)


def test_28_hours_after_the_first_attempt_codat_has_given_up_whatever_we_saw() -> None:
    now = START + CODAT_GIVES_UP_AFTER
    assert sender_horizon(record(State.FAILED), answers(0), now) == Horizon(1, 0, None, True)


def test_done_is_never_abandoned_and_expects_nothing() -> None:
    horizon = sender_horizon(record(State.DONE), answers(0, 5, status=200), START + 10**6)
    assert horizon == Horizon(2, 0, None, False)


def test_a_running_attempt_is_not_abandoned_yet() -> None:
    times = [sum(CODAT_SCHEDULE[: n + 1]) for n in range(8)]
    horizon = sender_horizon(record(State.PROCESSING, 9), answers(*times), START + times[-1])
    assert not horizon.abandoned


def test_dropped_entries_count_as_attempts_seen() -> None:
    history = History(answers(0).entries, dropped=60)
    assert sender_horizon(record(State.DONE), history, START).attempts_seen == 61


def test_a_queued_key_follows_our_own_retry_policy() -> None:
    policy = RetryPolicy(attempts=5)
    history = answers(0, status=202)
    waiting = record(State.QUEUED, 2, lease_expires=START + 40)
    assert sender_horizon(waiting, history, START, policy) == Horizon(
        2, 3, START + 40, False, "queue"
    )
    spent = record(State.FAILED, 5)
    assert sender_horizon(spent, history, START, policy) == Horizon(5, 0, None, True, "queue")
    assert not sender_horizon(record(State.DONE, 1), history, START, policy).abandoned


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def on_outcome(self, outcome: str) -> None:
        self.seen.append(outcome)


class Down:
    @hookimpl
    def on_alert(self) -> None:
        raise RuntimeError("the accounting API is down")


class Fixed:
    def __init__(self) -> None:
        self.ran = 0

    @hookimpl
    def on_alert(self) -> None:
        self.ran += 1


def status(db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    capsys.readouterr()
    code = main(["status", "--db", str(db), "--json"])
    findings: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["findings"]
    return code, findings


def test_a_key_through_codats_whole_schedule_is_abandoned_once_then_done_after_replay(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    start = time.time() - CODAT_GIVES_UP_AFTER - 3600  # so the schedule ends an hour ago
    clock = FakeClock(start)
    db = tmp_path / "deliveries.sqlite3"
    store = SQLiteStore(db, clock=clock)
    outcomes = Outcomes()
    receiver = Receiver(
        insecure=True, store=store, plugins=[Down(), outcomes], load_entrypoints=False, clock=clock
    )
    body = sample_body(RuleType.DATASET_DATA_CHANGED)
    with caplog.at_level(logging.ERROR, logger="codat_webhooks.receiver"):
        attempts = deliver_with_retries(receiver, body, {}, schedule=CODAT, clock=clock)
    assert [attempt.reply.status for attempt in attempts] == [503] * CODAT_ATTEMPTS
    key = attempts[0].reply.key
    assert key is not None
    kept = store.kept_history(key)
    assert [entry.outcome for entry in kept.entries] == ["failed"] * CODAT_ATTEMPTS
    assert [entry.at - start for entry in kept.entries] == [
        sum(CODAT_SCHEDULE[: n + 1]) for n in range(CODAT_ATTEMPTS)
    ]
    stored = store.get(key)
    assert stored is not None
    horizon = sender_horizon(stored, kept, clock())
    assert horizon == Horizon(8, 0, None, True)
    # reported once: at ERROR in the log, and to on_outcome (the reply itself stays "failed")
    assert outcomes.seen == [Outcome.FAILED] * 7 + [Outcome.ABANDONED]
    last_words = [r for r in caplog.records if "last attempt" in r.getMessage()]
    assert len(last_words) == 1
    assert f"codat-webhooks replay {key}" in last_words[0].getMessage()
    assert attempts[-1].reply.outcome == "failed"
    # `status` lists it first, with the command to run, and exits 1: a person must act.
    code, findings = status(db, capsys)
    assert code == 1
    first = findings[0]
    assert first["severity"] == "action"
    assert "abandoned by the sender" in first["what"]
    assert first["keys"] == [key]
    assert first["do"].endswith(f"codat-webhooks replay {key}")
    # The fix is deployed; the replay runs it and the key is done.
    fixed = Fixed()
    replayer = Receiver(
        insecure=True, store=store, plugins=[fixed, outcomes], load_entrypoints=False, clock=clock
    )
    clock.advance(1800)
    assert replay_record(replayer, stored).outcome == "processed"
    assert fixed.ran == 1
    after = store.get(key)
    assert after is not None
    assert after.state is State.DONE
    assert not sender_horizon(after, store.kept_history(key), clock()).abandoned
    assert store.history(key)[-1].outcome == "processed"
    code, findings = status(db, capsys)
    assert code == 0
    assert {finding["severity"] for finding in findings} <= {"info", "warning"}
    assert any(finding["what"].startswith("last successful delivery") for finding in findings)
    store.close()
    receiver.close()
    replayer.close()
