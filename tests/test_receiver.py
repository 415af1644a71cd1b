"""The receiver's status policy, one test (at least) per row of the contract's table."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from codat_webhooks import (
    ConfigurationError,
    Delivery,
    Receiver,
    RuleType,
    StoreError,
    hookimpl,
)
from codat_webhooks.stores import MemoryStore, State
from codat_webhooks.stores.base import Entry, conflict_key
from codat_webhooks.testing import Recorder, legacy_sample, sample_body

AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def recorder(codat_recorder: Recorder) -> Recorder:
    """The pytest plugin's recorder: every hook of every spec module, recorded in order."""
    return codat_recorder


@pytest.fixture
def store(codat_store: MemoryStore) -> MemoryStore:
    return codat_store


@pytest.fixture
def receiver(codat_make_receiver: Callable[..., Receiver]) -> Receiver:
    return codat_make_receiver(authorization="Bearer s3cret", signing_secrets=None)


def reply_json(reply: Any) -> dict[str, Any]:
    return json.loads(reply.body)  # type: ignore[no-any-return]


# --- 200 processed ---------------------------------------------------------------------------


def test_each_seed_payload_reaches_exactly_its_hook_once(
    receiver: Receiver, recorder: Recorder, seed_body: bytes
) -> None:
    reply = receiver.handle("POST", AUTH, seed_body)
    kind = RuleType.parse(json.loads(seed_body)["RuleType"])
    assert kind is not None
    assert (reply.status, reply.outcome) == (200, "processed")
    assert recorder.names() == [kind.hook, "on_alert"]
    alert = recorder.calls_to(kind.hook)[0].alert
    assert alert.kind is kind
    assert alert.alert_id == uuid.UUID(json.loads(seed_body)["AlertId"])
    assert reply_json(reply) == {
        "outcome": "processed",
        "key": json.loads(seed_body)["AlertId"],
        "detail": "processed",
    }
    assert ("Content-Type", "application/json") in reply.headers


def test_put_is_accepted_like_post(receiver: Receiver, recorder: Recorder) -> None:
    reply = receiver.handle("put", AUTH, sample_body("Rate Limit Reached"))
    assert reply.status == 200
    assert recorder.names() == ["on_rate_limit_reached", "on_alert"]


def test_headers_may_be_pairs_in_any_case(receiver: Receiver) -> None:
    reply = receiver.handle(
        "POST", [("AUTHORIZATION", "Bearer s3cret")], sample_body("Sync Failed")
    )
    assert reply.outcome == "processed"


def test_processed_record_is_done_with_body_and_redacted_headers(
    receiver: Receiver, store: MemoryStore
) -> None:
    body = sample_body("Sync Completed")
    reply = receiver.handle("POST", {**AUTH, "X-Codat-ClientId": "abc"}, body)
    assert reply.key is not None
    record = store.get(reply.key)
    assert record is not None
    assert record.state is State.DONE
    assert record.body == body
    assert record.kind == "Sync Completed"
    assert ("Authorization", "[redacted]") in record.headers
    assert ("X-Codat-ClientId", "abc") in record.headers


# --- 200 duplicate ---------------------------------------------------------------------------


def test_duplicate_runs_only_on_duplicate(receiver: Receiver, recorder: Recorder) -> None:
    body = sample_body("Dataset data changed")
    assert receiver.handle("POST", AUTH, body).outcome == "processed"
    recorder.clear()
    reply = receiver.handle("POST", AUTH, body)
    assert (reply.status, reply.outcome) == (200, "duplicate")
    assert recorder.names() == ["on_duplicate"]


# --- 503 in_progress -------------------------------------------------------------------------


def test_same_key_while_lease_is_alive_is_503_in_progress(
    receiver: Receiver, recorder: Recorder, store: MemoryStore
) -> None:
    body = sample_body("Data sync completed")
    key = json.loads(body)["AlertId"]
    import hashlib

    other = store.claim(Entry(key, hashlib.sha256(body).hexdigest()), lease=30)
    assert other.claimed
    reply = receiver.handle("POST", AUTH, body)
    assert (reply.status, reply.outcome) == (503, "in_progress")
    retry_after = dict(reply.headers)["Retry-After"]
    assert 1 <= int(retry_after) <= 30
    assert recorder.names() == []


