"""Structured logs: every record of the library carries the same fields, on loggers named by
layer, and no credential ever reaches a log line, whatever the deliveries carry."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.observe import LOG_FIELDS
from codat_webhooks.queues import LocalQueue
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body, sign

AUTHORIZATION = "Bearer log-test-authorization-value"
SECRET_KEY = b"log-test-signing-key-32-bytes!!!"
SECRET = "whsec_" + base64.b64encode(SECRET_KEY).decode()
WRONG = "Bearer a-wrong-but-secret-looking-value"


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def library_records_to(handler: logging.Handler, level: int) -> Iterator[None]:
    """Send the library's records of ``level`` and above to ``handler`` for the block only."""
    logger = logging.getLogger("codat_webhooks")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    with library_records_to(handler, logging.DEBUG):
        yield handler


class Flaky:
    @hookimpl
    def on_expenses_sync_failed(self) -> None:
        raise RuntimeError("downstream refused")


def everything_a_record_shows(record: logging.LogRecord) -> str:
    shown = dict(record.__dict__)
    if record.exc_info:
        shown["exc_text"] = logging.Formatter().formatException(record.exc_info)
    shown["message"] = record.getMessage()
    return json.dumps(shown, default=repr)


def test_no_secret_in_any_record_and_every_record_has_the_fields(captured: Capture) -> None:
    receiver = Receiver(
        authorization=AUTHORIZATION,
        signing_secrets=SECRET,
        store=MemoryStore(),
        plugins=[Flaky()],
        load_entrypoints=False,
    )
    body = sample_body("Dataset data changed")
    signed = sign(body, SECRET)
    sent = [
        ({"Authorization": AUTHORIZATION}, body),
        ({"Authorization": AUTHORIZATION}, body),  # duplicate
        ({"Authorization": WRONG}, sample_body("Dataset data changed")),
        (signed, sample_body("Data sync completed")),  # signature of another body
        (signed, body),  # right signature, key already processed under another id
        ({**sign(body, "whsec_" + base64.b64encode(b"x" * 32).decode())}, body),
        ({"Authorization": AUTHORIZATION}, sample_body("Sync Failed")),
        ({"Authorization": AUTHORIZATION}, b"not json"),
        ({"Authorization": AUTHORIZATION}, b'{"no": "rule type"}'),
    ]
    statuses = [receiver.handle("POST", headers, raw).status for headers, raw in sent]
    assert statuses == [200, 200, 401, 401, 200, 401, 503, 400, 422]
    receiver.handle("GET", {"Authorization": AUTHORIZATION}, b"")
    receiver.reject_too_large("POST", {"Authorization": AUTHORIZATION}, 10**9)
    receiver.close()

    records = captured.records
    assert {"codat_webhooks.receiver"} <= {r.name for r in records}
    forbidden = [
        AUTHORIZATION,
        "log-test-authorization-value",
        WRONG,
        "a-wrong-but-secret-looking-value",
        SECRET,
        SECRET.removeprefix("whsec_"),
        signed["webhook-signature"],
        signed["webhook-signature"].split(",", 1)[1],
    ]
    for record in records:
        shown = everything_a_record_shows(record)
        for secret in forbidden:
            assert secret not in shown, (secret, shown)
        for field in LOG_FIELDS:
            assert hasattr(record, field), (field, record.getMessage())
    outcomes = [getattr(r, "outcome", None) for r in records if r.name == "codat_webhooks.receiver"]
    for expected in ("processed", "duplicate", "unauthorized", "failed", "invalid", "too_large"):
        assert expected in outcomes


def test_a_worker_run_is_logged_on_the_queue_logger(captured: Capture) -> None:
    queue = LocalQueue(workers=1)
    receiver = Receiver(
        authorization=AUTHORIZATION,
        store=MemoryStore(),
        load_entrypoints=False,
        queue=queue,
    )
    body = sample_body("Dataset data changed")
    assert receiver.handle("POST", {"Authorization": AUTHORIZATION}, body).status == 202
    key = json.loads(receiver.handle("POST", {"Authorization": AUTHORIZATION}, body).body)["key"]
    worker_records = _wait_for_record(captured, "codat_webhooks.queue", "processed")
    receiver.close()
    (record,) = worker_records
    assert (record.key, record.type, record.status) == (key, "Dataset data changed", None)  # type: ignore[attr-defined]
    assert record.levelno == logging.INFO


def _wait_for_record(captured: Capture, logger: str, outcome: str) -> list[logging.LogRecord]:
    deadline = time.monotonic() + 30
    while True:
        found = [
            r
            for r in captured.records
            if r.name == logger and getattr(r, "outcome", None) == outcome
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)
