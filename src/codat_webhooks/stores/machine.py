"""The store state machine: every transition of a delivery record, decided in this one file.

A store keeps one :class:`~codat_webhooks.stores.Record` per delivery key. Its ``state`` is
``queued``, ``processing``, ``done``, ``failed`` or ``parked``, and moves like this:

=================================  ============  ===============================================
from                               operation     to
=================================  ============  ===============================================
none, or past retention            claim         ``PROCESSING``, token 1 (``CLAIMED``)
``FAILED``/``PARKED``, lease out   claim         ``PROCESSING``, token + 1 (``CLAIMED``)
``DONE``                           claim         ``DONE``, touched (``DUPLICATE``); forced:
                                                 ``PROCESSING``, token + 1
none, ``FAILED``, ``PARKED``       enqueue       ``QUEUED``, attempts 0, due now (``QUEUED``)
``QUEUED``, lease out              take          ``PROCESSING``, token + 1 (``CLAIMED``)
``PROCESSING`` held by the token   renew         ``PROCESSING``, lease extended
``PROCESSING`` held by the token   complete      ``DONE``
``PROCESSING`` held by the token   release       ``FAILED``, with the error
``PROCESSING`` held by the token   defer         ``QUEUED``, due later, with the error
none, ``FAILED``, ``PARKED``       park          ``PARKED``, with the reason
last seen before the cutoff        purge         deleted, unless a lease is alive
=================================  ============  ===============================================

- **claim** (inline dispatch): a key never seen, one past retention, a ``FAILED`` or ``PARKED``
  one, or a ``PROCESSING`` one whose lease ran out becomes ``PROCESSING`` under a new fencing
  token; ``DONE`` stays done (``DUPLICATE``, last_seen touched) unless forced; a live lease is
  ``IN_PROGRESS``; another body under a known key is a ``CONFLICT`` and changes nothing.
- **enqueue** (queued dispatch): a new, ``FAILED`` or ``PARKED`` key becomes ``QUEUED`` with its
  attempts reset and due now; anything else already ours is a ``DUPLICATE``.
- **take** (a worker): ``QUEUED``, or ``PROCESSING`` with a dead lease, is handed over exactly
  as claim hands over a key; nothing to run (done, failed, parked, unknown) is a ``DUPLICATE``.
- **renew, complete, release, defer** act only on a record the caller still holds: state
  ``PROCESSING`` and the caller's token. Each is a :class:`Move`: renew moves the lease;
  complete ends in ``DONE`` (error cleared), release in ``FAILED``, defer back in ``QUEUED``
  due at a later time. A caller whose token was superseded is *fenced out*: nothing changes.
- **park** keeps an authenticated but invalid delivery as ``PARKED`` (a dead letter); a
  ``FAILED`` or ``PARKED`` one is re-parked, a ``DONE`` or ``PROCESSING`` one only touched.
- **purge** deletes records last seen before a cutoff (default: ``retention`` ago), never a
  ``PROCESSING`` one whose lease is alive. A record past retention is treated as absent by
  claim and enqueue even before a purge removes it.

Fencing tokens grow by one at every hand-over and survive enqueue, so a worker of an earlier
round can never complete a later one. A lease is ``lease_expires`` in Unix seconds; a
``QUEUED`` record's ``lease_expires`` is the time it is due. ``last_seen`` starts the
retention period again on every write but renew.

Who performs the decisions: :class:`MemoryStore` applies them to its dict; SQLite and
PostgreSQL read a row under a lock, decide here and write the decided record, or run one
statement from :mod:`.sql` that is the same decision over a column (:class:`Move`, the
hand-over of ``take``, :data:`PURGE_WHERE`); Redis runs Lua scripts that make the same
decisions atomically. ``tests/stores/test_store_machine.py`` drives every backend through
random sequences of operations and checks each answers, and stores, what MemoryStore does.

History: a transition may carry a :class:`~.history.HistoryEntry` (a :class:`Move`'s
``attempt``, the ``attempt`` of claim, enqueue and park), which the backend appends to the
key's history in the same operation; which entry a claim or enqueue appends follows from its
answer, decided once in :func:`.history.answered` (and its table in the Lua scripts). The
decisions above never read the history: it records them.

What a store writes passes through :class:`~codat_webhooks.stores.Store`'s public methods
first: keys are guarded (:func:`~codat_webhooks.stores.base.key_problem`), entries and
every error or reason text cleaned (:func:`~codat_webhooks.stores.base.storable_text`), so a
backend's ``_claim``, ``_move`` and the rest only ever see text every backend can hold.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .history import HistoryEntry
from .history import cleaned as clean_entry
from .marks import FRESH, Verdict
from .records import Claim, ClaimStatus, Entry, Record, State, storable_text

__all__ = [
    "PURGE_WHERE",
    "TAKEABLE",
    "Move",
    "claim",
    "completion",
    "deferral",
    "enqueue",
    "first_claim",
    "in_scope",
    "is_due",
    "move",
    "park",
    "purgeable",
    "release",
    "renewal",
    "take",
]


_FIRST_CLAIM = Claim(ClaimStatus.CLAIMED, token=1, attempts=1)
"""The answer for a key never seen before: every new delivery gets it, so it is built once."""


def _record_of(
    entry: Entry,
    state: State,
    attempts: int,
    first_seen: float,
    now: float,
    token: int,
    lease_expires: float,
) -> Record:
    """A record of everything ``entry`` brings, last seen ``now``, with no error yet."""
    return Record(
        entry.key,
        state,
        entry.fingerprint,
        attempts,
        first_seen,
        now,  # last_seen
        entry.kind,
        entry.company_id,
        entry.body,
        entry.headers,
        None,  # last_error
        token,
        lease_expires,
        entry.verified_by,
    )


def _forgotten(record: Record | None, now: float, retention: float) -> bool:
    """Whether ``record`` is absent or past retention, so a claim treats it as purged."""
    return record is None or now - record.last_seen > retention


# --- claim, enqueue, take: the answer and the record to store (None: store nothing) ----------


_FIRST_CLAIM_IN_ORDER = _FIRST_CLAIM._replace(order=FRESH)
"""The answer for most scoped deliveries: a new key, newer than its scope's mark."""