# --- 422 conflict ----------------------------------------------------------------------------


def test_same_key_with_different_bytes_is_422_conflict(
    receiver: Receiver, recorder: Recorder
) -> None:
    body = legacy_sample("DataConnectionStatusChanged")
    assert receiver.handle("POST", AUTH, json.dumps(body).encode()).outcome == "processed"
    recorder.clear()
    body["Data"]["newStatus"] = "Deauthorized"
    reply = receiver.handle("POST", AUTH, json.dumps(body).encode())
    assert (reply.status, reply.outcome) == (422, "conflict")
    assert recorder.names() == ["on_rejected"]


# --- 200 processed, unknown rule -------------------------------------------------------------


def test_unknown_rule_type_is_processed_through_on_unknown_alert(
    receiver: Receiver, recorder: Recorder
) -> None:
    body = json.dumps({"RuleType": "Brand New Rule", "AlertId": str(uuid.uuid4())}).encode()
    reply = receiver.handle("POST", AUTH, body)
    assert (reply.status, reply.outcome) == (200, "processed")
    assert recorder.names() == ["on_unknown_alert", "on_alert"]


# --- 401 unauthorized ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ""}, {"X-Authorization": "s3cret"}],
)
def test_missing_or_wrong_authorization_is_401_and_nothing_is_stored(
    receiver: Receiver, recorder: Recorder, store: MemoryStore, headers: dict[str, str]
) -> None:
    reply = receiver.handle("POST", headers, sample_body("Sync Failed"))
    assert (reply.status, reply.outcome) == (401, "unauthorized")
    assert reply_json(reply)["detail"] == "authentication failed"  # no hint for probers
    assert b"s3cret" not in reply.body
    assert recorder.names() == ["on_rejected"]
    assert store.find() == []


def test_list_and_dict_credentials_report_their_names(store: MemoryStore) -> None:
    seen: list[str | None] = []

    class Plugin:
        @hookimpl
        def on_alert(self, delivery: Delivery) -> None:
            seen.append(delivery.verified_by)

    receiver = Receiver(
        authorization=["Bearer old", "Bearer new"],
        store=store,
        plugins=[Plugin()],
        load_entrypoints=False,
    )
    receiver.handle("POST", {"Authorization": "Bearer new"}, sample_body("Sync Started"))
    receiver.handle("POST", {"Authorization": "Bearer old"}, sample_body("Sync Started"))
    named = Receiver(
        authorization={"portal": "Basic abc"},
        store=store,
        plugins=[Plugin()],
        load_entrypoints=False,
    )
    named.handle("POST", {"Authorization": "Basic abc"}, sample_body("Sync Started"))
    assert seen == ["authorization-2", "authorization-1", "portal"]


def test_no_credentials_without_insecure_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="insecure=True"):
        Receiver(store=MemoryStore(), load_entrypoints=False)


def test_insecure_receiver_accepts_unauthenticated_deliveries() -> None:
    receiver = Receiver(insecure=True, store=MemoryStore(), load_entrypoints=False)
    reply = receiver.handle("POST", {}, sample_body("Sync Failed"))
    assert reply.outcome == "processed"


# --- 400 / 422 invalid -----------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"not json", b"[1]", b"", b"\xff"])
def test_body_that_is_not_a_json_object_is_400_invalid(
    receiver: Receiver, recorder: Recorder, store: MemoryStore, body: bytes
) -> None:
    reply = receiver.handle("POST", AUTH, body)
    assert (reply.status, reply.outcome) == (400, "invalid")
    assert recorder.names() == ["on_rejected"]
    [record] = store.find()
    assert record.state is State.PARKED  # authenticated, so kept
    assert record.body == body


@pytest.mark.parametrize(
    "payload",
    [
        {"Hello": "world"},
        {"RuleType": 12},
        {"RuleType": "Rate Limit Reached", "Data": {"DailyQuota": "many"}},
    ],
)
def test_object_that_is_not_an_alert_is_422_invalid_and_parked(
    receiver: Receiver, recorder: Recorder, store: MemoryStore, payload: dict[str, Any]
) -> None:
    body = json.dumps({**payload, "AlertId": str(uuid.uuid4())}).encode()
    reply = receiver.handle("POST", AUTH, body)
    assert (reply.status, reply.outcome) == (422, "invalid")
    assert recorder.names() == ["on_rejected"]
    record = store.get(json.loads(body)["AlertId"])
    assert record is not None
    assert record.state is State.PARKED
    assert record.body == body
    assert record.last_error


