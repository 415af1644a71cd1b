"""The idempotency store protocol that every backend implements, and its value types.

A store keeps one record per delivery key. ``claim`` is the heart: it atomically decides whether
this worker may run the hooks (``CLAIMED``, with a fencing token), must answer ``DUPLICATE``,
``IN_PROGRESS`` (someone holds a live lease) or ``CONFLICT`` (same key, different body bytes).
Every backend passes the same contract suite, ``tests/stores/test_store_contract.py``.
"""

from __future__ import annotations

import abc
import re
import time
from collections.abc import Sequence
from typing import NamedTuple

from ..text_enum import TextEnum

__all__ = [
    "CODAT_RETRY_WINDOW",
    "CONFLICT_MARK",
    "DEFAULT_RETENTION",
    "MAX_KEY_LENGTH",
    "Claim",
    "ClaimStatus",
    "Entry",
    "Record",
    "RecordQuery",
    "State",
    "Store",
    "check_key",
    "conflict_key",
    "key_problem",
    "newest_first",
    "page_cursor",
    "storable",
    "storable_text",
]

DEFAULT_RETENTION = 15 * 24 * 3600.0
"""15 days (1,296,000 s), every store's default ``retention``: a processed key is remembered
that long, which covers Codat's retries (about 28 hours) and its manual replays (up to 14 days
back), so neither runs the hooks a second time."""

CODAT_RETRY_WINDOW = 28 * 3600.0
"""How long Codat's new service keeps retrying one message."""


MAX_KEY_LENGTH = 256
"""Longest key a store holds: PostgreSQL cannot index much more than 2,700 bytes per row."""

# What some backend cannot hold as text: NUL (PostgreSQL) and lone surrogates, which JSON's
# "\ud800" escape decodes to and which have no UTF-8 encoding (SQLite, Redis, PostgreSQL).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def key_problem(key: str) -> str | None:
    """Why no store can hold ``key`` (too long, a NUL, a lone surrogate), or ``None``.

    Such a key has no faithful form in every backend, so every store refuses it with
    :class:`ValueError` and the receiver parks its delivery under the body's fingerprint.
    """
    if len(key) > MAX_KEY_LENGTH:
        return f"longer than {MAX_KEY_LENGTH} characters"
    if not storable(key):
        return "not storable text (a NUL or a lone surrogate)"
    return None


CONFLICT_MARK = "~conflict:"
"""Between a key and a body's fingerprint in :func:`conflict_key`."""


def conflict_key(key: str, fingerprint: str) -> str:
    """Where a second, different body under ``key`` is parked: the key, then its fingerprint.

    It was authenticated, so it is kept rather than dropped, and it stays findable from the
    original (:meth:`Store.conflicts`). A key too long to take the suffix falls back to the
    body's fingerprint alone, as every unkeyable dead letter does.
    """
    derived = f"{key}{CONFLICT_MARK}{fingerprint}"
    return derived if key_problem(derived) is None else f"sha256:{fingerprint}"


def storable(text: str) -> bool:
    """Whether every backend can hold ``text``: no NUL and no lone surrogate."""
    return (text.isascii() and "\x00" not in text) or _UNSTORABLE.search(text) is None


def check_key(key: str) -> str:
    """``key`` itself if a store can hold it; else :class:`ValueError` (a caller's bug)."""
    problem = key_problem(key)
    if problem is not None:
        raise ValueError(f"store key {key[:40]!r}... is {problem}")
    return key


def storable_text(value: str | None) -> str | None:
    """``value`` with NUL and lone surrogates replaced by U+FFFD, so every backend can hold it.

    For the labels and reasons kept beside a record (type, company, error): losing a character
    that no Codat value contains is better than failing to keep the delivery at all.
    """
    if value is None or storable(value):
        return value
    return _UNSTORABLE.sub("\ufffd", value)


