"""The store contract: every backend must answer exactly as MemoryStore does.

Runs once per backend (memory, sqlite, redis, postgres) on a fake clock, so lease expiry and
retention are reached by moving time, not by sleeping.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from codat_webhooks.errors import StoreError
from codat_webhooks.stores import Claim, ClaimStatus, Entry, MemoryStore, Record, State, Store
from codat_webhooks.stores.base import MAX_KEY_LENGTH, conflict_key, page_cursor
from codat_webhooks.stores.history import HistoryEntry

if TYPE_CHECKING:
    from conftest import FakeClock

LEASE = 10.0
HEADERS = (("Content-Type", "application/json"), ("Authorization", "[redacted]"))


def entry(key: str = "alert-1", fingerprint: str = "f" * 64, **fields: object) -> Entry:
    values: dict[str, object] = {
        "body": b'{"AlertId": "alert-1", "x": "\xc3\xa9"}\xff\x00',  # not even valid UTF-8
        "headers": HEADERS,
        "kind": "Data sync completed",
        "company_id": "company-a",
    }
    values.update(fields)
    return Entry(key, fingerprint, **values)  # type: ignore[arg-type]


def claim(store: Store, item: Entry | None = None, **options: object) -> Claim:
    return store.claim(item or entry(), lease=LEASE, **options)  # type: ignore[arg-type]


# --- claim ------------------------------------------------------------------------------------


def test_first_claim_takes_the_key_and_keeps_everything(store: Store, clock: FakeClock) -> None:
    result = claim(store)
    assert (result.status, result.token, result.attempts) == (ClaimStatus.CLAIMED, 1, 1)
    assert result.claimed
    record = store.get("alert-1")
    assert record is not None
    assert record.state is State.PROCESSING
    assert record.fingerprint == "f" * 64
    assert record.body == entry().body
    assert record.headers == HEADERS
    assert (record.kind, record.company_id) == ("Data sync completed", "company-a")
    assert record.first_seen == record.last_seen == clock.now
    assert record.lease_expires == pytest.approx(clock.now + LEASE)
    assert (record.attempts, record.token, record.last_error) == (1, 1, None)


def test_unknown_key_has_no_record(store: Store) -> None:
    assert store.get("never-seen") is None


def test_claim_while_the_lease_is_alive_is_in_progress(store: Store, clock: FakeClock) -> None:
    claim(store)
    clock.advance(3)
    result = claim(store)
    assert result.status is ClaimStatus.IN_PROGRESS
    assert not result.claimed
    assert result.retry_after == pytest.approx(LEASE - 3)
    assert result.attempts == 1


def test_claim_after_complete_is_a_duplicate_that_refreshes_last_seen(
    store: Store, clock: FakeClock
) -> None:
    token = claim(store).token
    assert store.complete("alert-1", token)
    clock.advance(5)
    result = claim(store)
    assert (result.status, result.attempts) == (ClaimStatus.DUPLICATE, 1)
    record = store.get("alert-1")
    assert record is not None
    assert (record.state, record.last_seen, record.lease_expires) == (State.DONE, clock.now, 0.0)


def test_same_key_other_body_is_a_conflict_in_every_state(store: Store) -> None:
    other = entry(fingerprint="0" * 64)
    token = claim(store).token
    assert claim(store, other).status is ClaimStatus.CONFLICT
    store.complete("alert-1", token)
    assert claim(store, other).status is ClaimStatus.CONFLICT
    assert claim(store, other, force=True).status is ClaimStatus.CONFLICT
    record = store.get("alert-1")
    assert record is not None
    assert record.fingerprint == "f" * 64


def test_force_reclaims_a_done_key(store: Store) -> None:
    store.complete("alert-1", claim(store).token)
    result = claim(store, force=True)
    assert (result.status, result.token, result.attempts) == (ClaimStatus.CLAIMED, 2, 2)


def test_force_does_not_take_a_live_lease(store: Store) -> None:
    claim(store)
    assert claim(store, force=True).status is ClaimStatus.IN_PROGRESS


# --- release, lease expiry, renewal, fencing --------------------------------------------------


def test_release_marks_failed_and_the_next_delivery_runs_again(
    store: Store, clock: FakeClock
) -> None:
    token = claim(store).token
    clock.advance(1)
    assert store.release("alert-1", token, error="RuntimeError: boom")
    record = store.get("alert-1")
    assert record is not None
    assert (record.state, record.last_error, record.last_seen) == (
        State.FAILED,
        "RuntimeError: boom",
        clock.now,
    )
    result = claim(store)
    assert (result.status, result.token, result.attempts) == (ClaimStatus.CLAIMED, 2, 2)
    assert store.complete("alert-1", result.token)
    record = store.get("alert-1")
    assert record is not None
    assert (record.state, record.last_error, record.attempts) == (State.DONE, None, 2)


def test_expired_lease_is_taken_over_and_the_old_token_is_fenced_out(
    store: Store, clock: FakeClock
) -> None:
    first = claim(store)
    clock.advance(LEASE + 1)
    second = claim(store)
    assert (second.status, second.token, second.attempts) == (ClaimStatus.CLAIMED, 2, 2)
    assert not store.renew("alert-1", first.token, lease=LEASE)
    assert not store.complete("alert-1", first.token)
    assert not store.release("alert-1", first.token, error="late")
    record = store.get("alert-1")
    assert record is not None
    assert (record.state, record.token, record.last_error) == (State.PROCESSING, 2, None)
    assert store.complete("alert-1", second.token)
    assert claim(store).status is ClaimStatus.DUPLICATE


def test_a_worker_whose_lease_expired_may_still_finish_if_nobody_took_over(
    store: Store, clock: FakeClock
) -> None:
    token = claim(store).token
    clock.advance(LEASE + 1)
    assert store.complete("alert-1", token)
    assert claim(store).status is ClaimStatus.DUPLICATE


def test_renew_extends_a_held_lease(store: Store, clock: FakeClock) -> None:
    token = claim(store).token
    clock.advance(LEASE * 0.8)
    assert store.renew("alert-1", token, lease=LEASE)
    record = store.get("alert-1")
    assert record is not None
    assert record.lease_expires == pytest.approx(clock.now + LEASE)
    clock.advance(LEASE * 0.8)  # past the first lease, within the renewed one
    assert claim(store).status is ClaimStatus.IN_PROGRESS
    clock.advance(LEASE)
    assert claim(store).status is ClaimStatus.CLAIMED


def test_renew_complete_release_need_a_held_claim(store: Store) -> None:
    assert not store.renew("nobody", 1, lease=LEASE)
    assert not store.complete("nobody", 1)
    assert not store.release("nobody", 1, error="x")
    token = claim(store).token
    assert not store.complete("alert-1", token + 1)
    assert store.complete("alert-1", token)
    assert not store.renew("alert-1", token, lease=LEASE)
    assert not store.complete("alert-1", token)
    assert not store.release("alert-1", token, error="x")
    record = store.get("alert-1")
    assert record is not None
    assert record.state is State.DONE


def test_reclaim_with_a_bare_entry_keeps_what_was_stored(store: Store) -> None:
    token = claim(store).token
    store.release("alert-1", token, error="boom")
    assert claim(store, Entry("alert-1", "f" * 64)).claimed
    record = store.get("alert-1")
    assert record is not None
    assert (record.body, record.headers) == (entry().body, HEADERS)
    assert (record.kind, record.company_id) == ("Data sync completed", "company-a")


def test_only_one_of_many_threads_gets_the_claim(store: Store) -> None:
    barrier = threading.Barrier(8)
    results: list[ClaimStatus] = []

    def contend() -> None:
        barrier.wait()
        results.append(claim(store).status)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted([ClaimStatus.CLAIMED] + [ClaimStatus.IN_PROGRESS] * 7)


# --- retention --------------------------------------------------------------------------------


def test_records_past_retention_behave_as_absent(store: Store, clock: FakeClock) -> None:
    store.complete("alert-1", claim(store).token)
    clock.advance(store.retention + 1)
    assert claim(store, entry(fingerprint="0" * 64)).status is ClaimStatus.CLAIMED
    record = store.get("alert-1")
    assert record is not None
    assert (record.attempts, record.token, record.fingerprint) == (1, 1, "0" * 64)
    assert record.first_seen == clock.now


def test_duplicates_keep_a_record_alive(store: Store, clock: FakeClock) -> None:
    store.complete("alert-1", claim(store).token)
    for _ in range(3):
        clock.advance(store.retention * 0.6)
        assert claim(store).status is ClaimStatus.DUPLICATE


# --- park (dead letters) ----------------------------------------------------------------------


def test_park_keeps_an_invalid_delivery_and_counts_repeats(store: Store, clock: FakeClock) -> None:
    store.park(entry("bad-1", kind=None, company_id=None), reason="no rule type")
    clock.advance(2)
    store.park(entry("bad-1", kind=None, company_id=None), reason="still no rule type")
    record = store.get("bad-1")
    assert record is not None
    assert (record.state, record.attempts, record.last_error) == (
        State.PARKED,
        2,
        "still no rule type",
    )
    assert (record.kind, record.company_id) == (None, None)
    assert record.body == entry().body
    assert record.last_seen == record.first_seen + 2
    result = claim(store, entry("bad-1"))  # replayed after a fix
    assert (result.status, result.attempts) == (ClaimStatus.CLAIMED, 3)


def test_park_after_failure_parks(store: Store) -> None:
    store.release("alert-1", claim(store).token, error="boom")
    store.park(entry(), reason="gave up")
    record = store.get("alert-1")
    assert record is not None
    assert (record.state, record.attempts, record.last_error) == (State.PARKED, 2, "gave up")


@pytest.mark.parametrize("finish", [True, False], ids=["done", "processing"])
def test_park_never_overrides_done_or_processing(
    store: Store, clock: FakeClock, finish: bool
) -> None:
    token = claim(store).token
    if finish:
        store.complete("alert-1", token)
    clock.advance(1)
    store.park(entry(), reason="late junk")
    record = store.get("alert-1")
    assert record is not None
    assert record.state is (State.DONE if finish else State.PROCESSING)
    assert (record.attempts, record.last_error, record.last_seen) == (1, None, clock.now)


@pytest.mark.parametrize("held", ["done", "processing", "failed", "parked"])
def test_park_of_another_body_under_a_held_key_keeps_both(
    store: Store, clock: FakeClock, held: str
) -> None:
    """An authenticated body that fails validation under a key another body holds: that
    record is another delivery's and is left exactly as it was; this body is parked beside
    it, under the conflict key, with its own history entry."""
    original = entry()
    if held == "parked":
        store.park(original, reason="first junk")
    else:
        token = claim(store, original).token
        if held == "done":
            store.complete("alert-1", token)
        elif held == "failed":
            store.release("alert-1", token, error="boom")
    before = store.get("alert-1")
    history_before = store.history("alert-1")
    clock.advance(1)
    other = entry(fingerprint="e" * 64, body=b"{}", kind=None, company_id=None)
    attempt = HistoryEntry(clock.now, 422, "invalid", 1.0, "no rule type", "authorization", "h:1")
    kept_under = store.park(other, reason="no rule type", attempt=attempt)

    assert kept_under == conflict_key("alert-1", "e" * 64)
    assert store.get("alert-1") == before  # not touched, not re-parked, not reopened
    assert store.history("alert-1") == history_before
    beside = store.get(kept_under)
    assert beside is not None
    assert (beside.state, beside.body, beside.fingerprint, beside.last_error) == (
        State.PARKED,
        b"{}",
        "e" * 64,
        "no rule type",
    )
    assert [(e.status, e.outcome) for e in store.history(kept_under)] == [(422, "invalid")]
    # The same junk again is a repeat of the parked one, not a third record.
    assert store.park(other, reason="no rule type") == kept_under
    again = store.get(kept_under)
    assert again is not None
    assert again.attempts == 2


def test_park_answers_the_key_it_kept_the_body_under(store: Store) -> None:
    assert store.park(entry("bad-9"), reason="no rule type") == "bad-9"
    assert store.park(entry("bad-9"), reason="no rule type") == "bad-9"


# --- find and purge ---------------------------------------------------------------------------


def _populate(store: Store, clock: FakeClock) -> None:
    """done-1 (a, sync) < failed-2 (b, sync) < parked-3 < processing-4 (a, push), 10 s apart."""
    store.complete("done-1", claim(store, entry("done-1")).token)
    clock.advance(10)
    token = claim(store, entry("failed-2", company_id="company-b")).token
    store.release("failed-2", token, error="boom")
    clock.advance(10)
    store.park(entry("parked-3", kind=None, company_id=None), reason="invalid")
    clock.advance(10)
    claim(store, entry("processing-4", kind="Push Operation Timed Out"))


def _keys(records: list[Record]) -> list[str]:
    return [record.key for record in records]


def test_find_filters_and_orders_newest_first(store: Store, clock: FakeClock) -> None:
    _populate(store, clock)
    assert _keys(store.find()) == ["processing-4", "parked-3", "failed-2", "done-1"]
    assert _keys(store.find(states=[State.FAILED, State.PARKED])) == ["parked-3", "failed-2"]
    assert _keys(store.find(kind="Data sync completed")) == ["failed-2", "done-1"]
    assert _keys(store.find(company_id="company-a")) == ["processing-4", "done-1"]
    assert _keys(store.find(since=clock.now - 10)) == ["processing-4", "parked-3"]
    assert _keys(store.find(limit=3)) == ["processing-4", "parked-3", "failed-2"]
    # the limit applies after the filters, in the same query: the newest matching rows
    assert _keys(store.find(states=[State.FAILED, State.DONE], limit=1)) == ["failed-2"]
    assert _keys(store.find(kind="Data sync completed", limit=1)) == ["failed-2"]
    assert _keys(store.find(company_id="company-a", since=clock.now - 20, limit=5)) == [
        "processing-4"
    ]
    assert _keys(store.find(states=[State.DONE], company_id="company-b")) == []


def test_find_bounds_last_seen_before_a_time(store: Store, clock: FakeClock) -> None:
    _populate(store, clock)
    assert _keys(store.find(before=clock.now - 10)) == ["failed-2", "done-1"]
    assert _keys(store.find(since=clock.now - 20, before=clock.now)) == ["parked-3", "failed-2"]
    assert _keys(store.find(before=clock.now - 10, limit=1)) == ["failed-2"]


def _pages(store: Store, size: int, **filters: object) -> list[list[str]]:
    """Every page of a listing, each the store's answer to one cursor query."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = store.find(limit=size, cursor=cursor, **filters)  # type: ignore[arg-type]
        if not page:
            return pages
        pages.append(_keys(page))
        cursor = page_cursor(page[-1])


