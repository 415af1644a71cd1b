"""Every backend performs the same state machine: random sequences of every operation, run on
each store and on a MemoryStore (which applies ``stores/machine.py`` directly), must give the
same answers and leave the same records behind.

This is what keeps the SQL of ``stores/sql.py`` and the Lua of ``stores/lua.py`` equal to the
decisions in ``stores/machine.py``; the other contract tests pin the decisions themselves.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, NamedTuple

import pytest

from codat_webhooks.stores import Claim, Entry, MemoryStore, Record, State, Store, machine
from codat_webhooks.stores.base import storable_text

if TYPE_CHECKING:
    from conftest import FakeClock, StoreFactory

LEASE = 10.0
KEYS = ("k1", "k2")
HOSTILE = "bad \ud800 and \x00 " + "x" * 64


def _entry(rng: random.Random, key: str) -> Entry:
    return Entry(
        key,
        rng.choice(("f1", "f1", "f1", "f2")),  # mostly the same body; sometimes a conflict
        body=rng.choice((b"", b"{}", b'{"x": 1}')),
        headers=rng.choice(((), (("A", "1"),), (("A", "\ud800"),))),
        kind=rng.choice((None, "", "Data sync completed", HOSTILE)),
        company_id=rng.choice((None, "company-a")),
        verified_by=rng.choice((None, "authorization-1")),
    )


class Step(NamedTuple):
    """One call of a store method, by name, so the same call runs on both stores."""

    method: str
    args: tuple[object, ...] = ()
    options: dict[str, object] = {}  # noqa: RUF012 - never mutated

    def __call__(self, store: Store) -> object:
        answer = getattr(store, self.method)(*self.args, **self.options)
        return sorted(answer) if self.method == "due" else answer


def _steps(rng: random.Random, clock: FakeClock, n: int) -> list[Step]:
    steps: list[Step] = []
    for _ in range(n):
        key = rng.choice(KEYS)
        token = rng.randint(0, 4)
        item = _entry(rng, key)
        due = clock.now + rng.choice((0.0, 5.0, 50.0))
        choices = [
            Step("claim", (item,), {"lease": LEASE, "force": rng.random() < 0.2}),
            Step("enqueue", (item,)),
            Step("take", (key,), {"lease": LEASE}),
            Step("take_record", (key,), {"lease": LEASE}),
            Step("renew", (key, token), {"lease": LEASE}),
            Step("complete", (key, token)),
            Step("release", (key, token), {"error": HOSTILE}),
            Step("defer", (key, token), {"due": due, "error": HOSTILE}),
            Step("park", (item,), {"reason": HOSTILE}),
            Step("purge", (), {"older_than": rng.choice((0.0, 20.0, 100.0))}),
            Step("due"),
            Step("counts"),
        ]
        steps.append(rng.choice(choices))
    return steps


def _comparable(answer: object) -> object:
    """Claims compare with ``retry_after`` rounded (Lua prints it with 14 digits)."""
    if isinstance(answer, Claim):
        return answer._replace(retry_after=round(answer.retry_after, 6))
    if isinstance(answer, tuple):
        return tuple(_comparable(part) for part in answer)
    return answer


@pytest.mark.parametrize("seed", range(6))
def test_every_backend_answers_and_stores_what_the_machine_decides(
    backend: str, make_store: StoreFactory, clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)
    # A retention far longer than the run, so MemoryStore's sweeps never evict a record that
    # a durable store keeps until it is purged (expiry has contract tests of its own).
    store = make_store(backend, clock=clock, retention=1e6)
    reference = MemoryStore(clock=clock, retention=1e6)
    for number, step in enumerate(_steps(rng, clock, 80)):
        expected, got = _comparable(step(reference)), _comparable(step(store))
        assert got == expected, f"step {number}: {step}"
        for key in KEYS:
            assert store.get(key) == reference.get(key), f"step {number}: {step}; record {key}"
        clock.advance(rng.choice((0.0, 1.0, 4.0, 11.0)))


def test_moves_are_fenced_and_clean_their_text() -> None:
    held = Record("k", State.PROCESSING, "f", 1, 0.0, 0.0, token=3, lease_expires=9.0)
    assert machine.move(held, 2, machine.completion(5.0)) is None  # superseded token
    assert machine.move(held._replace(state=State.DONE), 3, machine.renewal(5, 1)) is None
    failed = machine.move(held, 3, machine.release(5.0, HOSTILE))
    assert failed == held._replace(
        state=State.FAILED, last_seen=5.0, lease_expires=0.0, last_error=storable_text(HOSTILE)
    )
    queued = machine.move(held, 3, machine.deferral(5.0, 60.0, HOSTILE))
    assert queued is not None
    assert (queued.state, queued.lease_expires, queued.last_error) == (
        State.QUEUED,
        60.0,
        storable_text(HOSTILE),
    )
    renewed = machine.move(held, 3, machine.renewal(5.0, 10.0))
    assert renewed == held._replace(lease_expires=15.0)
