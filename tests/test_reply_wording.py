"""What the receiver says about a delivery must be true (issue 26, items 7 and 9)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import pytest

from codat_webhooks import Receiver
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import Recorder, sample_body
from codat_webhooks.testing.samples import event_sample
from tests.queues.test_queued_receiver import ListQueue

AUTH = {"Authorization": "Bearer s3cret"}


def test_an_unsigned_event_without_authorization_names_both_proofs(
    codat_make_receiver: Callable[..., Receiver],
    codat_recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = codat_make_receiver()  # both an Authorization value and a signing secret
    body = json.dumps(event_sample("connection.created")).encode()
    with caplog.at_level(logging.WARNING, "codat_webhooks"):
        reply = receiver.handle("POST", {"Content-Type": "application/json"}, body)
    assert (reply.status, reply.outcome) == (401, "unauthorized")
    reason = str(codat_recorder.calls_to("on_rejected")[0].error)
    for named in ("webhook-signature", "Authorization header"):
        assert named in reason
        assert named in caplog.text
    assert "missing Authorization header" not in caplog.text


def test_a_wrong_authorization_is_still_said_precisely(
    codat_make_receiver: Callable[..., Receiver], codat_recorder: Recorder
) -> None:
    receiver = codat_make_receiver()
    body = json.dumps(event_sample("connection.created")).encode()
    reply = receiver.handle("POST", {"Authorization": "Bearer wrong"}, body)
    assert reply.status == 401
    reason = str(codat_recorder.calls_to("on_rejected")[0].error)
    assert reason == "Authorization header matches no configured value"


def test_with_only_authorization_configured_the_message_is_unchanged(
    codat_make_receiver: Callable[..., Receiver], codat_recorder: Recorder
) -> None:
    receiver = codat_make_receiver(signing_secrets=None)
    body = json.dumps(event_sample("connection.created")).encode()
    assert receiver.handle("POST", {}, body).status == 401
    assert str(codat_recorder.calls_to("on_rejected")[0].error) == "missing Authorization header"


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_copies_of_a_queued_key_say_where_the_first_copy_is(
    codat_make_receiver: Callable[..., Receiver], codat_store: MemoryStore, driver: str
) -> None:
    receiver = codat_make_receiver(
        authorization=AUTH["Authorization"], signing_secrets=None, queue=ListQueue()
    )
    body = sample_body("Sync Failed")
    key = json.loads(body)["AlertId"]

    def copy() -> tuple[int, str, str]:
        if driver == "sync":
            reply = receiver.handle("POST", AUTH, body)
        else:
            reply = asyncio.run(receiver.handle_async("POST", AUTH, body))
        return reply.status, str(reply.outcome), json.loads(reply.body)["detail"]

    assert copy()[:2] == (202, "queued")
    assert copy() == (200, "duplicate", "already received; queued")
    assert codat_store.take(key, lease=60).claimed
    assert copy() == (200, "duplicate", "already received; being processed")
    assert receiver.process_queued(key).outcome == "in_progress"  # another worker holds it
    codat_store.complete(key, codat_store.get(key).token)  # type: ignore[union-attr]
    assert copy() == (200, "duplicate", "already processed")
