"""Signature details the peers' suites exposed: the tolerance window, unpadded secrets, padded
header values, and which header set wins when a request carries both."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codat_webhooks import ConfigurationError, Receiver, VerificationError
from codat_webhooks.headers import Headers
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import Recorder, event_body, sign
from codat_webhooks.verify import Authenticator, decode_signing_secret, message_id

KEY = os.urandom(32)  # 32 bytes: base64 ends in one "=", so the unpadded form differs
SECRET = "whsec_" + base64.b64encode(KEY).decode()
UNPADDED = SECRET.rstrip("=")


def receiver(**kwargs: Any) -> tuple[Receiver, Recorder]:
    recorder = Recorder()
    made = Receiver(
        signing_secrets=kwargs.pop("signing_secrets", SECRET),
        store=MemoryStore(),
        plugins=[recorder],
        load_entrypoints=False,
        **kwargs,
    )
    return made, recorder


@pytest.mark.parametrize("tolerance", [float("nan"), float("inf"), -float("inf"), -1, -0.5])
def test_receiver_refuses_a_tolerance_that_disables_or_breaks_the_window(
    tolerance: float,
) -> None:
    with pytest.raises(ConfigurationError, match="finite number >= 0"):
        receiver(tolerance=tolerance)
    with pytest.raises(ConfigurationError):  # even with only an Authorization value configured
        Receiver(authorization="Bearer x", tolerance=tolerance, store=MemoryStore())


@pytest.mark.parametrize("tolerance", [None, "300", True])
def test_receiver_refuses_a_tolerance_that_is_not_a_number(tolerance: object) -> None:
    with pytest.raises(ConfigurationError, match="number of seconds"):
        receiver(tolerance=tolerance)


def test_zero_and_fractional_tolerances_still_work() -> None:
    body = event_body("company.created")
    headers = sign(body, SECRET, timestamp=1_000)
    exact = Authenticator(signing_secrets=SECRET, tolerance=0, clock=lambda: 1_000.0)
    assert exact.verify(Headers(headers), body) == "signing-secret"
    tight = Authenticator(signing_secrets=SECRET, tolerance=0.25, clock=lambda: 1_000.5)
    with pytest.raises(VerificationError, match="stale"):
        tight.verify(Headers(headers), body)


def test_unpadded_secret_is_the_same_key() -> None:
    assert UNPADDED != SECRET
    assert decode_signing_secret(UNPADDED) == decode_signing_secret(SECRET) == KEY
    assert decode_signing_secret(UNPADDED.removeprefix("whsec_")) == KEY
    body = event_body("company.created")
    made, recorder = receiver(signing_secrets=UNPADDED)
    assert made.handle("POST", sign(body, SECRET), body).status == 200
    assert recorder.names() == ["on_company_created", "on_event"]


@given(key=st.binary(min_size=1, max_size=64), prefix=st.sampled_from(["whsec_", ""]))
def test_any_key_round_trips_with_or_without_padding(key: bytes, prefix: str) -> None:
    encoded = base64.b64encode(key).decode()
    assert decode_signing_secret(prefix + encoded) == key
    assert decode_signing_secret(prefix + encoded.rstrip("=")) == key


@pytest.mark.parametrize(
    "secret",
    ["whsec_not base64!", "whsec_abcde", "whsec_ab=c", "whsec_" + "%" * 8, "whsec_===="],
)
def test_secrets_that_are_not_base64_are_still_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="base64"):
        receiver(signing_secrets=secret)


def test_whitespace_around_header_values_is_optional_whitespace() -> None:
    body = event_body("company.created")
    made, recorder = receiver()
    clean = sign(body, SECRET, msg_id="msg_padded")
    padded = {name: f" \t{value}  " for name, value in clean.items()}
    first = made.handle("POST", padded, body)
    assert (first.status, first.outcome, first.key) == (200, "processed", "msg_padded")
    again = made.handle("POST", clean, body)  # Codat's retry without the proxy's padding
    assert (again.status, again.outcome, again.key) == (200, "duplicate", "msg_padded")
    assert recorder.names().count("on_company_created") == 1


def test_webhook_headers_win_over_svix_headers() -> None:
    body = event_body("company.created")
    good_webhook = sign(body, SECRET, msg_id="msg_webhook")
    good_svix = sign(body, SECRET, msg_id="msg_svix", prefix="svix")
    forged_svix = {"svix-id": "msg_svix", "svix-timestamp": "1", "svix-signature": "v1,AAAA"}
    forged_webhook = {
        "webhook-id": "msg_webhook",
        "webhook-timestamp": good_svix["svix-timestamp"],
        "webhook-signature": "v1,AAAA",
    }
    made, _ = receiver()
    # Both sets present: the webhook-* set is checked as a whole and names the key...
    accepted = made.handle("POST", good_webhook | forged_svix, body)
    assert (accepted.status, accepted.key) == (200, "msg_webhook")
    # ...so a valid svix-* set cannot rescue a bad webhook-* signature (no per-header mixing).
    refused = made.handle("POST", forged_webhook | good_svix, body)
    assert (refused.status, refused.outcome) == (401, "unauthorized")
    # With svix-* alone, svix-* is used.
    alone = made.handle("POST", good_svix, body)
    assert (alone.status, alone.key) == (200, "msg_svix")


def test_message_id_follows_the_set_that_is_verified() -> None:
    both = {"webhook-id": " a ", "webhook-signature": "v1,x", "svix-id": "b", "svix-signature": "x"}
    assert message_id(Headers(both)) == "a"
    assert message_id(Headers({"webhook-id": "a", "svix-id": "b", "svix-signature": "x"})) == "b"
    assert message_id(Headers({"svix-id": "  b"})) == "b"
    assert message_id(Headers({"webhook-id": "   "})) is None
    assert message_id(Headers({"webhook-signature": "x", "svix-id": "b"})) == "b"