def test_cursor_pages_through_every_record_once_even_when_times_tie(
    store: Store, clock: FakeClock
) -> None:
    # Seven records in three instants: a cursor on last_seen alone would skip or repeat.
    for instant in range(3):
        for suffix in "abc"[: 3 if instant < 2 else 1]:
            store.park(entry(f"k{instant}{suffix}", kind=None), reason="invalid")
        clock.advance(1)
    expected = ["k2a", "k1c", "k1b", "k1a", "k0c", "k0b", "k0a"]
    assert _keys(store.find()) == expected
    assert _pages(store, 3) == [expected[:3], expected[3:6], expected[6:]]
    assert _pages(store, 2) == [expected[i : i + 2] for i in range(0, 7, 2)]
    assert _pages(store, 2, states=[State.PARKED], before=clock.now - 1.5) == [
        ["k1c", "k1b"],
        ["k1a", "k0c"],
        ["k0b", "k0a"],
    ]


def test_cursor_combines_with_filters(store: Store, clock: FakeClock) -> None:
    _populate(store, clock)
    assert _pages(store, 1, kind="Data sync completed") == [["failed-2"], ["done-1"]]
    assert _pages(store, 1, states=[State.PARKED, State.DONE]) == [["parked-3"], ["done-1"]]


def test_counts_every_state(store: Store, clock: FakeClock) -> None:
    assert store.counts() == dict.fromkeys(State, 0)
    _populate(store, clock)
    assert store.counts() == {
        State.QUEUED: 0,
        State.PROCESSING: 1,
        State.DONE: 1,
        State.FAILED: 1,
        State.PARKED: 1,
    }


