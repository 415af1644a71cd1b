"""Text no backend can hold, on every write path of every store and both dispatch modes.

A hook's error can say anything: a lone surrogate (JSON's "\\ud800" escape decodes to one), a
NUL, ten kilobytes of traceback. Every write that keeps such text (release, defer, park, and
the labels of enqueue) must keep it cleaned (see ``storable_text``), raise nothing, and leave
the record in the state the transition promises. Before the store machine, queued dispatch on
SQLiteStore raised ``UnicodeEncodeError`` out of ``process_queued`` and left the record
``processing``.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.queues import LocalQueue
from codat_webhooks.queues.base import RetryPolicy
from codat_webhooks.stores import ClaimStatus, Entry, State, Store
from codat_webhooks.stores.base import storable_text
from codat_webhooks.testing import sample_body

if TYPE_CHECKING:
    from conftest import StoreFactory

HOSTILE = "bad \ud800 and \x00 then " + "traceback line\n" * 700  # 10 kB and more
CLEANED = storable_text(HOSTILE)
LEASE = 10.0


def test_the_hostile_text_is_what_these_tests_say() -> None:
    assert len(HOSTILE) > 10_000
    assert CLEANED is not None
    assert "\ud800" not in CLEANED
    assert "\x00" not in CLEANED
    assert len(CLEANED) == len(HOSTILE)


def _hostile_entry(key: str) -> Entry:
    return Entry(key, "f" * 64, b"{}", (("X-Odd", HOSTILE),), kind=HOSTILE, company_id=HOSTILE)


def _state_and_error(store: Store, key: str) -> tuple[State, str | None]:
    record = store.get(key)
    assert record is not None
    return record.state, record.last_error


# --- the store contract: inline (claim, release, park) and queued (enqueue, take, defer) -------


def test_inline_release_and_park_keep_the_text_cleaned(store: Store) -> None:
    token = store.claim(_hostile_entry("inline"), lease=LEASE).token
    assert store.release("inline", token, error=HOSTILE)
    assert _state_and_error(store, "inline") == (State.FAILED, CLEANED)
    store.park(_hostile_entry("inline"), reason=HOSTILE)  # a failed key parks
    assert _state_and_error(store, "inline") == (State.PARKED, CLEANED)
    store.park(_hostile_entry("dead-letter"), reason=HOSTILE)
    assert _state_and_error(store, "dead-letter") == (State.PARKED, CLEANED)
    record = store.get("dead-letter")
    assert record is not None
    assert (record.kind, record.company_id, record.headers) == (
        CLEANED,
        CLEANED,
        (("X-Odd", HOSTILE),),  # headers are JSON, which keeps them exactly
    )


def test_queued_enqueue_defer_and_release_keep_the_text_cleaned(store: Store) -> None:
    assert store.enqueue(_hostile_entry("queued")).status is ClaimStatus.QUEUED
    record = store.get("queued")
    assert record is not None
    assert (record.state, record.kind, record.company_id) == (State.QUEUED, CLEANED, CLEANED)
    token = store.take("queued", lease=LEASE).token
    assert store.defer("queued", token, due=0.0, error=HOSTILE)
    assert _state_and_error(store, "queued") == (State.QUEUED, CLEANED)
    claim, taken = store.take_record("queued", lease=LEASE)
    assert claim.status is ClaimStatus.CLAIMED
    assert taken is not None
    assert taken.last_error == CLEANED
    assert store.release("queued", claim.token, error=HOSTILE)
    assert _state_and_error(store, "queued") == (State.FAILED, CLEANED)
    assert store.enqueue(_hostile_entry("queued")).status is ClaimStatus.QUEUED  # again
    assert store.complete("queued", store.take("queued", lease=LEASE).token)
    assert _state_and_error(store, "queued") == (State.DONE, None)


@pytest.mark.parametrize("key", ["\ud800", "nul\x00", "k" * 300])
def test_a_key_no_store_can_hold_is_never_held_on_any_write_path(store: Store, key: str) -> None:
    assert not store.renew(key, 1, lease=LEASE)
    assert not store.complete(key, 1)
    assert not store.release(key, 1, error=HOSTILE)
    assert not store.defer(key, 1, due=0.0, error=HOSTILE)
    assert store.take(key, lease=LEASE).status is ClaimStatus.DUPLICATE
    assert store.take_record(key, lease=LEASE) == (store.take(key, lease=LEASE), None)
    assert store.get(key) is None
    with pytest.raises(ValueError, match="store key"):
        store.claim(Entry(key, "f"), lease=LEASE)
    with pytest.raises(ValueError, match="store key"):
        store.enqueue(Entry(key, "f"))
    with pytest.raises(ValueError, match="store key"):
        store.park(Entry(key, "f"), reason=HOSTILE)


# --- under a Receiver: a hook that raises hostile text, inline and queued -----------------------


@pytest.fixture(autouse=True)
def _no_hostile_log_records(caplog: pytest.LogCaptureFixture) -> None:
    """The receiver logs the hook's error as raised, lone surrogate included; pytest-xdist
    cannot send a test report holding one from its worker (execnet's DumpError). What these
    tests check is the store, not the log."""
    caplog.set_level(logging.CRITICAL + 1, logger="codat_webhooks")


class Raises:
    @hookimpl
    def on_alert(self) -> None:
        raise ValueError(HOSTILE)


def _receiver(store: Store, *, queued: bool) -> Receiver:
    return Receiver(
        insecure=True,
        store=store,
        plugins=[Raises()],
        load_entrypoints=False,
        queue=LocalQueue(workers=0) if queued else None,
        retries=RetryPolicy(attempts=2, first=0.0, cap=0.0),
    )


def test_a_hook_error_no_store_can_hold_fails_the_delivery_inline(
    backend: str, make_store: StoreFactory
) -> None:
    store = make_store(backend)
    receiver = _receiver(store, queued=False)
    body = sample_body(RuleType.DATA_SYNC_COMPLETED)
    reply = receiver.handle("POST", {}, body)
    assert (reply.status, reply.outcome) == (503, "failed")
    key = json.loads(reply.body)["key"]
    state, error = _state_and_error(store, key)
    assert state is State.FAILED
    assert error is not None
    assert error.startswith("ValueError: bad \ufffd and \ufffd then traceback line")
    receiver.close()


def test_a_hook_error_no_store_can_hold_is_deferred_then_failed_by_the_worker(
    backend: str, make_store: StoreFactory
) -> None:
    store = make_store(backend)
    receiver = _receiver(store, queued=True)
    reply = receiver.handle("POST", {}, sample_body(RuleType.DATA_SYNC_COMPLETED))
    assert (reply.status, reply.outcome) == (202, "queued")
    key = json.loads(reply.body)["key"]
    first = receiver.process_queued(key)  # raised UnicodeEncodeError on SQLiteStore
    assert first.retry_in is not None
    state, error = _state_and_error(store, key)
    assert state is State.QUEUED
    assert error is not None
    assert error.startswith("ValueError: bad \ufffd and \ufffd then")
    receiver.process_queued(key)  # the last attempt: failed for good
    state, error = _state_and_error(store, key)
    assert state is State.FAILED
    assert error is not None
    assert "\ud800" not in error
    assert "\x00" not in error
    receiver.close()