@pytest.mark.parametrize(
    ("payload", "kind", "company"),
    [
        (
            {"RuleType": "Rate Limit Reached", "CompanyId": "c-1", "Data": {"DailyQuota": "x"}},
            "Rate Limit Reached",
            "c-1",
        ),
        (
            {"eventType": "connection.connected", "payload": {"referenceCompany": {"id": 5}}},
            "connection.connected",
            None,
        ),
        (
            {
                "eventType": "connection.connected",
                "payload": {"referenceCompany": {"id": "c-2"}, "connection": "not an object"},
            },
            "connection.connected",
            "c-2",
        ),
        ({"RuleType": 12, "CompanyId": ["c-3"]}, None, None),
    ],
)
def test_parked_delivery_keeps_the_type_and_company_its_body_names(
    receiver: Receiver, store: MemoryStore, payload: dict[str, Any], kind: str, company: str
) -> None:
    body = json.dumps({**payload, "AlertId": "parked-1"}).encode()
    assert receiver.handle("POST", AUTH, body).status == 422
    record = store.get("parked-1")
    assert record is not None
    assert (record.state, record.kind, record.company_id) == (State.PARKED, kind, company)


def test_parked_key_redelivered_stays_parked(receiver: Receiver, store: MemoryStore) -> None:
    body = json.dumps({"AlertId": "k1", "no": "rule"}).encode()
    receiver.handle("POST", AUTH, body)
    receiver.handle("POST", AUTH, body)
    record = store.get("k1")
    assert record is not None
    assert (record.state, record.attempts) == (State.PARKED, 2)


# --- 413 too_large ---------------------------------------------------------------------------


def test_body_over_the_limit_is_413_and_not_stored(
    recorder: Recorder, store: MemoryStore, codat_make_receiver: Callable[..., Receiver]
) -> None:
    receiver = codat_make_receiver(
        authorization="Bearer s3cret", signing_secrets=None, max_body_bytes=100
    )
    reply = receiver.handle("POST", AUTH, sample_body("Sync Failed"))
    assert (reply.status, reply.outcome) == (413, "too_large")
    assert recorder.names() == ["on_rejected"]
    assert store.find() == []


# --- 405 method_not_allowed ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH", "HEAD"])
def test_other_methods_are_405_with_allow(
    receiver: Receiver, recorder: Recorder, method: str
) -> None:
    reply = receiver.handle(method, AUTH, sample_body("Sync Failed"))
    assert (reply.status, reply.outcome) == (405, "method_not_allowed")
    assert dict(reply.headers)["Allow"] == "POST, PUT"
    assert recorder.names() == []


# --- 503 failed ------------------------------------------------------------------------------