def test_purge_removes_old_records_but_never_a_live_lease(store: Store, clock: FakeClock) -> None:
    _populate(store, clock)
    assert store.purge(older_than=15) == 2  # done-1 and failed-2
    assert _keys(store.find()) == ["processing-4", "parked-3"]
    clock.advance(LEASE / 2)
    assert store.purge(older_than=0) == 1  # parked-3; processing-4 still holds its lease
    assert _keys(store.find()) == ["processing-4"]
    clock.advance(LEASE)
    assert store.purge(older_than=0) == 1  # its worker died: the lease ran out
    assert store.find() == []
    assert claim(store, entry("done-1")).attempts == 1


def test_purge_defaults_to_the_retention(store: Store, clock: FakeClock) -> None:
    store.complete("alert-1", claim(store).token)
    clock.advance(store.retention - 1)
    assert store.purge() == 0
    clock.advance(2)
    assert store.purge() == 1
    assert store.get("alert-1") is None


# --- queued dispatch: enqueue, take, defer, due ----------------------------------------------


def test_enqueue_records_a_new_key_as_queued_and_due_now(store: Store, clock: FakeClock) -> None:
    result = store.enqueue(entry())
    assert (result.status, result.attempts) == (ClaimStatus.QUEUED, 0)
    record = store.get("alert-1")
    assert record is not None
    assert (record.state, record.attempts, record.body) == (State.QUEUED, 0, entry().body)
    assert record.headers == HEADERS
    assert record.lease_expires == pytest.approx(clock.now)
    assert store.due() == ["alert-1"]