class State(TextEnum):
    """Where a delivery stands."""

    QUEUED = "queued"
    """Accepted for queued dispatch: recorded, handed to a queue, waiting for a worker.

    ``lease_expires`` holds the time it is due (now, or after a retry's backoff)."""
    PROCESSING = "processing"
    """Claimed; hooks are running under a lease."""
    DONE = "done"
    """Every hook returned; later deliveries of the key are duplicates."""
    FAILED = "failed"
    """A hook raised and the claim was released; the next delivery runs the hooks again."""
    PARKED = "parked"
    """Authenticated but invalid; kept so nothing is lost, replayable after a fix."""


class ClaimStatus(TextEnum):
    CLAIMED = "claimed"
    DUPLICATE = "duplicate"
    IN_PROGRESS = "in_progress"
    CONFLICT = "conflict"
    QUEUED = "queued"
    """From :meth:`Store.enqueue`: recorded as ``QUEUED``, ready to hand to a queue."""


# Entry, Claim and Record are immutable snapshots: a store replaces a key's record, never edits
# it in place, so a record handed to the CLI or a replay cannot change underneath it.


class Entry(NamedTuple):
    """What the receiver knows about a delivery when it claims or parks it.

    ``headers`` must already be redacted (see :func:`codat_webhooks.headers.redact`).
    """

    key: str
    fingerprint: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    kind: str | None = None
    company_id: str | None = None
    verified_by: str | None = None
    """The name of the credential that authenticated the delivery (never its value); kept
    with a queued record, so the worker's ``delivery.verified_by`` is what the request had."""

    def plain(self) -> bool:
        """Whether every store keeps this entry as it is: a short key, and ASCII without NUL
        in key, type and company (the common case: Codat's IDs and type names)."""
        key, kind, company_id = self.key, self.kind, self.company_id
        return (
            len(key) <= MAX_KEY_LENGTH
            and key.isascii()
            and "\x00" not in key
            and (kind is None or (kind.isascii() and "\x00" not in kind))
            and (company_id is None or (company_id.isascii() and "\x00" not in company_id))
        )

    def storable(self) -> Entry:
        """This entry as every store keeps it: the key checked (:func:`check_key`), the type
        and company cleaned (:func:`storable_text`)."""
        if self.plain():
            return self
        check_key(self.key)
        return self._replace(
            kind=storable_text(self.kind), company_id=storable_text(self.company_id)
        )


class Claim(NamedTuple):
    status: ClaimStatus
    token: int = 0
    """Fencing token of a ``CLAIMED`` claim; pass it to renew, complete and release."""
    attempts: int = 0
    """How many times the hooks have been started for this key, this one included."""
    retry_after: float = 0.0
    """For ``IN_PROGRESS``: seconds until the current lease runs out."""

    @property
    def claimed(self) -> bool:
        return self.status is ClaimStatus.CLAIMED


class Record(NamedTuple):
    """Everything a store keeps about one key, for the CLI and for replays."""

    key: str
    state: State
    fingerprint: str
    attempts: int
    first_seen: float
    last_seen: float
    kind: str | None = None
    company_id: str | None = None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    last_error: str | None = None
    token: int = 0
    lease_expires: float = 0.0
    verified_by: str | None = None
    """Which credential authenticated the delivery, for records of queued dispatch."""


class RecordQuery(NamedTuple):
    """The filters of :meth:`Store.find`, every given one to match; stores implement ``_find``."""

    states: frozenset[State] = frozenset()
    kind: str | None = None
    company_id: str | None = None
    since: float | None = None
    """Only records last seen at or after this Unix time."""
    limit: int | None = None
    before: float | None = None
    """Only records last seen strictly before this Unix time."""
    cursor: tuple[float, str] | None = None
    """Keyset pagination: only records after this ``(last_seen, key)`` in the order of
    :meth:`Store.find` (newest first, ties by key descending), i.e. those of the next page."""

    def matches(self, record: Record) -> bool:
        """Whether ``record`` passes every filter (``limit`` aside), for stores that scan."""
        return (
            (not self.states or record.state in self.states)
            and (self.kind is None or record.kind == self.kind)
            and (self.company_id is None or record.company_id == self.company_id)
            and (self.since is None or record.last_seen >= self.since)
            and (self.before is None or record.last_seen < self.before)
            and (self.cursor is None or (record.last_seen, record.key) < self.cursor)
        )