def test_failing_hook_is_503_failed_and_the_retry_runs_it_again(
    recorder: Recorder, store: MemoryStore, codat_make_receiver: Callable[..., Receiver]
) -> None:
    attempts: list[int] = []

    class Flaky:
        @hookimpl
        def on_sync_connection_deleted(self, delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            if len(attempts) == 1:
                raise RuntimeError("database is down")

    receiver = codat_make_receiver(
        [Flaky()], authorization="Bearer s3cret", signing_secrets=None, retry_after=7
    )
    body = sample_body("Sync Connection Deleted")
    reply = receiver.handle("POST", AUTH, body)
    assert (reply.status, reply.outcome) == (503, "failed")
    assert dict(reply.headers)["Retry-After"] == "7"
    assert b"database is down" not in reply.body
    # Flaky was registered last, so it runs first; nothing after it ran; on_handler_error did.
    assert recorder.names() == ["on_handler_error"]
    record = store.get(json.loads(body)["AlertId"])
    assert record is not None
    assert record.state is State.FAILED
    assert record.last_error == "RuntimeError: database is down"

    recorder.clear()
    assert receiver.handle("POST", AUTH, body).outcome == "processed"
    assert attempts == [1, 2]
    assert recorder.names() == ["on_sync_connection_deleted", "on_alert"]


# --- 503 unavailable -------------------------------------------------------------------------


class UnreachableStore(MemoryStore):
    """Stands in for a backend whose server is down (real outages: tests/stores)."""

    def claim(
        self, entry: Entry, *, lease: float, force: bool = False, attempt: object = None
    ) -> Any:
        raise StoreError("connection refused")

    def park(self, entry: Entry, *, reason: str, attempt: object = None) -> str:
        raise StoreError("connection refused")


def test_unreachable_store_is_503_unavailable_and_no_hook_runs(
    recorder: Recorder, codat_make_receiver: Callable[..., Receiver]
) -> None:
    receiver = codat_make_receiver(
        store=UnreachableStore(), authorization="Bearer s3cret", signing_secrets=None
    )
    reply = receiver.handle("POST", AUTH, sample_body("Sync Failed"))
    assert (reply.status, reply.outcome) == (503, "unavailable")
    assert "Retry-After" in dict(reply.headers)
    assert recorder.names() == []
    # an invalid payload that cannot be parked must be retried, not lost
    reply = receiver.handle("POST", AUTH, b'{"nope": 1}')
    assert (reply.status, reply.outcome) == (503, "unavailable")


# --- hooks and keys --------------------------------------------------------------------------


def test_key_prefers_webhook_id_then_body_id_then_alert_id_then_digest(receiver: Receiver) -> None:
    body = sample_body("Sync Failed")
    assert receiver.handle("POST", {**AUTH, "webhook-id": "msg_1"}, body).key == "msg_1"
    assert receiver.handle("POST", {**AUTH, "svix-id": "msg_2"}, body).key == "msg_2"
    with_id = json.dumps({"id": "evt_3", **json.loads(body)}).encode()
    assert receiver.handle("POST", AUTH, with_id).key == "evt_3"
    assert receiver.handle("POST", AUTH, body).key == json.loads(body)["AlertId"]
    no_id = json.dumps({"RuleType": "Sync Failed"}).encode()
    key = receiver.handle("POST", AUTH, no_id).key
    assert key is not None
    assert key.startswith("sha256:")


def test_delivery_carries_headers_body_and_credential_name(store: MemoryStore) -> None:
    seen: list[Delivery] = []

    class Plugin:
        @hookimpl
        def on_rate_limit_reset(self, delivery: Delivery) -> None:
            seen.append(delivery)

    receiver = Receiver(
        authorization="Bearer s3cret", store=store, plugins=[Plugin()], load_entrypoints=False
    )
    body = sample_body("Rate Limit Reset")
    receiver.handle("POST", {**AUTH, "X-Codat-ClientId": "c1"}, body)
    [delivery] = seen
    assert delivery.body == body
    assert delivery.headers["x-codat-clientid"] == "c1"
    assert delivery.verified_by == "authorization"
    assert delivery.attempt == 1
    assert delivery.received_at.tzinfo is not None
    with pytest.raises(AttributeError):
        delivery.key = "other"  # type: ignore[misc]


def test_an_invalid_body_under_a_processed_key_is_refused_and_the_key_keeps_its_body(
    receiver: Receiver, store: MemoryStore, recorder: Recorder
) -> None:
    """Found by the hostile-bytes servers test: an authenticated body that fails validation
    but carries a key already processed (its ``AlertId``) is answered 422, and the record stays
    done with the body its hooks ran on; it is never reopened or overwritten. The invalid body
    was authenticated, so it is kept too: parked beside the key, as a conflict is."""
    first = sample_body(RuleType.DATA_SYNC_COMPLETED)
    key = json.loads(first)["AlertId"]
    assert receiver.handle("POST", AUTH, first).outcome == "processed"
    invalid = json.dumps({"AlertId": key}).encode()  # no RuleType: neither alert nor event
    reply = receiver.handle("POST", AUTH, invalid)
    assert (reply.status, reply.outcome, reply.key) == (422, "invalid", key)
    kept = store.get(key)
    assert kept is not None
    assert (kept.state, kept.body) == (State.DONE, first)
    assert recorder.names().count("on_alert") == 1
    beside = store.get(conflict_key(key, hashlib.sha256(invalid).hexdigest()))
    assert beside is not None
    assert (beside.state, beside.body) == (State.PARKED, invalid)
    assert beside.last_error is not None
    assert "RuleType" in beside.last_error or "eventType" in beside.last_error