def test_a_queued_record_keeps_the_credential_name_through_take_and_defer(
    store: Store,
) -> None:
    store.enqueue(entry(verified_by="authorization-2"))
    claim = store.take("alert-1", lease=LEASE)
    assert store.defer("alert-1", claim.token, due=0.0, error="boom")
    store.take("alert-1", lease=LEASE)
    record = store.get("alert-1")
    assert record is not None
    assert record.verified_by == "authorization-2"
    assert store.enqueue(entry("unnamed")).status is ClaimStatus.QUEUED
    unnamed = store.get("unnamed")
    assert unnamed is not None
    assert unnamed.verified_by is None


def test_take_record_claims_as_take_does_and_hands_over_the_record(store: Store) -> None:
    store.enqueue(entry(verified_by="authorization"))
    claim, record = store.take_record("alert-1", lease=LEASE)
    assert (claim.status, claim.attempts) == (ClaimStatus.CLAIMED, 1)
    assert record == store.get("alert-1")
    assert record is not None
    assert (record.state, record.token, record.body) == (
        State.PROCESSING,
        claim.token,
        entry().body,
    )
    held, nothing = store.take_record("alert-1", lease=LEASE)
    assert (held.status, nothing) == (ClaimStatus.IN_PROGRESS, None)
    assert store.take_record("unknown", lease=LEASE) == (Claim(ClaimStatus.DUPLICATE), None)


