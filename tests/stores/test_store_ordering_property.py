"""A property of every store's high-water marks, under concurrency: events of a few scopes,
delivered in a random order with random duplicates by several threads (and, for the stores
processes share, two forked processes), as Codat's independent retries deliver them.

What must hold, whatever the interleaving:

- every key is claimed (its hooks run) exactly once;
- an app that applies only the deliveries not judged stale ends with the newest event of
  every scope: the newest is never stale, and the mark ends on it;
- a stale verdict names a newer event of the same scope, received first;
- no delivery is judged in order if a newer event of its scope was claimed *before its own
  claim started* (the check that the mark moves atomically with the claim: a lost update of
  the mark would let such a delivery through).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codat_webhooks.stores import ClaimStatus, Entry, Store
from codat_webhooks.stores.marks import Mark

THREADS = 3
CHILDREN = 2
DEADLINE = 60.0


class Event(NamedTuple):
    key: str
    scope: int
    at: float


class Seen(NamedTuple):
    """One claim that handed a key over: its verdict and when the claim started and ended."""

    key: str
    stale: bool
    newer_key: str | None
    newer_at: float | None
    started: int
    ended: int


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[int, float]], list[int]]:
    """(scope, generatedDate) of each event, and the order its copies arrive in (indices)."""
    events = draw(
        st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 6).map(float)), min_size=2, max_size=10
        )
    )
    copies = draw(st.lists(st.integers(0, len(events) - 1), max_size=len(events)))
    order = draw(st.permutations(list(range(len(events))) + copies))
    return events, order


def entry_of(event: Event, prefix: str) -> Entry:
    mark = Mark(f"{prefix}:scope-{event.scope}", event.at)
    return Entry(event.key, "f" * 64, event.key.encode(), kind="connection.connected", mark=mark)


def deliver(store: Store, items: list[Event], prefix: str) -> list[Seen]:
    """What one thread does: claim each copy as Codat delivers it, complete what it claimed."""
    seen: list[Seen] = []
    for event in items:
        while True:
            started = time.monotonic_ns()
            claim = store.claim(entry_of(event, prefix), lease=30)
            ended = time.monotonic_ns()
            if claim.status is not ClaimStatus.IN_PROGRESS:
                break
            time.sleep(0.001)  # another thread holds it for a moment: Codat would retry
        if claim.claimed:
            order = claim.order
            assert order is not None
            seen.append(
                Seen(event.key, order.stale, order.newer_key, order.newer_at, started, ended)
            )
            assert store.complete(event.key, claim.token)
    return seen


def in_threads(store: Store, items: list[Event], prefix: str) -> list[Seen]:
    found: list[Seen] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(share: list[Event]) -> None:
        try:
            mine = deliver(store, share, prefix)
        except BaseException as exc:  # reported below, not lost in a thread
            errors.append(exc)
            return
        with lock:
            found.extend(mine)

    threads = [threading.Thread(target=work, args=(items[n::THREADS],)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return found


def in_processes(store: Store, items: list[Event], prefix: str, tmp: Path) -> list[Seen]:
    """Two forked children, each with its threads, sharing the store."""
    children: dict[int, Path] = {}
    for n in range(CHILDREN):
        report = tmp / f"{prefix}-{n}.json"
        pid = os.fork()
        if pid == 0:  # never returns into pytest
            status = 1
            try:
                report.write_text(json.dumps(in_threads(store, items[n::CHILDREN], prefix)))
                status = 0
            except BaseException:
                report.write_text(json.dumps({"crash": traceback.format_exc()}))
            finally:
                os._exit(status)
        children[pid] = report
    deadline = time.monotonic() + DEADLINE
    try:
        for pid in children:
            while not os.waitpid(pid, os.WNOHANG)[0]:
                assert time.monotonic() < deadline, "a child hung"
                time.sleep(0.005)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass  # reaped above
            except ProcessLookupError:
                pass
    found: list[Seen] = []
    for report in children.values():
        data: Any = json.loads(report.read_text())
        assert not isinstance(data, dict), data["crash"]
        found.extend(Seen(*row) for row in data)
    return found


def check(store: Store, events: list[Event], seen: list[Seen], prefix: str) -> None:
    by_key = {event.key: event for event in events}
    assert Counter(s.key for s in seen) == Counter(list(by_key))  # each key claimed once
    applied: dict[int, float] = {}
    for s in sorted(seen, key=lambda s: s.ended):  # an app applying what is not stale
        if not s.stale:
            event = by_key[s.key]
            applied[event.scope] = max(applied.get(event.scope, event.at), event.at)
    newest: dict[int, float] = {}
    for event in events:
        newest[event.scope] = max(newest.get(event.scope, event.at), event.at)
    assert applied == newest
    for scope, at in newest.items():
        mark = store.high_water(f"{prefix}:scope-{scope}")
        assert mark is not None
        assert mark.at == at
    for s in seen:
        event = by_key[s.key]
        if s.stale:
            assert s.newer_key is not None
            newer = by_key[s.newer_key]
            assert (newer.scope, newer.at) == (event.scope, s.newer_at)
            assert newer.at > event.at
            continue
        for other in seen:  # nothing newer of its scope was claimed before it started
            later = by_key[other.key]
            if later.scope == event.scope and later.at > event.at:
                assert not other.ended < s.started, (s, other)


def events_of(drawn: tuple[list[tuple[int, float]], list[int]]) -> tuple[list[Event], list[Event]]:
    raw_events, order = drawn
    events = [
        Event(f"k{n}-{uuid.uuid4().hex[:8]}", scope, at) for n, (scope, at) in enumerate(raw_events)
    ]
    return events, [events[index] for index in order]


FAST = settings(
    # CI replays one fixed sequence, so a red run can be reproduced there.
    max_examples=12 if "CI" in os.environ else 20,
    derandomize="CI" in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FAST
@given(drawn=deliveries())
def test_threads_apply_only_the_newest_per_scope_each_key_once(
    store: Store, drawn: tuple[list[tuple[int, float]], list[int]]
) -> None:
    prefix = uuid.uuid4().hex[:10]
    events, arriving = events_of(drawn)
    check(store, events, in_threads(store, arriving, prefix), prefix)


@settings(FAST, max_examples=4 if "CI" in os.environ else 6)
@given(drawn=deliveries())
def test_two_processes_apply_only_the_newest_per_scope_each_key_once(
    durable_store: Store, drawn: tuple[list[tuple[int, float]], list[int]], tmp_path: Path
) -> None:
    prefix = uuid.uuid4().hex[:10]
    events, arriving = events_of(drawn)
    check(durable_store, events, in_processes(durable_store, arriving, prefix, tmp_path), prefix)


@pytest.fixture
def durable_store(durable_backend: str, make_store: Any) -> Store:
    store: Store = make_store(durable_backend)
    return store
