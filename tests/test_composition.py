"""The receiver's collaborators (ready-made or built for it), its one clock, and its outcomes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from codat_webhooks import (
    CodatWebhookError,
    ConfigurationError,
    Delivery,
    Receiver,
    Reply,
    hookimpl,
)
from codat_webhooks import errors as errors_module
from codat_webhooks.headers import Headers
from codat_webhooks.hooks.dispatch import Dispatcher
from codat_webhooks.hooks.manager import make_plugin_manager
from codat_webhooks.outcomes import Outcome
from codat_webhooks.stores import MemoryStore, State
from codat_webhooks.stores.base import Entry
from codat_webhooks.testing import FakeClock, Recorder, sample_body
from codat_webhooks.testing.pytest_plugin import SignedDelivery
from codat_webhooks.verify import Authenticator

AUTH = {"Authorization": "Bearer s3cret"}


def test_ready_made_collaborators_are_used_as_given() -> None:
    recorder = Recorder()
    authenticator = Authenticator("Bearer s3cret")
    dispatcher = Dispatcher(make_plugin_manager([recorder], load_entrypoints=False))
    store = MemoryStore()
    receiver = Receiver(store=store, authenticator=authenticator, dispatcher=dispatcher)
    assert receiver.authenticator is authenticator
    assert receiver.dispatcher is dispatcher
    assert receiver.plugin_manager is dispatcher.manager
    assert receiver.handle("POST", AUTH, sample_body("Sync Completed")).outcome == "processed"
    assert receiver.handle("POST", {}, sample_body("Sync Completed")).status == 401
    assert recorder.names() == ["on_expenses_sync_completed", "on_alert", "on_rejected"]


def test_an_authenticator_and_credentials_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        Receiver("Bearer a", store=MemoryStore(), authenticator=Authenticator("Bearer b"))


def test_one_clock_stamps_deliveries_and_expires_the_leases_of_dead_workers(
    codat_make_receiver: Callable[..., Receiver],
    codat_clock: FakeClock,
    codat_store: MemoryStore,
    codat_recorder: Recorder,
) -> None:
    receiver = codat_make_receiver(authorization="Bearer s3cret", signing_secrets=None, lease=10)
    body = sample_body("Data sync completed")
    key = json.loads(body)["AlertId"]
    # A worker claimed the key and died: its lease is alive until the shared clock passes it.
    fingerprint = hashlib.sha256(body).hexdigest()
    assert codat_store.claim(Entry(key, fingerprint), lease=10).claimed
    assert receiver.handle("POST", AUTH, body).outcome == "in_progress"
    codat_clock.advance(11)
    assert receiver.handle("POST", AUTH, body).outcome == "processed"
    [call] = codat_recorder.calls_to("on_alert")
    assert call.delivery.received_at == datetime.fromtimestamp(codat_clock.now, timezone.utc)
    record = codat_store.get(key)
    assert record is not None
    assert (record.state, record.attempts, record.last_seen) == (State.DONE, 2, codat_clock.now)


def test_signature_age_is_judged_by_the_receivers_clock(
    codat_make_receiver: Callable[..., Receiver],
    codat_clock: FakeClock,
    codat_signed_delivery: Callable[..., SignedDelivery],
) -> None:
    receiver = codat_make_receiver(tolerance=300)
    delivery = codat_signed_delivery("Sync Completed", timestamp=codat_clock.now)
    codat_clock.advance(301)
    assert delivery.post(receiver).outcome == "unauthorized"


# --- outcomes: one enum, and every error's outcome can be answered ----------------------------


def test_every_outcome_builds_a_reply() -> None:
    for outcome in Outcome:
        reply = Reply.build(500, outcome, "k", "detail")
        assert json.loads(reply.body) == {"outcome": outcome.value, "key": "k", "detail": "detail"}
        assert reply.outcome == outcome.value


def test_every_error_class_has_an_outcome_of_the_enum() -> None:
    classes = [getattr(errors_module, name) for name in errors_module.__all__]
    assert all(isinstance(cls.outcome, Outcome) for cls in classes)


class _Raises(Authenticator):
    """An authenticator that fails in a way no sender can cause."""

    def __init__(self, error: CodatWebhookError) -> None:
        super().__init__(insecure=True)
        self.error = error

    def verify(self, headers: Headers, body: bytes) -> str | None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (ConfigurationError("the secret store is locked"), "misconfigured"),
        (CodatWebhookError("something else broke"), "error"),
    ],
)
def test_errors_without_a_row_in_the_table_still_get_a_reply(
    error: CodatWebhookError, outcome: str
) -> None:
    recorder = Recorder()
    receiver = Receiver(
        store=MemoryStore(),
        authenticator=_Raises(error),
        plugins=[recorder],
        load_entrypoints=False,
    )
    reply = receiver.handle("POST", {}, sample_body("Sync Completed"))
    assert (reply.status, reply.outcome) == (503, outcome)
    assert dict(reply.headers)["Retry-After"] == "30"
    assert json.loads(reply.body)["detail"] == error.reason
    [call] = recorder.calls_to("on_rejected")
    assert call.error is error


# --- on_handler_error: the failing payload under a neutral name, and as ``alert`` -------------


def test_on_handler_error_receives_events_as_payload_and_as_alert(
    codat_make_receiver: Callable[..., Receiver],
    codat_signed_delivery: Callable[..., SignedDelivery],
    codat_recorder: Recorder,
) -> None:
    seen: list[object] = []

    class Failing:
        @hookimpl
        def on_event(self) -> None:
            raise RuntimeError("boom")

    class Neutral:
        @hookimpl
        def on_handler_error(self, payload: object, delivery: Delivery) -> None:
            seen.append(payload)

    receiver = codat_make_receiver([Neutral(), Failing()])
    reply = codat_signed_delivery("connection.connected").post(receiver)
    assert reply.outcome == "failed"
    [call] = codat_recorder.calls_to("on_handler_error")
    assert call.alert is call.payload is seen[0]
    assert type(seen[0]).__name__.endswith("Event")