def test_enqueue_of_a_queued_processing_or_done_key_is_a_duplicate(store: Store) -> None:
    store.enqueue(entry())
    assert store.enqueue(entry()).status is ClaimStatus.DUPLICATE
    token = store.take("alert-1", lease=LEASE).token
    assert store.enqueue(entry()).status is ClaimStatus.DUPLICATE
    assert store.complete("alert-1", token)
    assert store.enqueue(entry()).status is ClaimStatus.DUPLICATE
    assert store.enqueue(entry(fingerprint="0" * 64)).status is ClaimStatus.CONFLICT


def test_enqueue_accepts_a_failed_or_parked_key_again(store: Store) -> None:
    store.enqueue(entry())
    token = store.take("alert-1", lease=LEASE).token
    assert store.release("alert-1", token, error="boom")
    again = store.enqueue(entry())
    assert again.status is ClaimStatus.QUEUED
    record = store.get("alert-1")
    assert record is not None
    assert (record.state, record.attempts, record.last_error) == (State.QUEUED, 0, None)
    # the earlier worker's token stays fenced out of the new round
    assert not store.complete("alert-1", token)
    store.park(entry("parked"), reason="bad")
    assert store.enqueue(entry("parked")).status is ClaimStatus.QUEUED


def test_take_claims_a_queued_key_once_and_counts_attempts(store: Store, clock: FakeClock) -> None:
    store.enqueue(entry())
    first = store.take("alert-1", lease=LEASE)
    assert (first.status, first.attempts) == (ClaimStatus.CLAIMED, 1)
    clock.advance(2)
    busy = store.take("alert-1", lease=LEASE)
    assert busy.status is ClaimStatus.IN_PROGRESS
    assert busy.retry_after == pytest.approx(LEASE - 2)
    assert store.renew("alert-1", first.token, lease=LEASE)
    assert store.complete("alert-1", first.token)
    assert store.take("alert-1", lease=LEASE).status is ClaimStatus.DUPLICATE
    assert store.take("never-seen", lease=LEASE).status is ClaimStatus.DUPLICATE


