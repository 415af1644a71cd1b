"""A UTF-8 log file keeps every record of the library, even one whose error text carries a
lone surrogate (JSON's ``"\\ud800"`` escape decodes to one, and a hook that quotes a payload
value in its exception passes it on). Without care, the file handler drops such a record with
"--- Logging error ---" on stderr: the very line that says a hook failed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body
from tests.observability.test_logs import library_records_to
from tests.queues.test_queued_receiver import ListQueue

LONE = "\ud800"


class QuotesThePayload:
    """Raises with a payload value in its message, as application code often does."""

    @hookimpl
    def on_alert(self, alert: Any) -> None:
        raise ValueError(f"cannot handle: {alert.message}")


def with_message(text: str) -> bytes:
    body = json.loads(sample_body("Data sync completed"))
    body["Message"] = text
    return json.dumps(body).encode()  # ensure_ascii: the surrogate travels as "\ud800"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "codat.log"
    handler = logging.FileHandler(path, encoding="utf-8")  # errors="strict", the default
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    with closing(handler), library_records_to(handler, logging.INFO):
        yield path


def test_a_hook_error_with_a_lone_surrogate_reaches_a_utf8_log_file(
    log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = Receiver(
        insecure=True, store=MemoryStore(), plugins=[QuotesThePayload()], load_entrypoints=False
    )
    body = with_message(f"Acme {LONE} Ltd")
    assert b"\\ud800" in body
    assert receiver.handle("POST", {}, body).status == 503
    written = log_file.read_text(encoding="utf-8")
    assert "ERROR codat_webhooks.receiver hook failed for" in written
    assert "ValueError: cannot handle: Acme \\ud800 Ltd" in written  # escaped, not dropped
    assert "Logging error" not in capsys.readouterr().err


def test_a_queued_retry_line_with_a_lone_surrogate_is_written_escaped(
    log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = ListQueue()
    receiver = Receiver(
        insecure=True,
        store=MemoryStore(),
        plugins=[QuotesThePayload()],
        load_entrypoints=False,
        queue=queue,
    )
    assert receiver.handle("POST", {}, with_message(LONE)).status == 202
    assert receiver.process_queued(queue.keys[0]).outcome == "failed"
    written = log_file.read_text(encoding="utf-8")
    assert "WARNING codat_webhooks.queue hook failed for" in written
    assert "will retry: cannot handle: \\ud800" in written
    assert "Logging error" not in capsys.readouterr().err


class Custom(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return "CUSTOM TRACEBACK"


def test_records_that_encode_are_left_to_the_handlers_own_formatter(tmp_path: Path) -> None:
    """Only a record UTF-8 cannot encode is rewritten: a formatter's own rendering of
    tracebacks still runs for every other one."""
    path = tmp_path / "codat.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(Custom("%(message)s"))
    receiver = Receiver(
        insecure=True, store=MemoryStore(), plugins=[QuotesThePayload()], load_entrypoints=False
    )
    with closing(handler), library_records_to(handler, logging.WARNING):
        receiver.handle("POST", {}, with_message("Acme Ltd"))
    assert "CUSTOM TRACEBACK" in path.read_text(encoding="utf-8")
