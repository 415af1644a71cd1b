"""The value types of every store: keys, entries, claims, records, states, and what a backend
can hold as text.

A store keeps one :class:`Record` per delivery key; :mod:`.machine` decides how it changes and
:class:`~codat_webhooks.stores.base.Store` is the protocol every backend implements.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import NamedTuple, ParamSpec, TypeVar

from pydantic_core import PydanticSerializationError, to_json

from ..errors import StoreError
from ..text_enum import TextEnum
from .marks import Mark, Verdict

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
    "check_key",
    "conflict_key",
    "decode_headers",
    "decodes",
    "encode_headers",
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


_SHAPE_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError)
"""What decoding a store's reply raises when the reply is not what was asked for."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def decodes(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Mark a function that reads ``what`` out of a store's reply: a reply of another shape
    is a :class:`StoreError` there. A connection that read another statement's reply (one
    shared across a fork, say) must cost a 503, never a 500 or a hook given the wrong
    delivery."""

    def checked(decode: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(decode)
        def decoded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return decode(*args, **kwargs)
            except _SHAPE_ERRORS as exc:
                message = f"the store returned a reply of another shape, not {what}"
                raise StoreError(f"{message}: {type(exc).__name__}: {exc}") from exc

        return decoded

    return checked


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
    mark: Mark | None = None
    """What the delivery tells its ordering scope (:mod:`.marks`); a claim or enqueue that
    hands the key over moves the scope's high-water mark with it, and answers ``order``."""

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
    state: State | None = None
    """For a ``DUPLICATE`` from :meth:`Store.enqueue`: where the earlier copy is (queued,
    processing or done), so the answer can say so without reading the record again."""
    order: Verdict | None = None
    """For an entry with a ``mark``, when ``CLAIMED`` or ``QUEUED``: its place in its scope."""

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