def page_cursor(record: Record) -> tuple[float, str]:
    """The :attr:`RecordQuery.cursor` that continues a listing after ``record``."""
    return (record.last_seen, record.key)


def newest_first(record: Record) -> tuple[float, str]:
    """The sort key of :meth:`Store.find` (use with ``reverse=True``): a total order, so a
    cursor never skips nor repeats a record that shares its ``last_seen`` with another."""
    return (record.last_seen, record.key)


class Store(abc.ABC):
    """Backend-independent idempotency and dead-letter storage.

    Times are Unix seconds from the wall clock, because several machines share one store.
    Every method raises :class:`codat_webhooks.errors.StoreError` when the backend cannot be
    reached or fails, and nothing else for operational failures.
    """

    blocking: bool = True
    """Whether calls do I/O; the async path runs blocking stores in a worker thread."""

    def __init__(self, *, retention: float = DEFAULT_RETENTION) -> None:
        if retention <= 0:
            from ..errors import ConfigurationError

            raise ConfigurationError("retention must be a positive number of seconds")
        self.retention = float(retention)

    @abc.abstractmethod
    def claim(self, entry: Entry, *, lease: float, force: bool = False) -> Claim:
        """Atomically try to take ``entry.key`` for processing for ``lease`` seconds.

        Claims a new key, a ``FAILED`` or ``PARKED`` one, or a ``PROCESSING`` one whose lease ran
        out (a dead worker); a ``DONE`` one only with ``force``. A different ``fingerprint`` for a
        known key is a ``CONFLICT`` (``force`` does not override that).
        """

    @abc.abstractmethod
    def renew(self, key: str, token: int, *, lease: float) -> bool:
        """Extend a live claim; ``False`` if the token no longer holds it (fenced out)."""

    @abc.abstractmethod
    def complete(self, key: str, token: int) -> bool:
        """Mark the key ``DONE``; ``False`` (and no change) if the token was fenced out."""

    @abc.abstractmethod
    def release(self, key: str, token: int, *, error: str) -> bool:
        """Mark the key ``FAILED`` so the next delivery claims it; ``False`` if fenced out."""

    @abc.abstractmethod
    def park(self, entry: Entry, *, reason: str) -> None:
        """Keep an authenticated but unprocessable delivery as ``PARKED`` (a dead letter).

        Parking a key that is ``DONE`` or ``PROCESSING`` changes nothing but ``last_seen``.
        """

    @abc.abstractmethod
    def get(self, key: str) -> Record | None:
        """The record for ``key``, or ``None``."""

    def find(
        self,
        *,
        states: Sequence[State] = (),
        kind: str | None = None,
        company_id: str | None = None,
        since: float | None = None,
        limit: int | None = None,
        before: float | None = None,
        cursor: tuple[float, str] | None = None,
    ) -> list[Record]:
        """Records matching every given filter, newest ``last_seen`` first (ties: key
        descending). ``since``/``before`` bound ``last_seen``; ``cursor`` (from
        :func:`page_cursor` of a page's last record) continues after it, so a listing is
        paginated in the store's query rather than by reading everything."""
        wanted = frozenset(State(state) for state in states)
        # Labels are kept cleaned (see storable_text), so a filter is cleaned the same way.
        kind, company_id = storable_text(kind), storable_text(company_id)
        if cursor is not None:
            cursor = (float(cursor[0]), str(cursor[1]))
        return self._find(RecordQuery(wanted, kind, company_id, since, limit, before, cursor))

    @abc.abstractmethod
    def _find(self, query: RecordQuery) -> list[Record]:
        """:meth:`find` for this backend."""

    def conflicts(self, key: str) -> list[Record]:
        """The other bodies received under ``key`` and parked (see :func:`conflict_key`),
        newest first. Parked records are few, so they are scanned rather than indexed."""
        prefix = f"{key}{CONFLICT_MARK}"
        return [r for r in self.find(states=(State.PARKED,)) if r.key.startswith(prefix)]

    # --- operations: health checks and gauges --------------------------------------------------

    def ping(self) -> None:
        """Return if the store answers and can take writes; raise :class:`StoreError` if not.

        For health checks (``GET <path>/health``): cheap enough to run every few seconds.
        This default reads one key that does not exist; backends override it.
        """
        self.get("codat-webhooks:ping")

    def counts(self) -> dict[State, int]:
        """How many records each state holds (every state present, zeros included).

        For gauges read at scrape time: the SQL stores answer with one ``GROUP BY`` query,
        Redis with one script, so no record crosses the wire. This default reads every record
        through :meth:`find`.
        """
        found = dict.fromkeys(State, 0)
        for record in self.find():
            found[record.state] += 1
        return found

    @abc.abstractmethod
    def purge(self, *, older_than: float | None = None) -> int:
        """Delete records last seen more than ``older_than`` seconds ago (default: retention).

        Never deletes a ``PROCESSING`` record whose lease is alive. Returns the number removed.
        """

    def _purge_cutoff(self, now: float, older_than: float | None) -> float:
        """The ``last_seen`` before which :meth:`purge` deletes a record."""
        return now - (self.retention if older_than is None else older_than)

    # --- queued dispatch ---------------------------------------------------------------------
    # A queued key goes QUEUED -> (take) PROCESSING -> DONE, or back to QUEUED (defer) after a
    # hook failed, or FAILED (release) once its attempts are spent. The queue only moves keys.

    def enqueue(self, entry: Entry) -> Claim:
        """Record ``entry`` as ``QUEUED`` (status ``QUEUED``), unless it is already ours.

        A new key, or one that is ``FAILED`` or ``PARKED``, is recorded with its attempts
        reset; a ``QUEUED``, ``PROCESSING`` or ``DONE`` one is a ``DUPLICATE``; another body
        under a known key is a ``CONFLICT``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support queued dispatch")

    def take(self, key: str, *, lease: float) -> Claim:
        """A worker's claim of a ``QUEUED`` key (or a ``PROCESSING`` one whose lease ran out).

        ``CLAIMED`` with a fencing token and the attempt count; ``IN_PROGRESS`` while another
        worker's lease is alive; ``DUPLICATE`` when there is nothing to run (done, failed,
        parked or unknown), so a job delivered twice is a no-op.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support queued dispatch")

    def take_record(self, key: str, *, lease: float) -> tuple[Claim, Record | None]:
        """:meth:`take`, with the record when ``CLAIMED``: what a worker needs to run the hooks.

        Backends that can return the row from the claiming statement override this to save
        the second round trip on every job.
        """
        claim = self.take(key, lease=lease)
        return claim, (self.get(key) if claim.status is ClaimStatus.CLAIMED else None)

    def defer(self, key: str, token: int, *, due: float, error: str) -> bool:
        """Put a claimed key back to ``QUEUED``, due at Unix time ``due``; ``False`` if fenced."""
        raise NotImplementedError(f"{type(self).__name__} does not support queued dispatch")

    def due(self, *, older_than: float = 0.0, limit: int = 100) -> list[str]:
        """Keys a worker should run: ``QUEUED`` ones due, or ``PROCESSING`` ones whose lease
        ran out, more than ``older_than`` seconds ago (oldest first).

        A sweeper calls this with a grace period to re-enqueue keys whose job was lost; a
        worker process draining the store calls it with none.
        """
        cutoff = self._now() - older_than
        records = self.find(states=(State.QUEUED, State.PROCESSING))
        late = [record for record in records if record.lease_expires <= cutoff]
        late.sort(key=lambda record: record.lease_expires)
        return [record.key for record in late[:limit]]

    def _now(self) -> float:
        clock = getattr(self, "_clock", None)
        return float(clock()) if callable(clock) else time.time()

    def close(self) -> None:  # noqa: B027 - optional for stores that hold nothing
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