def in_scope(claim: Claim, verdict: Verdict) -> Claim:
    """``claim`` with its place in its ordering scope (see :mod:`.marks`)."""
    if claim is _FIRST_CLAIM and verdict is FRESH:
        return _FIRST_CLAIM_IN_ORDER
    return claim._replace(order=verdict)


def first_claim(entry: Entry, now: float, lease: float) -> tuple[Claim, Record]:
    """The answer for a key never seen (or long expired), and its new record.

    A store that can insert only-if-absent atomically (``INSERT ... ON CONFLICT DO NOTHING``)
    writes this record without reading first, and falls back to :func:`claim` if the key exists.
    """
    return _FIRST_CLAIM, _record_of(entry, State.PROCESSING, 1, now, now, 1, now + lease)


def claim(
    record: Record | None,
    entry: Entry,
    *,
    now: float,
    lease: float,
    force: bool,
    retention: float,
) -> tuple[Claim, Record | None]:
    """The answer to :meth:`Store.claim`, and the record to store."""
    if _forgotten(record, now, retention):
        return first_claim(entry, now, lease)
    assert record is not None
    if record.fingerprint != entry.fingerprint:
        return Claim(ClaimStatus.CONFLICT, attempts=record.attempts), None
    if record.state is State.DONE and not force:
        return Claim(ClaimStatus.DUPLICATE, attempts=record.attempts), record._replace(
            last_seen=now
        )
    refreshed = record._replace(
        kind=entry.kind or record.kind,
        company_id=entry.company_id or record.company_id,
        body=entry.body or record.body,
        headers=entry.headers or record.headers,
        verified_by=entry.verified_by or record.verified_by,
    )
    return _hand_over(refreshed, now=now, lease=lease)


def _hand_over(record: Record, *, now: float, lease: float) -> tuple[Claim, Record | None]:
    """``IN_PROGRESS`` while someone's lease is alive; else the record under a new token.

    The SQL stores' ``take`` statement (:meth:`.sql.Statements.take`) is this hand-over as one
    UPDATE for a record that may be taken; the Lua ``hand_over`` function is the same.
    """
    if record.state is State.PROCESSING and record.lease_expires > now:
        retry_after = record.lease_expires - now
        return Claim(
            ClaimStatus.IN_PROGRESS, attempts=record.attempts, retry_after=retry_after
        ), None
    claimed = record._replace(
        state=State.PROCESSING,
        attempts=record.attempts + 1,
        last_seen=now,
        token=record.token + 1,
        lease_expires=now + lease,
    )
    return Claim(ClaimStatus.CLAIMED, token=claimed.token, attempts=claimed.attempts), claimed


def enqueue(
    record: Record | None, entry: Entry, *, now: float, retention: float
) -> tuple[Claim, Record | None]:
    """The answer to :meth:`Store.enqueue`, and the record to store."""
    if _forgotten(record, now, retention):
        first_seen, token = now, 0
    else:
        assert record is not None
        if record.fingerprint != entry.fingerprint:
            return Claim(ClaimStatus.CONFLICT, attempts=record.attempts), None
        if record.state not in (State.FAILED, State.PARKED):
            return Claim(ClaimStatus.DUPLICATE, attempts=record.attempts, state=record.state), None
        first_seen, token = record.first_seen, record.token
    # attempts 0: the worker's count starts again; the token is kept, so a stale worker of an
    # earlier round stays fenced out; a queued record's lease_expires is the time it is due.
    queued = _record_of(entry, State.QUEUED, 0, first_seen, now, token, now)
    return Claim(ClaimStatus.QUEUED, token=token), queued