def test_defer_requeues_for_later_and_take_counts_the_next_attempt(
    store: Store, clock: FakeClock
) -> None:
    store.enqueue(entry())
    token = store.take("alert-1", lease=LEASE).token
    assert store.defer("alert-1", token, due=clock.now + 30, error="boom")
    assert not store.defer("alert-1", token, due=clock.now, error="fenced")
    record = store.get("alert-1")
    assert record is not None
    assert (record.state, record.last_error) == (State.QUEUED, "boom")
    assert store.due() == []
    clock.advance(31)
    assert store.due() == ["alert-1"]
    second = store.take("alert-1", lease=LEASE)
    assert (second.status, second.attempts) == (ClaimStatus.CLAIMED, 2)
    assert second.token > token


def test_due_finds_late_queued_keys_and_dead_workers_oldest_first(
    store: Store, clock: FakeClock
) -> None:
    store.enqueue(entry("a"))
    clock.advance(1)
    store.enqueue(entry("b"))
    store.take("b", lease=LEASE)
    clock.advance(1)
    store.claim(entry("inline"), lease=LEASE)
    clock.advance(4)
    assert store.due() == ["a"]
    assert store.due(older_than=10) == []
    clock.advance(LEASE + 1)
    assert store.due() == ["a", "b", "inline"]
    assert store.due(older_than=10) == ["a"]
    assert store.due(limit=1) == ["a"]
    taken = store.take("b", lease=LEASE)
    assert (taken.status, taken.attempts) == (ClaimStatus.CLAIMED, 2)


def test_only_one_of_many_threads_takes_a_queued_key(store: Store) -> None:
    store.enqueue(entry())
    results: list[Claim] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        results.append(store.take("alert-1", lease=LEASE))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result.claimed for result in results) == 1


# --- text no backend can hold: NUL, lone surrogates, huge keys --------------------------------

UNSTORABLE_KEYS = ["\ud800", "alert-\x00-1", "k" * (MAX_KEY_LENGTH + 1)]


