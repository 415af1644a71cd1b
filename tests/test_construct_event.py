"""``construct_event``: the receiver's verification and parsing, without store or hooks."""

from __future__ import annotations

import json
import time

import pytest

from codat_webhooks import (
    Alert,
    ConfigurationError,
    Event,
    PayloadError,
    Receiver,
    VerificationError,
    construct_event,
)
from codat_webhooks.construct import delivery_key
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import event_body, sample_body, sign

AUTH = "Bearer construct"
SECRET = "whsec_" + "Y29uc3RydWN0LWV2ZW50LXNlY3JldC1rZXk="


def test_a_legacy_alert_comes_back_typed_as_a_hook_would_see_it() -> None:
    body = sample_body("Data Connection Status Changed")
    alert = construct_event(body, {"authorization": AUTH}, authorization=AUTH)
    assert isinstance(alert, Alert)
    assert alert.rule_type == "DataConnectionStatusChanged"
    assert alert.data.new_status
    assert str(alert.alert_id) == json.loads(body)["AlertId"]


def test_a_signed_event_comes_back_typed_and_headers_may_be_pairs() -> None:
    body = event_body("company.created")
    headers = list(sign(body, SECRET).items())
    event = construct_event(body, headers, signing_secrets=[SECRET])
    assert isinstance(event, Event)
    assert event.event_type == "company.created"


def test_same_verdicts_as_the_receiver() -> None:
    body = sample_body("Sync Failed")
    stale = sign(body, SECRET, timestamp=time.time() - 301)
    cases = [
        ({"Authorization": "Bearer wrong"}, {}),
        (sign(body, "whsec_" + "b3RoZXItc2VjcmV0LW9mLWxlbmd0aA=="), {}),
        (stale, {}),
        ({**sign(body, SECRET), "Authorization": AUTH}, {"tamper": True}),
    ]
    receiver = Receiver(
        authorization=AUTH, signing_secrets=SECRET, store=MemoryStore(), load_entrypoints=False
    )
    for headers, how in cases:
        sent = body + b" " if how else body
        with pytest.raises(VerificationError):
            construct_event(sent, headers, authorization=AUTH, signing_secrets=SECRET)
        assert receiver.handle("POST", headers, sent).status == 401
    assert construct_event(body, stale, signing_secrets=SECRET, tolerance=400) is not None


def test_payload_errors_carry_their_status() -> None:
    headers = {"Authorization": AUTH}
    with pytest.raises(PayloadError) as not_json:
        construct_event(b"[1, 2]", headers, authorization=AUTH)
    assert not_json.value.status_hint == 400
    with pytest.raises(PayloadError) as not_an_alert:
        construct_event(b'{"hello": "world"}', headers, authorization=AUTH)
    assert not_an_alert.value.status_hint == 422


def test_no_credentials_and_decoded_bodies_are_refused() -> None:
    body = sample_body("Sync Failed")
    with pytest.raises(ConfigurationError):
        construct_event(body, {})
    with pytest.raises(TypeError, match="raw bytes"):
        construct_event(body.decode(), {"Authorization": AUTH}, authorization=AUTH)  # type: ignore[arg-type]


def test_no_store_means_no_deduplication_but_the_key_is_there_to_use() -> None:
    body = sample_body("Sync Completed")
    headers = {"Authorization": AUTH}
    first = construct_event(body, headers, authorization=AUTH)
    assert construct_event(body, headers, authorization=AUTH) == first  # a retry parses again
    assert delivery_key(body, headers) == json.loads(body)["AlertId"]
    signed = sign(body, SECRET)
    assert delivery_key(body, signed) == signed["webhook-id"]