TAKEABLE = (State.QUEUED, State.PROCESSING)
"""The states :func:`take` may hand over (a ``PROCESSING`` one only once its lease is dead)."""


def take(record: Record | None, *, now: float, lease: float) -> tuple[Claim, Record | None]:
    """The answer to :meth:`Store.take`, and the record to store."""
    if record is None or record.state not in TAKEABLE:
        return Claim(ClaimStatus.DUPLICATE, attempts=0 if record is None else record.attempts), None
    return _hand_over(record, now=now, lease=lease)


# --- renew, complete, release, defer: moves of a record its caller still holds ----------------


class Move(NamedTuple):
    """What renew, complete, release or defer writes to a record its caller holds.

    ``changes`` maps fields of :class:`Record` (besides ``state``) to their new values; a
    backend writes exactly these (SQL: one fenced UPDATE; Redis: one script), so no backend
    decides which fields a transition touches. Built only by the four functions below, which
    clean the error text, so a move never carries text a backend cannot hold.
    """

    state: State
    changes: dict[str, Any]
    attempt: HistoryEntry | None = None
    """The history entry to append with the move (see :mod:`.history`), if any."""


def renewal(now: float, lease: float) -> Move:
    """The lease runs ``lease`` seconds from ``now``; nothing else changes."""
    return Move(State.PROCESSING, {"lease_expires": now + lease})


def completion(now: float, attempt: HistoryEntry | None = None) -> Move:
    """Every hook returned: ``DONE``, no lease, no error; retention starts ``now``."""
    changes = {"last_seen": now, "lease_expires": 0.0, "last_error": None}
    return Move(State.DONE, changes, None if attempt is None else clean_entry(attempt))


def release(now: float, error: str, attempt: HistoryEntry | None = None) -> Move:
    """A hook raised: ``FAILED`` with the error, so the next delivery (or enqueue) runs it."""
    cleaned = storable_text(error)
    changes = {"last_seen": now, "lease_expires": 0.0, "last_error": cleaned}
    return Move(State.FAILED, changes, None if attempt is None else clean_entry(attempt))


def deferral(now: float, due: float, error: str, attempt: HistoryEntry | None = None) -> Move:
    """A hook raised and a retry is left: back to ``QUEUED``, due at ``due``."""
    cleaned = storable_text(error)
    changes = {"last_seen": now, "lease_expires": due, "last_error": cleaned}
    return Move(State.QUEUED, changes, None if attempt is None else clean_entry(attempt))


def move(record: Record | None, token: int, change: Move) -> Record | None:
    """``record`` after ``change``, or ``None`` if ``token`` no longer holds it (fenced out)."""
    if record is None or record.token != token or record.state is not State.PROCESSING:
        return None
    return record._replace(state=change.state, **change.changes)


# --- park ------------------------------------------------------------------------------------


def park(record: Record | None, entry: Entry, *, now: float, reason: str) -> Record | None:
    """The record after parking ``entry``: new, re-parked, or only touched if done/processing.

    ``None`` (nothing written) when the key holds another body: that record is another
    delivery's, so :meth:`Store.park` keeps this body beside it, under :func:`conflict_key`.
    """
    if record is not None and record.fingerprint != entry.fingerprint:
        return None
    if record is None:
        return _record_of(entry, State.PARKED, 1, now, now, 0, 0.0)._replace(last_error=reason)
    if record.state in (State.PARKED, State.FAILED):
        return record._replace(
            state=State.PARKED, attempts=record.attempts + 1, last_seen=now, last_error=reason
        )
    return record._replace(last_seen=now)


# --- purge and due: which records a sweep selects -------------------------------------------


def purgeable(record: Record, *, cutoff: float, now: float) -> bool:
    """Whether :meth:`Store.purge` deletes ``record`` (see :data:`PURGE_WHERE`)."""
    return record.last_seen < cutoff and not (
        record.state is State.PROCESSING and record.lease_expires > now
    )


PURGE_WHERE = "last_seen < {cutoff} AND NOT (state = 'processing' AND lease_expires > {now})"
""":func:`purgeable` as a SQL condition, for the SQL stores' DELETE (and the Redis purge)."""


def is_due(record: Record, *, cutoff: float) -> bool:
    """Whether :meth:`Store.due` lists ``record``: waiting, or a dead worker's, since ``cutoff``."""
    return record.state in TAKEABLE and record.lease_expires <= cutoff
