"""A second, different body under a key already received: answered 422 conflict and kept.

Both bodies were authenticated, so neither may be lost: the first stays the key's record, the
second is parked under a key derived from the original and the body's fingerprint, and the
original's ``show`` (``Store.conflicts``) finds it. Over every store, inline and queued.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest

from codat_webhooks import Receiver, RuleType
from codat_webhooks.queues import LocalQueue
from codat_webhooks.stores import State, Store
from codat_webhooks.stores.base import MAX_KEY_LENGTH, conflict_key
from codat_webhooks.testing import sample_body


def _other_body(first: bytes) -> bytes:
    changed = json.loads(first)
    changed["Message"] = "the same AlertId with another message"
    return json.dumps(changed).encode()


@pytest.mark.parametrize("queued", [False, True], ids=["inline", "queued"])
def test_a_conflicting_body_is_parked_beside_the_original(
    backend: str, make_store: Callable[..., Store], queued: bool
) -> None:
    store = make_store(backend)
    queue = LocalQueue(workers=0) if queued else None
    receiver = Receiver(insecure=True, store=store, load_entrypoints=False, queue=queue)
    first = sample_body(RuleType.DATA_SYNC_COMPLETED)
    second = _other_body(first)
    try:
        accepted = receiver.handle("POST", {}, first)
        assert accepted.status == (202 if queued else 200)
        key = accepted.key
        assert key is not None
        for _ in range(2):  # the sender's retry of the conflicting copy parks it once
            reply = receiver.handle("POST", {}, second)
            assert (reply.status, reply.outcome, reply.key) == (422, "conflict", key)

        original = store.get(key)
        assert original is not None
        assert original.body == first
        assert original.state is (State.QUEUED if queued else State.DONE)
        fingerprint = hashlib.sha256(second).hexdigest()
        parked = store.get(conflict_key(key, fingerprint))
        assert parked is not None
        assert (parked.state, parked.body, parked.fingerprint) == (
            State.PARKED,
            second,
            fingerprint,
        )
        assert parked.last_error is not None
        assert "different body" in parked.last_error
        assert [record.key for record in store.conflicts(key)] == [parked.key]
        assert store.conflicts(parked.key) == []
    finally:
        receiver.close()


def test_a_key_too_long_for_the_suffix_parks_under_the_fingerprint(
    make_store: Callable[..., Store],
) -> None:
    key = "k" * MAX_KEY_LENGTH
    store = make_store("memory")
    receiver = Receiver(insecure=True, store=store, load_entrypoints=False)
    first = sample_body(RuleType.DATA_SYNC_COMPLETED)
    headers = {"webhook-id": key}
    assert receiver.handle("POST", headers, first).outcome == "processed"
    second = _other_body(first)
    assert receiver.handle("POST", headers, second).outcome == "conflict"
    parked = store.get(f"sha256:{hashlib.sha256(second).hexdigest()}")
    assert parked is not None
    assert parked.state is State.PARKED
