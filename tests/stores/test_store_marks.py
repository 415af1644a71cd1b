"""The ordering contract: every backend keeps per-scope high-water marks exactly as
:func:`codat_webhooks.stores.marks.judge` decides, moved with the claim or the enqueue.

Runs once per backend (memory, sqlite, redis, postgres) on a fake clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from codat_webhooks.stores import ClaimStatus, Entry, Store
from codat_webhooks.stores.marks import FRESH, HighWater, Mark, Verdict

if TYPE_CHECKING:
    from conftest import FakeClock

LEASE = 10.0
SCOPE = "connection:company-a:connection-1"


def marked(key: str, at: float | None, scope: str = SCOPE, **chain: str) -> Entry:
    mark = Mark(scope, at, chain.get("old"), chain.get("new"))
    return Entry(key, f"{key:f<64}"[:64], body=key.encode(), kind="connection.connected", mark=mark)


def claim_order(store: Store, item: Entry, force: bool = False) -> Verdict | None:
    result = store.claim(item, lease=LEASE, force=force)
    if result.claimed:
        assert store.complete(item.key, result.token)
    return result.order


def test_a_first_event_is_in_order_and_becomes_the_mark(store: Store, clock: FakeClock) -> None:
    assert claim_order(store, marked("a", 100.0)) == FRESH
    assert store.high_water(SCOPE) == HighWater(SCOPE, 100.0, "a", None, False, clock.now)
    assert store.verdict("a") is None


def test_an_older_event_after_a_newer_one_is_stale_and_names_it(store: Store) -> None:
    claim_order(store, marked("new", 200.5))
    verdict = claim_order(store, marked("old", 100.25))
    assert verdict == Verdict(True, "new", 200.5, False)
    assert store.verdict("old") == verdict  # kept for events/show
    mark = store.high_water(SCOPE)
    assert mark is not None
    assert (mark.key, mark.at) == ("new", 200.5)  # a stale event never moves the mark


def test_a_newer_event_moves_the_mark(store: Store) -> None:
    claim_order(store, marked("a", 100.0))
    assert claim_order(store, marked("b", 100.001)) == FRESH
    mark = store.high_water(SCOPE)
    assert mark is not None
    assert (mark.key, mark.at) == ("b", 100.001)


def test_equal_timestamps_are_not_stale_and_keep_the_first_key(store: Store) -> None:
    claim_order(store, marked("a", 100.0))
    assert claim_order(store, marked("b", 100.0)) == FRESH
    mark = store.high_water(SCOPE)
    assert mark is not None
    assert mark.key == "a"


def test_scopes_are_independent(store: Store) -> None:
    claim_order(store, marked("a", 200.0))
    assert claim_order(store, marked("b", 100.0, scope="connection:other")) == FRESH


def test_duplicates_and_busy_keys_neither_judge_nor_move_the_mark(store: Store) -> None:
    claim_order(store, marked("a", 100.0))
    claim_order(store, marked("b", 200.0))
    assert store.claim(marked("a", 100.0), lease=LEASE).status is ClaimStatus.DUPLICATE
    assert store.claim(marked("a", 100.0), lease=LEASE).order is None
    busy = marked("c", 300.0)
    assert store.claim(busy, lease=LEASE).claimed
    assert store.claim(busy, lease=LEASE).order is None  # in progress
    mark = store.high_water(SCOPE)
    assert mark is not None
    assert mark.key == "c"


def test_a_retry_of_a_failed_stale_key_is_stale_again(store: Store) -> None:
    claim_order(store, marked("new", 200.0))
    first = store.claim(marked("old", 100.0), lease=LEASE)
    assert first.order is not None
    assert first.order.stale
    assert store.release("old", first.token, error="boom")
    again = store.claim(marked("old", 100.0), lease=LEASE)
    assert again.claimed
    assert again.order == first.order


def test_a_forced_claim_of_a_done_stale_key_is_judged_again(store: Store) -> None:
    claim_order(store, marked("new", 200.0))
    claim_order(store, marked("old", 100.0))
    verdict = claim_order(store, marked("old", 100.0), force=True)
    assert verdict is not None
    assert verdict.stale


def test_the_key_holding_the_mark_is_in_order_when_claimed_again(store: Store) -> None:
    first = store.claim(marked("a", 100.0), lease=LEASE)
    assert store.release("a", first.token, error="boom")
    assert claim_order(store, marked("a", 100.0)) == FRESH


def test_status_chain_sets_gap_when_old_status_breaks_it(store: Store) -> None:
    def chain(key: str, old: str, new: str) -> Verdict | None:
        return claim_order(store, marked(key, None, scope="dc:x", old=old, new=new))

    assert chain("1", "PendingAuth", "Linked") == FRESH
    assert chain("2", "Linked", "Unlinked") == FRESH
    gapped = chain("3", "Deauthorized", "Linked")  # nobody told us Unlinked -> Deauthorized
    assert gapped == Verdict(gap=True)
    assert store.verdict("3") == Verdict(gap=True)
    mark = store.high_water("dc:x")
    assert mark is not None
    assert (mark.key, mark.status, mark.gap) == ("3", "Linked", True)
    assert chain("4", "Linked", "Unlinked") == FRESH  # the chain goes on from the gapped one
    assert store.verdict("4") is None


def test_a_gapped_key_retried_is_still_gapped(store: Store) -> None:
    claim_order(store, marked("1", None, scope="dc:y", old="PendingAuth", new="Linked"))
    gapped = store.claim(marked("2", None, scope="dc:y", old="Unlinked", new="Linked"), lease=10)
    assert gapped.order == Verdict(gap=True)
    assert store.release("2", gapped.token, error="boom")
    again = store.claim(marked("2", None, scope="dc:y", old="Unlinked", new="Linked"), lease=10)
    assert again.order == Verdict(gap=True)


def test_a_status_chain_past_retention_starts_again_without_a_gap(
    store: Store, clock: FakeClock
) -> None:
    claim_order(store, marked("1", None, scope="dc:z", old="PendingAuth", new="Linked"))
    clock.advance(store.retention + 1)
    assert claim_order(store, marked("2", None, scope="dc:z", old="Unlinked", new="Linked")) == (
        FRESH
    )
    mark = store.high_water("dc:z")
    assert mark is not None
    assert (mark.key, mark.status, mark.gap, mark.last_seen) == ("2", "Linked", False, clock())


def test_a_status_change_without_statuses_never_breaks_the_chain(store: Store) -> None:
    def chain(key: str, **statuses: str) -> Verdict | None:
        return claim_order(store, marked(key, None, scope="dc:w", **statuses))

    assert chain("1", old="PendingAuth") == FRESH  # no NewStatus: the mark keeps none
    assert chain("2", old="Linked", new="Unlinked") == FRESH  # nothing to compare with
    assert chain("3", new="Linked") == FRESH  # no OldStatus
    assert chain("4", old="Linked", new="Unlinked") == FRESH
    mark = store.high_water("dc:w")
    assert mark is not None
    assert (mark.key, mark.status, mark.gap) == ("4", "Unlinked", False)


def test_the_key_holding_a_chain_mark_keeps_its_verdict_and_the_mark(
    store: Store, clock: FakeClock
) -> None:
    claim_order(store, marked("1", None, scope="dc:v", old="PendingAuth", new="Linked"))
    gapped = store.claim(marked("2", None, scope="dc:v", old="Unlinked", new="Linked"), lease=10)
    assert store.release("2", gapped.token, error="boom")
    before = store.high_water("dc:v")
    clock.advance(5)
    again = store.claim(marked("2", None, scope="dc:v", old="Unlinked", new="Linked"), lease=10)
    assert again.order == Verdict(gap=True)
    assert store.high_water("dc:v") == before  # not written again: last_seen unchanged


def test_enqueue_judges_and_a_worker_rechecks(store: Store) -> None:
    older, newer = marked("old", 100.0), marked("new", 200.0)
    first = store.enqueue(older)
    assert (first.status, first.order) == (ClaimStatus.QUEUED, FRESH)
    assert store.enqueue(newer).order == FRESH
    assert store.enqueue(older).order is None  # a duplicate: judged when first enqueued
    assert older.mark is not None
    assert newer.mark is not None
    # the older one waited while a newer one arrived: the worker finds it stale
    assert store.recheck("old", older.mark) == Verdict(True, "new", 200.0, False)
    assert store.verdict("old") == Verdict(True, "new", 200.0, False)
    assert store.recheck("new", newer.mark) == FRESH


def test_marks_past_retention_are_forgotten_and_purged(store: Store, clock: FakeClock) -> None:
    claim_order(store, marked("new", 200.0))
    claim_order(store, marked("old", 100.0))
    clock.advance(store.retention + 1)
    assert claim_order(store, marked("older", 50.0)) == FRESH  # the mark expired
    clock.advance(store.retention + 1)
    store.purge()
    assert store.high_water(SCOPE) is None
    assert store.verdict("old") is None


def test_purge_with_a_shorter_window_removes_marks_with_records(
    store: Store, clock: FakeClock
) -> None:
    claim_order(store, marked("new", 200.0))
    claim_order(store, marked("old", 100.0))
    clock.advance(10)
    store.purge(older_than=5)
    assert store.get("new") is None
    assert store.high_water(SCOPE) is None
    assert store.verdict("old") is None


@pytest.mark.parametrize("scope", ["connection:é", "x" * 200])
def test_scope_text_round_trips(store: Store, scope: str) -> None:
    claim_order(store, marked("a", 1.0, scope=scope))
    mark = store.high_water(scope)
    assert mark is not None
    assert mark.key == "a"


def test_verdicts_reads_many_keys_at_once(store: Store) -> None:
    claim_order(store, marked("new", 200.0))
    for index in range(3):
        claim_order(store, marked(f"old-{index}", 100.0 + index))
    found = store.verdicts(["new", "old-0", "old-2", "unknown", "x" * 300])
    assert sorted(found) == ["old-0", "old-2"]
    assert all(verdict.stale and verdict.newer_key == "new" for verdict in found.values())
