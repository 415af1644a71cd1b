"""Signature verification against the official Svix / Standard Webhooks libraries, rejections,
rotation, the combined Authorization + signature policy, and a property test over garbage."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import standardwebhooks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from svix.webhooks import Webhook as SvixWebhook

from codat_webhooks import ConfigurationError, Receiver, VerificationError, hookimpl
from codat_webhooks.headers import Headers
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import event_body, sample_body, sign
from codat_webhooks.verify import Authenticator, SignatureCheck, decode_signing_secret


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


SECRET = new_secret()
OTHER_SECRET = new_secret()


class Rejections:
    """Records what reaches ``on_rejected`` and whether any processing hook ran."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []
        self.processed: list[object] = []

    @hookimpl
    def on_rejected(self, error: Exception) -> None:
        self.errors.append(error)

    @hookimpl
    def on_alert(self, alert: object) -> None:
        self.processed.append(alert)

    @hookimpl
    def on_event(self, event: object) -> None:
        self.processed.append(event)


MakeReceiver = Callable[..., tuple[Receiver, MemoryStore, Rejections]]


@pytest.fixture
def make_receiver(
    codat_make_receiver: Callable[..., Receiver], codat_store: MemoryStore
) -> MakeReceiver:
    """A receiver on the shared fixtures checking ``SECRET``, its store and its rejections."""

    def make(**kwargs: Any) -> tuple[Receiver, MemoryStore, Rejections]:
        recorder = Rejections()
        kwargs.setdefault("signing_secrets", SECRET)
        kwargs.setdefault("authorization", None)
        return codat_make_receiver([recorder], **kwargs), codat_store, recorder

    return make


def svix_headers(body: bytes, secret: str, msg_id: str, when: datetime) -> dict[str, str]:
    signature = SvixWebhook(secret).sign(msg_id, when, body.decode())
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(when.timestamp())),
        "svix-signature": signature,
    }


# --- Interoperability with the official libraries ------------------------------------------


def test_signatures_made_by_svix_verify(make_receiver: MakeReceiver) -> None:
    receiver, store, recorder = make_receiver()
    body = event_body("connection.connected")
    headers = svix_headers(body, SECRET, "msg_svix_1", datetime.now(timezone.utc))
    reply = receiver.handle("POST", headers, body)
    assert (reply.status, reply.outcome, reply.key) == (200, "processed", "msg_svix_1")
    assert len(recorder.processed) == 1
    assert store.get("msg_svix_1") is not None