@pytest.mark.parametrize("key", UNSTORABLE_KEYS, ids=["surrogate", "nul", "too-long"])
def test_a_key_no_backend_can_hold_is_refused_alike_everywhere(store: Store, key: str) -> None:
    # ValueError (the caller's bug), never StoreError (an outage: Codat would retry for 28 h)
    # nor UnicodeEncodeError from a driver.
    with pytest.raises(ValueError, match="store key"):
        claim(store, entry(key))
    with pytest.raises(ValueError, match="store key"):
        store.park(entry(key), reason="invalid")
    assert store.get(key) is None
    assert not store.renew(key, 1, lease=LEASE)
    assert not store.complete(key, 1)
    assert not store.release(key, 1, error="boom")
    assert store.find() == []


def test_the_longest_key_is_held(store: Store) -> None:
    key = "é" * MAX_KEY_LENGTH  # two bytes each in UTF-8
    assert store.complete(key, claim(store, entry(key)).token)
    record = store.get(key)
    assert record is not None
    assert record.state is State.DONE


def test_labels_and_reasons_with_nul_or_surrogates_are_kept_cleaned(store: Store) -> None:
    store.park(entry("bad-1", kind="Rule \ud800", company_id="co\x00mpany"), reason="x \udcff")
    token = claim(store, entry("alert-1", kind="\x00", company_id="\udfff")).token
    store.release("alert-1", token, error="RuntimeError: \ud800\x00")
    parked, failed = store.get("bad-1"), store.get("alert-1")
    assert parked is not None
    assert failed is not None
    assert (parked.kind, parked.company_id, parked.last_error) == (
        "Rule \ufffd",
        "co\ufffdmpany",
        "x \ufffd",
    )
    assert (failed.kind, failed.company_id, failed.last_error) == (
        "\ufffd",
        "\ufffd",
        "RuntimeError: \ufffd\ufffd",
    )
    assert _keys(store.find(kind="Rule \ud800")) == ["bad-1"]  # a filter is cleaned alike


def test_headers_with_nul_or_surrogates_round_trip(store: Store) -> None:
    headers = (("X-Odd", "a\x00b"), ("X-Surrogate", "\ud800"))
    claim(store, entry(headers=headers))
    record = store.get("alert-1")
    assert record is not None
    assert record.headers == headers


# --- retention on the queued path --------------------------------------------------------------


def _through_the_queue(store: Store, key: str) -> None:
    assert store.enqueue(entry(key)).status is ClaimStatus.QUEUED
    taken = store.take(key, lease=LEASE)
    assert store.complete(key, taken.token)


def test_the_queued_path_forgets_records_past_retention(store: Store, clock: FakeClock) -> None:
    """A worker-only process (LocalQueue, Celery) never claims nor parks: retention must still
    apply on enqueue, take and complete, or a long-running store keeps every record."""
    _through_the_queue(store, "old-1")
    _through_the_queue(store, "old-2")
    clock.advance(store.retention + 1)
    assert store.enqueue(entry("old-1")).status is ClaimStatus.QUEUED  # new again
    taken = store.take("old-1", lease=LEASE)
    assert (taken.status, taken.attempts) == (ClaimStatus.CLAIMED, 1)
    assert store.complete("old-1", taken.token)
    record = store.get("old-1")
    assert record is not None
    assert (record.state, record.first_seen) == (State.DONE, clock.now)
    if isinstance(store, MemoryStore):  # holds records in this process: sweeps by itself
        assert store.get("old-2") is None
    store.purge()
    assert store.get("old-2") is None
    assert [r.key for r in store.find()] == ["old-1"]


# --- close ------------------------------------------------------------------------------------


def test_a_closed_store_refuses_work_instead_of_reconnecting(store: Store) -> None:
    """A closed PostgresStore used to open a new pool on the next call, which then retried a
    stopped server in the background for the life of the process."""
    if isinstance(store, MemoryStore):
        pytest.skip("MemoryStore holds no connections to close")
    claim(store)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        claim(store, entry("alert-2"))
    with pytest.raises(StoreError, match="closed"):
        store.complete("alert-1", 1)
