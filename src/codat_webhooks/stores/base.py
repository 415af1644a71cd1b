"""The idempotency store protocol that every backend implements.

A store keeps one record per delivery key. ``claim`` is the heart: it atomically decides whether
this worker may run the hooks (``CLAIMED``, with a fencing token), must answer ``DUPLICATE``,
``IN_PROGRESS`` (someone holds a live lease) or ``CONFLICT`` (same key, different body bytes).
The decisions themselves live in :mod:`.machine`; every backend passes the same contract suite,
``tests/stores/test_store_contract.py``.

:class:`Store`'s public methods are the one way in: each guards the key
(:func:`key_problem`) and cleans every text it writes (:func:`storable_text`) before handing
over to the backend's ``_claim``, ``_enqueue``, ``_take``, ``_move``, ``_park`` or ``_get``.
So no backend has to remember either, and none can forget.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence

from . import machine
from .history import History, HistoryEntry, cleaned
from .marks import HighWater, Mark, Verdict
from .records import (
    CODAT_RETRY_WINDOW,
    CONFLICT_MARK,
    DEFAULT_RETENTION,
    MAX_KEY_LENGTH,
    Claim,
    ClaimStatus,
    Entry,
    Record,
    RecordQuery,
    State,
    check_key,
    conflict_key,
    key_problem,
    newest_first,
    page_cursor,
    storable,
    storable_text,
)

__all__ = [
    "CODAT_RETRY_WINDOW",
    "CONFLICT_MARK",
    "DEFAULT_RETENTION",
    "MAX_KEY_LENGTH",
    "Claim",
    "ClaimStatus",
    "Entry",
    "History",
    "HistoryEntry",
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

_NOTHING_TO_RUN = Claim(ClaimStatus.DUPLICATE)
"""What :meth:`Store.take` answers for a key no store can hold: it was never queued."""


class Store(abc.ABC):
    """Backend-independent idempotency and dead-letter storage.

    Times are Unix seconds from the wall clock (``clock``), because several machines share one
    store. Every method raises :class:`codat_webhooks.errors.StoreError` when the backend cannot
    be reached or fails, and nothing else for operational failures.
    """

    blocking: bool = True
    """Whether calls do I/O; the async path runs blocking stores in a worker thread."""

    def __init__(
        self, *, retention: float = DEFAULT_RETENTION, clock: Callable[[], float] = time.time
    ) -> None:
        if retention <= 0:
            from ..errors import ConfigurationError

            raise ConfigurationError("retention must be a positive number of seconds")
        self.retention = float(retention)
        self._clock = clock

    # --- inline dispatch ---------------------------------------------------------------------

    def claim(
        self,
        entry: Entry,
        *,
        lease: float,
        force: bool = False,
        attempt: HistoryEntry | None = None,
    ) -> Claim:
        """Atomically try to take ``entry.key`` for processing for ``lease`` seconds.

        Claims a new key, a ``FAILED`` or ``PARKED`` one, or a ``PROCESSING`` one whose lease ran
        out (a dead worker); a ``DONE`` one only with ``force``. A different ``fingerprint`` for a
        known key is a ``CONFLICT`` (``force`` does not override that). A key no store can hold
        is a :class:`ValueError` (see :func:`check_key`).

        ``attempt`` is the template of the history entry for the answer (see
        :func:`.history.answered`): appended with a duplicate, in-progress or conflict
        decision; a hand-over appends nothing until its complete or release.
        """
        if attempt is None:
            return self._claim(entry.storable(), lease=lease, force=force)
        # A template is cleaned when an entry is made of it (history.answered), rarely.
        return self._claim(entry.storable(), lease=lease, force=force, attempt=attempt)

    def renew(self, key: str, token: int, *, lease: float) -> bool:
        """Extend a live claim; ``False`` if the token no longer holds it (fenced out)."""
        return self._held(key, token, machine.renewal(self._clock(), lease))

    def complete(self, key: str, token: int, *, attempt: HistoryEntry | None = None) -> bool:
        """Mark the key ``DONE``; ``False`` (and no change) if the token was fenced out.

        ``attempt``, if given, is appended to the key's history in the same operation."""
        return self._held(key, token, machine.completion(self._clock(), attempt))

    def release(
        self, key: str, token: int, *, error: str, attempt: HistoryEntry | None = None
    ) -> bool:
        """Mark the key ``FAILED`` so the next delivery claims it; ``False`` if fenced out."""
        return self._held(key, token, machine.release(self._clock(), error, attempt))

    def park(self, entry: Entry, *, reason: str, attempt: HistoryEntry | None = None) -> str:
        """Keep an authenticated but unprocessable delivery as ``PARKED`` (a dead letter), and
        answer the key it is kept under.

        Parking a key that is ``DONE`` or ``PROCESSING`` with the same body changes nothing but
        ``last_seen``. A key that holds another body is another delivery's record: this body is
        parked beside it, under :func:`conflict_key`, so nothing authenticated is lost.
        ``attempt``, if given, is appended to the history of the key parked, in the same
        operation.
        """
        reason = storable_text(reason) or ""
        entry = entry.storable()
        kept = None if attempt is None else cleaned(attempt)
        if self._park(entry, reason=reason, attempt=kept):
            return entry.key
        # The derived key names this very body (its fingerprint), so no other body holds it.
        beside = entry._replace(key=conflict_key(entry.key, entry.fingerprint))
        self._park(beside, reason=reason, attempt=kept)
        return beside.key

    def get(self, key: str) -> Record | None:
        """The record for ``key``, or ``None``."""
        return None if key_problem(key) is not None else self._get(key)

    def note(self, key: str, entry: HistoryEntry) -> None:
        """Append ``entry`` to ``key``'s history alone, with no record: for answers that store
        nothing, such as 401s (see :data:`.history.UNAUTHORIZED_KEY`)."""
        if key_problem(key) is None:
            self._note_only(key, cleaned(entry))

    def history(self, key: str) -> list[HistoryEntry]:
        """Every answer given and worker run made for ``key`` that is kept, oldest first."""
        return self.kept_history(key).entries

    def kept_history(self, key: str) -> History:
        """:meth:`history`, with how many older entries were dropped (see :mod:`.history`)."""
        return History([]) if key_problem(key) is not None else self._history(key)

    # --- queued dispatch ---------------------------------------------------------------------
    # A queued key goes QUEUED -> (take) PROCESSING -> DONE, or back to QUEUED (defer) after a
    # hook failed, or FAILED (release) once its attempts are spent. The queue only moves keys.

    def enqueue(self, entry: Entry, *, attempt: HistoryEntry | None = None) -> Claim:
        """Record ``entry`` as ``QUEUED`` (status ``QUEUED``), unless it is already ours.

        A new key, or one that is ``FAILED`` or ``PARKED``, is recorded with its attempts
        reset; a ``QUEUED``, ``PROCESSING`` or ``DONE`` one is a ``DUPLICATE``; another body
        under a known key is a ``CONFLICT``. ``attempt``: as for :meth:`claim`.
        """
        if attempt is None:
            return self._enqueue(entry.storable())
        return self._enqueue(entry.storable(), attempt=attempt)

    def take(self, key: str, *, lease: float) -> Claim:
        """A worker's claim of a ``QUEUED`` key (or a ``PROCESSING`` one whose lease ran out).

        ``CLAIMED`` with a fencing token and the attempt count; ``IN_PROGRESS`` while another
        worker's lease is alive; ``DUPLICATE`` when there is nothing to run (done, failed,
        parked or unknown), so a job delivered twice is a no-op.
        """
        return _NOTHING_TO_RUN if key_problem(key) is not None else self._take(key, lease=lease)

    def take_record(self, key: str, *, lease: float) -> tuple[Claim, Record | None]:
        """:meth:`take`, with the record when ``CLAIMED``: what a worker needs to run the hooks."""
        if key_problem(key) is not None:
            return _NOTHING_TO_RUN, None
        return self._take_record(key, lease=lease)

    def defer(
        self,
        key: str,
        token: int,
        *,
        due: float,
        error: str,
        attempt: HistoryEntry | None = None,
    ) -> bool:
        """Put a claimed key back to ``QUEUED``, due at Unix time ``due``; ``False`` if fenced."""
        return self._held(key, token, machine.deferral(self._clock(), due, error, attempt))

    def due(self, *, older_than: float = 0.0, limit: int = 100) -> list[str]:
        """Keys a worker should run: ``QUEUED`` ones due, or ``PROCESSING`` ones whose lease
        ran out, more than ``older_than`` seconds ago (oldest first).

        A sweeper calls this with a grace period to re-enqueue keys whose job was lost; a
        worker process draining the store calls it with none.
        """
        cutoff = self._clock() - older_than
        records = self.find(states=machine.TAKEABLE)
        late = [record for record in records if machine.is_due(record, cutoff=cutoff)]
        late.sort(key=lambda record: record.lease_expires)
        return [record.key for record in late[:limit]]

    def _held(self, key: str, token: int, change: machine.Move) -> bool:
        if key_problem(key) is not None:
            return False  # never stored, so never held
        return self._move(key, token, change)

    # --- what a backend implements: called with guarded keys and cleaned text only ------------

    @abc.abstractmethod
    def _claim(
        self, entry: Entry, *, lease: float, force: bool, attempt: HistoryEntry | None = None
    ) -> Claim:
        """Perform :func:`machine.claim` atomically, with :func:`.history.answered`."""

    @abc.abstractmethod
    def _move(self, key: str, token: int, change: machine.Move) -> bool:
        """Perform :func:`machine.move` atomically: ``True`` if ``token`` held the record."""

    @abc.abstractmethod
    def _park(self, entry: Entry, *, reason: str, attempt: HistoryEntry | None = None) -> bool:
        """Perform :func:`machine.park` atomically, appending ``attempt`` if given; ``False``
        (and nothing written) if the key holds another body."""

    @abc.abstractmethod
    def _get(self, key: str) -> Record | None:
        """:meth:`get` for this backend."""

    def _enqueue(self, entry: Entry, *, attempt: HistoryEntry | None = None) -> Claim:
        """Perform :func:`machine.enqueue` atomically, with :func:`.history.answered`."""
        raise NotImplementedError(f"{type(self).__name__} does not support queued dispatch")

    def _take(self, key: str, *, lease: float) -> Claim:
        """Perform :func:`machine.take` atomically."""
        raise NotImplementedError(f"{type(self).__name__} does not support queued dispatch")

    def _note_only(self, key: str, entry: HistoryEntry) -> None:  # noqa: B027 - optional
        """:meth:`note` for this backend; one that keeps no history ignores it."""

    def _history(self, key: str) -> History:
        """:meth:`kept_history` for this backend; one that keeps none has none."""
        return History([])

    def _take_record(self, key: str, *, lease: float) -> tuple[Claim, Record | None]:
        """:meth:`take_record`; backends that can return the row from the claiming statement
        override this to save the second round trip on every job."""
        claim = self._take(key, lease=lease)
        return claim, (self._get(key) if claim.status is ClaimStatus.CLAIMED else None)

    # --- reading ----------------------------------------------------------------------------

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

    # --- ordering: high-water marks per scope (see .marks) ------------------------------------
    # A claim or enqueue of an entry with a ``mark`` moves its scope's mark atomically and
    # answers ``Claim.order``; these read what was decided, for workers, the CLI and tests.

    def recheck(self, key: str, mark: Mark) -> Verdict:
        """A queued key's verdict when a worker takes it (:func:`.marks.recheck`): stale too
        if a newer event of its scope arrived while it waited, which is then kept."""
        return self._recheck(key, mark)

    def verdict(self, key: str) -> Verdict | None:
        """The kept verdict of ``key``, if it was stale or broke a status chain; else ``None``."""
        return None if key_problem(key) is not None else self._verdict(key)

    def verdicts(self, keys: Sequence[str]) -> dict[str, Verdict]:
        """The kept verdicts of those of ``keys`` that have one (for listings)."""
        wanted = [key for key in keys if key_problem(key) is None]
        return self._verdicts_of(wanted) if wanted else {}

    def _verdicts_of(self, keys: Sequence[str]) -> dict[str, Verdict]:
        """:meth:`verdicts`; backends that can read many in one round trip override this."""
        found = {key: self._verdict(key) for key in keys}
        return {key: verdict for key, verdict in found.items() if verdict is not None}

    def high_water(self, scope: str) -> HighWater | None:
        """The mark of ``scope``: the newest ``generatedDate`` received and its key."""
        return self._high_water(scope)

    def _recheck(self, key: str, mark: Mark) -> Verdict:
        raise NotImplementedError(f"{type(self).__name__} keeps no ordering marks")

    def _verdict(self, key: str) -> Verdict | None:
        raise NotImplementedError(f"{type(self).__name__} keeps no ordering marks")

    def _high_water(self, scope: str) -> HighWater | None:
        raise NotImplementedError(f"{type(self).__name__} keeps no ordering marks")

    def close(self) -> None:  # noqa: B027 - optional for stores that hold nothing
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
