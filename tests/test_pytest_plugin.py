"""The shipped pytest plugin: its fixtures used here, and loaded from the installed package."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codat_webhooks import Receiver
from codat_webhooks.testing import (
    LEGACY_RETRIES,
    SVIX_RETRIES,
    FakeClock,
    Recorder,
    deliver_concurrently,
    deliver_with_retries,
)


def test_receiver_records_hooks(
    codat_receiver: Receiver, codat_recorder: Recorder, codat_signed_delivery: Callable[..., Any]
) -> None:
    delivery = codat_signed_delivery("DataConnectionStatusChanged")
    assert delivery.post(codat_receiver).outcome == "processed"
    assert codat_recorder.names() == ["on_data_connection_status_changed", "on_alert"]
    [call] = codat_recorder.calls_to("on_alert")
    assert call.delivery.key == delivery.key
    assert call.alert.data.new_status == "Linked"
    assert delivery.post(codat_receiver).outcome == "duplicate"
    assert codat_recorder.names()[-1] == "on_duplicate"


def test_legacy_authorization_and_events(
    codat_receiver: Receiver, codat_recorder: Recorder, codat_signed_delivery: Callable[..., Any]
) -> None:
    legacy = codat_signed_delivery("Rate Limit Reached", secret=False, authorization=True)
    assert legacy.post(codat_receiver).outcome == "processed"
    event = codat_signed_delivery("connection.connected")
    assert event.post(codat_receiver).status == 200
    assert codat_recorder.keys("on_event") == [event.key]
    forged = codat_signed_delivery("Sync Failed", secret="whsec_" + "QUJD" * 8)
    assert forged.post(codat_receiver).status == 401
    assert codat_recorder.names()[-1] == "on_rejected"


def test_codat_sample_makes_alerts_and_events(codat_sample: Callable[..., bytes]) -> None:
    assert b'"RuleType":"Sync Failed"' in codat_sample("SyncFailed")
    assert b'"eventType":"read.completed"' in codat_sample("read.completed")


def test_svix_retry_schedule_until_the_fix(
    codat_receiver: Receiver,
    codat_recorder: Recorder,
    codat_signed_delivery: Callable[..., Any],
    codat_clock: FakeClock,
) -> None:
    codat_recorder.fail("on_alert", times=3)
    first = codat_signed_delivery("Dataset data changed")
    attempts = deliver_with_retries(
        codat_receiver,
        first.body,
        lambda: codat_signed_delivery(first.body, key=first.key).headers,  # re-signed each time
        clock=codat_clock,
    )
    assert [a.reply.outcome for a in attempts] == ["failed", "failed", "failed", "processed"]
    assert [a.at for a in attempts] == [0, 5, 305, 2105]  # Codat: "roughly 35 min and 5 s"
    assert codat_recorder.keys() == [first.key] * 4  # a failing hook runs again on each retry
    assert codat_recorder.keys("on_handler_error") == [first.key] * 3


def test_legacy_schedule_stops_on_a_final_status(
    codat_receiver: Receiver, codat_signed_delivery: Callable[..., Any]
) -> None:
    bad = codat_signed_delivery(b'{"AlertId": "x"}', secret=False, authorization=True)
    attempts = deliver_with_retries(codat_receiver, bad.body, bad.headers, schedule=LEGACY_RETRIES)
    assert [a.reply.status for a in attempts] == [422]


def test_the_new_service_schedule_is_codats_eight_attempts() -> None:
    """codat-docs troubleshooting.md: "An event that fails three times and then succeeds will
    be delivered roughly 35 minutes and 5 seconds after the initial attempt"."""
    delays = SVIX_RETRIES.delays
    assert len(delays) == 8
    assert delays[0] == 0
    assert sum(delays[1:4]) == 35 * 60 + 5
    assert sum(delays) == 27 * 3600 + 35 * 60 + 5  # "over a 28-hour period"


def test_concurrent_duplicates_run_once(
    codat_receiver: Receiver, codat_recorder: Recorder, codat_signed_delivery: Callable[..., Any]
) -> None:
    delivery = codat_signed_delivery("Push Operation Timed Out")
    replies = deliver_concurrently(codat_receiver, delivery.body, delivery.headers, copies=8)
    outcomes = sorted(reply.outcome for reply in replies)
    assert outcomes.count("processed") == 1
    assert set(outcomes) <= {"processed", "duplicate", "in_progress"}
    assert codat_recorder.keys() == [delivery.key]


def test_recorder_rejects_unknown_hooks() -> None:
    with pytest.raises(ValueError, match="no hook named"):
        Recorder().fail("on_typo")


def test_plugin_loads_from_the_installed_package(tmp_path: Path) -> None:
    (tmp_path / "test_outside.py").write_text(
        textwrap.dedent(
            """
            def test_uses_the_fixtures(codat_receiver, codat_recorder, codat_signed_delivery):
                delivery = codat_signed_delivery("Sync Completed")
                assert delivery.post(codat_receiver).outcome == "processed"
                assert codat_recorder.names()[0] == "on_expenses_sync_completed"
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--trace-config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "codat_webhooks.testing.pytest_plugin" in done.stdout
