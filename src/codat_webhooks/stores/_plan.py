"""The claim and park decisions of the protocol as pure functions over one record.

SQL stores read the row under a lock, ask these functions what the answer is and what to
write, and write it back, so they decide exactly as :class:`MemoryStore` does without
repeating its rules. (Redis decides inside Lua scripts, for atomicity without a lock.)
"""

from __future__ import annotations

import json

from pydantic_core import PydanticSerializationError, to_json

from ..errors import StoreError
from .base import Claim, ClaimStatus, Entry, Record, State

__all__ = [
    "Row",
    "decode_headers",
    "encode_headers",
    "plan_claim",
    "plan_enqueue",
    "plan_first_claim",
    "plan_park",
    "plan_take",
    "record_from_row",
    "record_to_row",
]

Row = tuple[object, ...]


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
        now,
        entry.kind,
        entry.company_id,
        entry.body,
        entry.headers,
        None,
        token,
        lease_expires,
        entry.verified_by,
    )


def plan_first_claim(entry: Entry, now: float, lease: float) -> tuple[Claim, Record]:
    """The answer for a key never seen (or long expired), and its new record.

    A store that can insert only-if-absent atomically (SQLite's ``INSERT OR IGNORE``) writes
    this record without reading first, and falls back to :func:`plan_claim` when the key exists.
    """
    # A first claim (or one of a key whose record outlived retention): a new history.
    fresh = _record_of(entry, State.PROCESSING, 1, now, now, 1, now + lease)
    return _FIRST_CLAIM, fresh


def plan_claim(
    record: Record | None,
    entry: Entry,
    *,
    now: float,
    lease: float,
    force: bool,
    retention: float,
) -> tuple[Claim, Record | None]:
    """The answer to a claim, and the record to store (``None``: store nothing)."""
    if record is None or now - record.last_seen > retention:  # expired: as if purged
        return plan_first_claim(entry, now, lease)
    if record.fingerprint != entry.fingerprint:
        return Claim(ClaimStatus.CONFLICT, attempts=record.attempts), None
    if record.state is State.DONE and not force:
        touched = Record._make((*record[:5], now, *record[6:]))  # last_seen; see memory.py
        return Claim(ClaimStatus.DUPLICATE, attempts=record.attempts), touched
    refreshed = record._replace(
        kind=entry.kind or record.kind,
        company_id=entry.company_id or record.company_id,
        body=entry.body or record.body,
        headers=entry.headers or record.headers,
        verified_by=entry.verified_by or record.verified_by,
    )
    return _hand_over(refreshed, now=now, lease=lease)


def _hand_over(record: Record, *, now: float, lease: float) -> tuple[Claim, Record | None]:
    """``IN_PROGRESS`` while someone's lease is alive; else the record under a new token."""
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


def plan_enqueue(
    record: Record | None, entry: Entry, *, now: float, retention: float
) -> tuple[Claim, Record | None]:
    """The answer to :meth:`Store.enqueue`, and the record to store (``None``: nothing)."""
    if record is not None and now - record.last_seen <= retention:
        if record.fingerprint != entry.fingerprint:
            return Claim(ClaimStatus.CONFLICT, attempts=record.attempts), None
        if record.state not in (State.FAILED, State.PARKED):
            return Claim(ClaimStatus.DUPLICATE, attempts=record.attempts), None
        token = record.token
    else:
        record, token = None, 0
    first_seen = now if record is None else record.first_seen
    # attempts 0: the worker's count starts again; the token is kept, so a stale worker of an
    # earlier round stays fenced out; a queued record's lease_expires is the time it is due.
    queued = _record_of(entry, State.QUEUED, 0, first_seen, now, token, now)
    return Claim(ClaimStatus.QUEUED, token=token), queued


def plan_take(record: Record | None, *, now: float, lease: float) -> tuple[Claim, Record | None]:
    """The answer to :meth:`Store.take`, and the record to store (``None``: nothing)."""
    if record is None or record.state not in (State.QUEUED, State.PROCESSING):
        return Claim(ClaimStatus.DUPLICATE, attempts=0 if record is None else record.attempts), None
    return _hand_over(record, now=now, lease=lease)


def plan_park(record: Record | None, entry: Entry, *, now: float, reason: str) -> Record:
    """The record after parking ``entry``: new, re-parked, or only touched if done/processing."""
    if record is None:
        return Record(
            key=entry.key,
            state=State.PARKED,
            fingerprint=entry.fingerprint,
            attempts=1,
            first_seen=now,
            last_seen=now,
            kind=entry.kind,
            company_id=entry.company_id,
            body=entry.body,
            headers=entry.headers,
            last_error=reason,
        )
    if record.state in (State.PARKED, State.FAILED):
        return record._replace(
            state=State.PARKED,
            attempts=record.attempts + 1,
            last_seen=now,
            last_error=reason,
        )
    return record._replace(last_seen=now)


def encode_headers(headers: tuple[tuple[str, str], ...]) -> str:
    """Compact JSON pairs; pydantic-core writes them several times faster than ``json``.

    A value holding a lone surrogate has no UTF-8 form, so pydantic-core refuses it; ``json``
    writes it as its ``\\ud800`` escape, which every store can keep and reads back exactly.
    """
    try:
        return to_json(headers).decode()
    except PydanticSerializationError:
        return json.dumps(headers, separators=(",", ":"))


def decode_headers(text: str | None) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    return tuple((str(name), str(value)) for name, value in json.loads(text))


def record_from_row(row: Row) -> Record:
    """A record from a SQL row in column order (the SQLite and PostgreSQL tables agree).

    A row of another shape is a :class:`StoreError`, never a record: a connection that got
    another statement's reply (one shared across a fork, say) must not hand a hook the wrong
    delivery.
    """
    try:
        (key, state, fingerprint, attempts, first_seen, last_seen, kind, company_id, body,
         headers, last_error, token, lease_expires, verified_by) = row  # fmt: skip
        return Record(
            key=_text(key),
            state=State(state),
            fingerprint=_text(fingerprint),
            attempts=int(attempts),  # type: ignore[call-overload]
            first_seen=float(first_seen),  # type: ignore[arg-type]
            last_seen=float(last_seen),  # type: ignore[arg-type]
            kind=None if kind is None else _text(kind),
            company_id=None if company_id is None else _text(company_id),
            body=bytes(body),  # type: ignore[call-overload]
            headers=decode_headers(_text(headers)),
            last_error=None if last_error is None else _text(last_error),
            token=int(token),  # type: ignore[call-overload]
            lease_expires=float(lease_expires),  # type: ignore[arg-type]
            verified_by=None if verified_by is None else _text(verified_by),
        )
    except (TypeError, ValueError) as exc:
        raise StoreError(f"the store returned a row that is not a delivery record: {exc}") from exc


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def record_to_row(record: Record) -> Row:
    return (
        record.key,
        record.state.value,
        record.fingerprint,
        record.attempts,
        record.first_seen,
        record.last_seen,
        record.kind,
        record.company_id,
        record.body,
        encode_headers(record.headers),
        record.last_error,
        record.token,
        record.lease_expires,
        record.verified_by,
    )