def test_signatures_made_by_standardwebhooks_verify(make_receiver: MakeReceiver) -> None:
    receiver, _, recorder = make_receiver()
    body = sample_body("DataConnectionStatusChanged")
    now = datetime.now(timezone.utc)
    signature = standardwebhooks.Webhook(SECRET).sign("msg_std_1", now, body.decode())
    headers = {
        "webhook-id": "msg_std_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    reply = receiver.handle("POST", headers, body)
    assert (reply.status, reply.outcome) == (200, "processed")
    assert len(recorder.processed) == 1


@pytest.mark.parametrize("prefix", ["webhook", "svix"])
def test_our_sign_verifies_with_svix_own_verify(prefix: str) -> None:
    body = event_body("read.completed")
    headers = sign(body, SECRET, prefix=prefix)
    assert set(headers) == {f"{prefix}-id", f"{prefix}-timestamp", f"{prefix}-signature"}
    SvixWebhook(SECRET).verify(body, headers)  # raises WebhookVerificationError on mismatch
    standardwebhooks.Webhook(SECRET).verify(
        body,
        {
            "webhook-id": headers[f"{prefix}-id"],
            "webhook-timestamp": headers[f"{prefix}-timestamp"],
            "webhook-signature": headers[f"{prefix}-signature"],
        },
    )


def test_sign_uses_given_id_and_timestamp() -> None:
    headers = sign(b"{}", SECRET, msg_id="msg_fixed", timestamp=1_700_000_000.9)
    assert headers["webhook-id"] == "msg_fixed"
    assert headers["webhook-timestamp"] == "1700000000"
    expected = SvixWebhook(SECRET).sign(
        "msg_fixed", datetime.fromtimestamp(1_700_000_000, timezone.utc), "{}"
    )
    assert headers["webhook-signature"] == expected


def test_raw_bytes_secret_and_unprefixed_base64_secret(make_receiver: MakeReceiver) -> None:
    raw = os.urandom(32)
    receiver, _, _ = make_receiver(signing_secrets=raw)
    body = event_body("company.created")
    now = datetime.now(timezone.utc)
    signature = standardwebhooks.Webhook(raw).sign("msg_raw", now, body.decode())
    headers = {
        "webhook-id": "msg_raw",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert receiver.handle("POST", headers, body).status == 200

    unprefixed = SECRET.removeprefix("whsec_")
    assert decode_signing_secret(unprefixed) == decode_signing_secret(SECRET)
    receiver, _, _ = make_receiver(signing_secrets=unprefixed)
    assert receiver.handle("POST", sign(body, SECRET), body).status == 200


@pytest.mark.parametrize("key_size", [1, 24, 32, 63, 64, 65, 200])
def test_keys_shorter_and_longer_than_a_hash_block_verify_what_svix_signs(key_size: int) -> None:
    """HMAC pads a key up to SHA-256's 64-byte block and hashes a longer one first: the check
    keeps both keyed states, so each side of that boundary is checked against Svix's own
    signature, and a one-bit change of the key must fail."""
    key = os.urandom(key_size)
    secret = "whsec_" + base64.b64encode(key).decode()
    body = event_body("company.created")
    now = datetime.now(timezone.utc)
    headers = Headers(
        {
            "webhook-id": "msg_block",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": SvixWebhook(secret).sign("msg_block", now, body.decode()),
        }
    )
    assert SignatureCheck({"s": secret})(headers, body) == "s"
    flipped = bytes([key[0] ^ 1]) + key[1:]
    with pytest.raises(VerificationError, match="no signature matches"):
        SignatureCheck({"s": flipped})(headers, body)


def test_any_of_several_v1_signatures_matches_and_other_versions_are_ignored(
    make_receiver: MakeReceiver,
) -> None:
    receiver, _, _ = make_receiver()
    body = event_body("company.deleted")
    good = sign(body, SECRET)
    bad = sign(
        body, OTHER_SECRET, msg_id=good["webhook-id"], timestamp=int(good["webhook-timestamp"])
    )
    good_sig = good["webhook-signature"].removeprefix("v1,")
    headers = dict(good)
    headers["webhook-signature"] = f"v2,{good_sig} {bad['webhook-signature']}  v1,{good_sig}"
    assert receiver.handle("POST", headers, body).status == 200


def test_header_names_are_case_insensitive_and_pairs_are_accepted(
    make_receiver: MakeReceiver,
) -> None:
    receiver, _, _ = make_receiver()
    body = event_body("connection.created")
    pairs = [(name.upper(), value) for name, value in sign(body, SECRET).items()]
    assert receiver.handle("POST", pairs, body).status == 200


# --- Rejections: 401, nothing stored, a precise reason for on_rejected only -----------------


def _tamper(case: str, body: bytes) -> tuple[dict[str, str], bytes]:
    now = int(time.time())
    if case == "tampered body":
        headers = sign(body, SECRET)
        return headers, body.replace(b"Toft", b"Tuft")
    if case == "wrong secret":
        return sign(body, OTHER_SECRET), body
    if case == "stale timestamp":
        return sign(body, SECRET, timestamp=now - 3600), body
    if case == "future timestamp":
        return sign(body, SECRET, timestamp=now + 3600), body
    headers = sign(body, SECRET)
    if case == "malformed timestamp":
        headers["webhook-timestamp"] = "12:00"
    elif case == "unicode digits timestamp":
        headers["webhook-timestamp"] = "\u0661\u0667" + "\u0660" * 8  # Arabic-Indic digits
    elif case == "no v1 signature":
        headers["webhook-signature"] = "v2,abc"
    elif case == "garbage signature":
        headers["webhook-signature"] = "v1,!!!not base64!!!"
    elif case == "missing id":
        del headers["webhook-id"]
    elif case == "missing timestamp":
        del headers["webhook-timestamp"]
    elif case == "missing signature":
        del headers["webhook-signature"]
    elif case == "no headers":
        headers = {}
    return headers, body


REJECTIONS = {
    "tampered body": "no signature matches",
    "wrong secret": "no signature matches",
    "stale timestamp": "stale",
    "future timestamp": "in the future",
    "malformed timestamp": "malformed signature timestamp",
    "unicode digits timestamp": "malformed signature timestamp",
    "no v1 signature": "no 'v1,' signature",
    "garbage signature": "no signature matches",
    "missing id": "missing webhook-id",
    "missing timestamp": "missing webhook-timestamp",
    "missing signature": "missing webhook-signature",
    "no headers": "missing webhook-signature",
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_bad_signatures_answer_401_and_store_nothing(
    case: str, make_receiver: MakeReceiver
) -> None:
    receiver, store, recorder = make_receiver()
    headers, body = _tamper(case, event_body("connection.connected", company_id=None))
    reply = receiver.handle("POST", headers, body)

    assert (reply.status, reply.outcome) == (401, "unauthorized")
    assert json.loads(reply.body)["detail"] == "authentication failed"  # nothing for a prober
    assert store.find() == []
    assert recorder.processed == []
    [error] = recorder.errors
    assert isinstance(error, VerificationError)
    assert REJECTIONS[case] in error.reason


def test_rejection_detail_is_identical_whatever_failed(make_receiver: MakeReceiver) -> None:
    bodies = set()
    for case in REJECTIONS:
        receiver, _, _ = make_receiver()
        headers, body = _tamper(case, event_body("company.created"))
        reply = json.loads(receiver.handle("POST", headers, body).body)
        bodies.add((reply["outcome"], reply["detail"]))
    assert bodies == {("unauthorized", "authentication failed")}


def test_tolerance_is_configurable_and_two_sided() -> None:
    now = 1_800_000_000.0
    check = SignatureCheck({"s": SECRET}, tolerance=30, clock=lambda: now)
    body = b"{}"
    for offset, accepted in [(-30, True), (30, True), (-31, False), (31, False), (0, True)]:
        headers = Headers(sign(body, SECRET, timestamp=now + offset))
        if accepted:
            assert check(headers, body) == "s"
        else:
            with pytest.raises(VerificationError):
                check(headers, body)


def test_receiver_tolerance_argument_reaches_the_check(make_receiver: MakeReceiver) -> None:
    body = event_body("company.created")
    an_hour_ago = time.time() - 3600
    strict, _, _ = make_receiver()
    lenient, _, _ = make_receiver(tolerance=7200)
    assert strict.handle("POST", sign(body, SECRET, timestamp=an_hour_ago), body).status == 401
    assert lenient.handle("POST", sign(body, SECRET, timestamp=an_hour_ago), body).status == 200


# --- Rotation -------------------------------------------------------------------------------


class VerifiedBy:
    def __init__(self) -> None:
        self.names: list[str | None] = []

    @hookimpl
    def on_event(self, delivery: Any) -> None:
        self.names.append(delivery.verified_by)


@pytest.mark.parametrize(
    ("secrets", "names"),
    [
        ({"2025-old": SECRET, "2026-new": OTHER_SECRET}, ["2025-old", "2026-new"]),
        ([SECRET, OTHER_SECRET], ["signing-secret-1", "signing-secret-2"]),
    ],
)
def test_rotation_accepts_either_secret_and_names_the_one_that_matched(
    secrets: Any, names: list[str]
) -> None:
    recorder = VerifiedBy()
    receiver = Receiver(
        signing_secrets=secrets, store=MemoryStore(), plugins=[recorder], load_entrypoints=False
    )
    for secret in (SECRET, OTHER_SECRET):
        body = event_body("connection.connected")
        assert receiver.handle("POST", sign(body, secret), body).status == 200
    assert recorder.names == names
    body = event_body("connection.connected")
    assert receiver.handle("POST", sign(body, new_secret()), body).status == 401


def test_single_secret_is_named_signing_secret() -> None:
    assert Authenticator(signing_secrets=SECRET).verify(Headers(sign(b"x", SECRET)), b"x") == (
        "signing-secret"
    )


# --- Authorization and signatures together ---------------------------------------------------


@pytest.mark.parametrize(
    ("signed", "authorization", "expected"),
    [
        ("valid", None, "signing-secret"),
        ("valid", "Bearer wrong", "signing-secret"),
        ("invalid", "Bearer s3cret", None),  # a signature header must be valid
        ("none", "Bearer s3cret", "authorization"),
        ("none", "Bearer wrong", None),
        ("none", None, None),
    ],
)
def test_policy_when_both_are_configured(
    signed: str, authorization: str | None, expected: str | None
) -> None:
    recorder = VerifiedBy()
    receiver = Receiver(
        authorization="Bearer s3cret",
        signing_secrets=SECRET,
        store=MemoryStore(),
        plugins=[recorder],
        load_entrypoints=False,
    )
    body = event_body("company.created")
    headers: dict[str, str] = {}
    if signed != "none":
        headers |= sign(body, SECRET if signed == "valid" else OTHER_SECRET)
    if authorization is not None:
        headers["Authorization"] = authorization
    reply = receiver.handle("POST", headers, body)
    if expected is None:
        assert (reply.status, recorder.names) == (401, [])
    else:
        assert (reply.status, recorder.names) == (200, [expected])


def test_only_secrets_configured_rejects_an_authorization_header_alone(
    make_receiver: MakeReceiver,
) -> None:
    receiver, store, recorder = make_receiver()
    body = event_body("company.created")
    reply = receiver.handle("POST", {"Authorization": "Bearer anything"}, body)
    assert reply.status == 401
    assert "missing webhook-signature" in recorder.errors[0].args[0]
    assert store.find() == []


@pytest.mark.parametrize(
    "secret",
    ["whsec_not*base64", "whsec_", b""],
    ids=["not-base64", "empty-after-prefix", "empty-bytes"],
)
def test_unusable_secrets_fail_at_construction(secret: str | bytes) -> None:
    with pytest.raises(ConfigurationError):
        Receiver(signing_secrets=secret, store=MemoryStore(), load_entrypoints=False)


def test_negative_tolerance_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Receiver(signing_secrets=SECRET, tolerance=-1, store=MemoryStore(), load_entrypoints=False)


# --- Idempotency key for signed deliveries --------------------------------------------------


@pytest.mark.parametrize("prefix", ["webhook", "svix"])
def test_message_id_header_is_the_key_across_retries(
    prefix: str, make_receiver: MakeReceiver
) -> None:
    receiver, store, recorder = make_receiver()
    body = event_body("read.completed")
    first = receiver.handle("POST", sign(body, SECRET, msg_id="msg_retry", prefix=prefix), body)
    # Svix re-signs each attempt with a new timestamp but keeps the message id.
    retry = sign(body, SECRET, msg_id="msg_retry", timestamp=time.time() + 1, prefix=prefix)
    second = receiver.handle("POST", retry, body)
    assert (first.outcome, second.outcome) == ("processed", "duplicate")
    assert first.key == second.key == "msg_retry"
    assert len(recorder.processed) == 1
    assert [record.key for record in store.find()] == ["msg_retry"]


def test_header_key_wins_over_the_body_id(make_receiver: MakeReceiver) -> None:
    receiver, _, _ = make_receiver()
    body = event_body("company.created", event_id="7d3f4a37-4c7e-4a6e-9f7e-0b6a3c7d2e11")
    reply = receiver.handle("POST", sign(body, SECRET, msg_id="msg_header"), body)
    assert reply.key == "msg_header"


# --- Property test: garbage never crashes and never passes -----------------------------------

header_names = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-id",
        "svix-timestamp",
        "svix-signature",
        "authorization",
        "content-type",
    ]
)
header_values = st.one_of(
    st.text(max_size=60),
    st.integers(min_value=-(10**15), max_value=10**15).map(str),
    st.just(str(int(time.time()))),
    st.builds(lambda sig: "v1," + sig, st.text(max_size=50)),
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.just(event_body("connection.connected")),
    st.builds(
        lambda value: json.dumps(value).encode(),
        st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=5),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=st.dictionaries(header_names, header_values, max_size=8), body=bodies)
def test_random_headers_and_bodies_never_5xx_and_never_pass(
    headers: dict[str, str], body: bytes
) -> None:
    receiver = Receiver(signing_secrets=SECRET, store=MemoryStore(), load_entrypoints=False)
    reply = receiver.handle("POST", headers, body)
    assert reply.status == 401
    assert reply.outcome == "unauthorized"
    assert receiver.store.find() == []


@settings(max_examples=100, deadline=None)
@given(body=bodies, msg_id=st.text(min_size=1, max_size=40).filter(str.strip))
def test_correctly_signed_garbage_is_never_5xx(body: bytes, msg_id: str) -> None:
    receiver = Receiver(signing_secrets=SECRET, store=MemoryStore(), load_entrypoints=False)
    reply = receiver.handle("POST", sign(body, SECRET, msg_id=msg_id), body)
    assert reply.status < 500
    if reply.status == 200:
        assert reply.key == msg_id
