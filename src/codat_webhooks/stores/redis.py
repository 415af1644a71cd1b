"""A store in Redis, for workers spread over several machines (extra ``redis``).

Each operation is one Lua script, so it is atomic on the server without locks or WATCH
retries. A key's record is a hash holding its fencing token; a sorted set indexed by
``last_seen`` serves ``find`` and ``purge``. Finished records expire after ``retention`` by
themselves (``PEXPIRE``), so a forgotten ``purge`` cannot fill the server.

Times come from this process's wall clock, so machines sharing a store should run NTP; a skew
much smaller than the lease (60 s by default) does no harm.

Speed: a new delivery costs two round trips (claim, then complete), and each must have the
server's answer before it returns. What can shrink is the work around them: each thread sends
its scripts on a connection of its own (see :class:`_Pinned`), and the scripts make as few
server calls as the record allows. Installing ``hiredis`` speeds up redis-py's parsing further.
"""

from __future__ import annotations

import json
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from .._forking import leave_to_parent, start_over_in_children
from ..errors import ConfigurationError, StoreError
from . import lua
from .base import (
    DEFAULT_RETENTION,
    Claim,
    ClaimStatus,
    Entry,
    Record,
    RecordQuery,
    State,
    Store,
    newest_first,
)
from .history import History, HistoryEntry, cleaned, decode_entry
from .machine import Move
from .marks import HighWater, Mark, Verdict
from .records import decode_headers, decodes, encode_headers
from .redis_marks import RedisMarks

__all__ = ["RedisStore"]

_BATCH = 500


class _Pinned:
    """One thread's own connection from the client's pool, and the process that took it.

    Borrowing from the pool for every command costs more than the command itself here: a lock,
    a non-blocking read to check that the socket is clean, and redis-py's bookkeeping, about
    25 µs a call on a 2-core VM where the whole round trip is 30 µs. A thread that keeps its
    connection pays that once. The pool still makes the connection, so auth, TLS, sentinel and
    retry settings apply. When the thread ends or the store closes, the ``_Pinned`` is dropped
    and a finalizer gives the connection back. A forked child starts with none (see
    :meth:`RedisStore._forked`), so parent and child never share a socket.
    """

    __slots__ = ("__weakref__", "connection")

    def __init__(self, connection: Any) -> None:
        self.connection = connection


def _send(connection: Any, script: lua.Script, keys_and_args: tuple[Any, ...]) -> Any:
    try:
        connection.send_packed_command(
            connection.pack_command("EVALSHA", script.sha, script.numkeys, *keys_and_args)
        )
        return connection.read_response()
    except NoScriptError:
        # A server that just started (or ran SCRIPT FLUSH) lacks the script: EVAL runs the
        # source and caches it, so the next EVALSHA finds it. The error reply was read whole,
        # so the connection is clean for the retry.
        connection.send_packed_command(
            connection.pack_command("EVAL", script.source, script.numkeys, *keys_and_args)
        )
        return connection.read_response()


def _opt(value: str | None) -> str:
    return "" if value is None else "=" + value


def _unopt(value: bytes | None) -> str | None:
    return None if value is None else value.decode()[1:]


@decodes("a delivery record")
def _record(key: str, fields: dict[bytes, bytes]) -> Record:
    return Record(
        key=key,
        state=State(fields[b"state"].decode()),
        fingerprint=fields[b"fingerprint"].decode(),
        attempts=int(fields[b"attempts"]),
        first_seen=float(fields[b"first_seen"]),
        last_seen=float(fields[b"last_seen"]),
        kind=_unopt(fields.get(b"kind")),
        company_id=_unopt(fields.get(b"company_id")),
        body=fields.get(b"body", b""),
        headers=decode_headers(fields.get(b"headers", b"").decode()),
        last_error=_unopt(fields.get(b"last_error")),
        token=int(fields.get(b"token", b"0")),
        lease_expires=float(fields.get(b"lease_expires", b"0")),
        verified_by=_unopt(fields.get(b"verified_by")),
    )


_NO_ENTRY = ("",) * 6


def _entry_fields(entry: Entry) -> tuple[object, ...]:
    """What the scripts write of an entry, in the order they read it."""
    return (
        entry.fingerprint,
        entry.body,
        encode_headers(entry.headers) if entry.headers else "",
        _opt(entry.kind),
        _opt(entry.company_id),
        _opt(entry.verified_by),
    )


@decodes("a claim")
def _claim_of(reply: list[Any]) -> Claim:
    """A script's answer ``{status, token, attempts[, retry_after[, state]]}`` as a
    :class:`Claim`."""
    status, token, attempts, *rest = reply
    retry_after = float(rest[0]) if rest else 0.0
    state = State(rest[1].decode()) if len(rest) > 1 else None
    return Claim(ClaimStatus(status.decode()), int(token), int(attempts), retry_after, state)


def _history_text(entry: HistoryEntry | None, *, template: bool = False) -> str:
    """An entry as the scripts take it (see :mod:`.lua`): time (with status and outcome
    unless ``template``), a '|', then the rest of the JSON array; '' for none."""
    if entry is None:
        return ""
    at, status, outcome, *rest = entry
    tail = json.dumps(rest, separators=(",", ":"))[1:]
    if template:
        return f"{at!r}|{tail}"
    return f"{at!r},{'null' if status is None else int(status)},{json.dumps(outcome)}|{tail}"


def _field_value(value: float | str | None) -> str:
    """A :class:`Move`'s value as the hash keeps it: text with its "=" mark, '' to delete."""
    if value is None:
        return ""
    return _opt(value) if isinstance(value, str) else repr(value)


def _client_from_url(url: str, timeout: float) -> redis.Redis:
    # One quick retry reconnects a pooled socket the server closed (e.g. a restart); redis-py's
    # default backs off for seconds, longer than a webhook should wait.
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
    )


class RedisStore(Store):
    """Exactly-once across every process and machine that shares one Redis.

    ``url_or_client`` is a ``redis://`` URL or a ready ``redis.Redis`` (which must not use
    ``decode_responses``: bodies are bytes). ``prefix`` namespaces the keys, so several
    receivers or test runs can share a server. ``timeout`` bounds each server round trip; a
    down server then costs a 503 quickly instead of holding the request.
    """

    blocking = True

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        *,
        retention: float = DEFAULT_RETENTION,
        prefix: str = "codat-webhooks:",
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(retention=retention, clock=clock)
        self._url, self._timeout = url_or_client, timeout
        if isinstance(url_or_client, str):
            client = _client_from_url(url_or_client, timeout)
        else:
            client = url_or_client
        if client.get_connection_kwargs().get("decode_responses"):
            raise ConfigurationError("RedisStore needs a client without decode_responses=True")
        self.client = client
        self.prefix = prefix
        self._owns_client = isinstance(url_or_client, str)
        self._index = f"{prefix}index"
        self._marks = RedisMarks(self)
        self._local = threading.local()
        self._closed = False
        start_over_in_children(self)

    def _forked(self) -> None:
        """A forked child takes connections of its own and leaves the parent's alone."""
        leave_to_parent(self._local)
        self._local = threading.local()
        if isinstance(self._url, str):  # ours to remake; a client given to us is redis-py's
            leave_to_parent(self.client)  # (whose pool starts over in a child by itself)
            self.client = _client_from_url(self._url, self._timeout)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        """Same as ``RedisStore(url, ...)``; reads better next to ``redis.Redis.from_url``."""
        return cls(url, **kwargs)

    def _rec(self, key: str) -> str:
        return f"{self.prefix}d:{key}"

    def _ttl_ms(self, seconds: float) -> int:
        return max(1, math.ceil(max(self.retention, seconds) * 1000))

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise StoreError(f"Redis store: {type(exc).__name__}: {exc}") from exc

    def _connection(self) -> Any:
        pinned: _Pinned | None = getattr(self._local, "pinned", None)
        if pinned is None:
            if self._closed:
                raise StoreError("the store is closed")
            pool = self.client.connection_pool
            pinned = _Pinned(pool.get_connection())
            weakref.finalize(pinned, pool.release, pinned.connection)
            self._local.pinned = pinned
        return pinned.connection

    def _eval(self, script: lua.Script, *keys_and_args: Any) -> Any:
        """Run ``script`` on this thread's connection, with the client's retry policy.

        A connection error disconnects; the retry (or the next call) reconnects through
        redis-py's own ``connect``, which is how a restarted server is picked up again.
        """
        with self._errors():
            connection = self._connection()
            return connection.retry.call_with_retry(
                lambda: _send(connection, script, keys_and_args),
                lambda _error: connection.disconnect(),
            )

    # --- the protocol ------------------------------------------------------------------------

    def _run(
        self,
        script: lua.Script,
        key: str,
        entry: Entry | None,
        ttl_ms: int,
        *args: object,
        history: str = "",
    ) -> Any:
        """Run one of the record scripts on ``key``: the entry's fields (or none), the time, the
        TTL and the key first, as every one of them expects (see :mod:`.lua`), then ``args``,
        then the history entry (see :func:`_history_text`)."""
        fields = _NO_ENTRY if entry is None else _entry_fields(entry)
        now = repr(self._clock())
        keys = (self._rec(key), self._index, self._hist(key))
        return self._eval(script, *keys, *fields, now, ttl_ms, key, *args, history)

    def _claim(
        self, entry: Entry, *, lease: float, force: bool, attempt: HistoryEntry | None = None
    ) -> Claim:
        now = self._clock()
        args = (repr(now + lease), repr(now - self.retention), "1" if force else "0")
        floor = repr(now - 2 * self.retention)  # index members this old are long expired
        ttl = self._ttl_ms(lease)
        history = _history_text(attempt and cleaned(attempt._replace(at=now)), template=True)
        if entry.mark is not None:
            return self._run_marked(lua.CLAIM_MARKED, entry, ttl, *args, floor, history=history)
        return _claim_of(self._run(lua.CLAIM, entry.key, entry, ttl, *args, floor, history=history))

    def _run_marked(
        self, script: lua.Script, entry: Entry, ttl_ms: int, *args: object, history: str
    ) -> Claim:
        """:meth:`_run` of a claim or enqueue that also moves the entry's scope's mark, in the
        same script (:mod:`.redis_marks`); answers the claim with its ``order``."""
        assert entry.mark is not None
        now = self._clock()
        keys = (
            self._rec(entry.key),
            self._index,
            self._hist(entry.key),
            *self._marks.keys(entry.key, entry.mark),
        )
        tail = self._marks.arguments(entry.mark, now)
        fields = _entry_fields(entry)
        reply = self._eval(
            script, *keys, *fields, repr(now), ttl_ms, entry.key, *args, *tail, history
        )
        return self._marks.answer(_claim_of(reply[0]), reply)

    def _move(self, key: str, token: int, change: Move) -> bool:
        changes = change.changes
        # Kept for the retention, and past a renewed lease or a deferred record's due time.
        ttl = self._ttl_ms(float(changes["lease_expires"] or 0.0) - self._clock())
        args: list[object] = [token, change.state.value]
        for field, value in changes.items():
            args += (field, _field_value(value))
        history = _history_text(change.attempt)
        return bool(self._run(lua.MOVE, key, None, ttl, *args, history=history))

    def _enqueue(self, entry: Entry, *, attempt: HistoryEntry | None = None) -> Claim:
        now = self._clock()
        cutoff = repr(now - self.retention)
        history = _history_text(attempt and cleaned(attempt._replace(at=now)), template=True)
        if entry.mark is not None:
            return self._run_marked(
                lua.ENQUEUE_MARKED, entry, self._ttl_ms(0), cutoff, history=history
            )
        return _claim_of(
            self._run(lua.ENQUEUE, entry.key, entry, self._ttl_ms(0), cutoff, history=history)
        )

    def _take(self, key: str, *, lease: float) -> Claim:
        expires = repr(self._clock() + lease)
        return _claim_of(self._run(lua.TAKE, key, None, self._ttl_ms(lease), expires))

    def _park(self, entry: Entry, *, reason: str, attempt: HistoryEntry | None = None) -> bool:
        history = _history_text(attempt)
        return bool(
            self._run(lua.PARK, entry.key, entry, self._ttl_ms(0), _opt(reason), history=history)
        )

    def _get(self, key: str) -> Record | None:
        with self._errors():
            fields = cast("dict[bytes, bytes]", self.client.hgetall(self._rec(key)))
        return _record(key, fields) if fields else None

    def _hist(self, key: str) -> str:
        return f"{self.prefix}h:{key}"

    def _note_only(self, key: str, entry: HistoryEntry) -> None:
        self._run(lua.NOTE, key, None, self._ttl_ms(0), history=_history_text(entry))

    def _history(self, key: str) -> History:
        with self._errors():
            texts = cast("list[bytes]", self.client.lrange(self._hist(key), 0, -1))
        decoded = [decode_entry(text) for text in texts]
        dropped = decoded[0][0] - 1 if decoded else 0
        return History([entry for _, entry in decoded], dropped)

    def _find(self, query: RecordQuery) -> list[Record]:
        low = "-inf" if query.since is None else repr(query.since)
        high = "+inf" if query.before is None else f"({query.before!r}"
        if query.cursor is not None and (query.before is None or query.cursor[0] < query.before):
            high = repr(query.cursor[0])  # ties on the score are sorted out by query.matches
        found: list[Record] = []
        offset = 0
        with self._errors():
            while query.limit is None or len(found) < query.limit:
                members = cast(
                    "list[bytes]",
                    self.client.zrevrangebyscore(self._index, high, low, start=offset, num=_BATCH),
                )
                if not members:
                    break
                offset += len(members)
                pipe = self.client.pipeline(transaction=False)
                for member in members:
                    pipe.hgetall(self._rec(member.decode()))
                for member, fields in zip(members, pipe.execute(), strict=True):
                    if not fields:
                        continue  # expired by TTL; purge drops it from the index
                    record = _record(member.decode(), fields)
                    if query.matches(record):
                        found.append(record)
        found.sort(key=newest_first, reverse=True)
        return found[: query.limit]

    def _recheck(self, key: str, mark: Mark) -> Verdict:
        return self._marks.recheck(key, mark)

    def _verdict(self, key: str) -> Verdict | None:
        return self._marks.verdict(key)

    def _verdicts_of(self, keys: Sequence[str]) -> dict[str, Verdict]:
        return self._marks.verdicts(keys)

    def _high_water(self, scope: str) -> HighWater | None:
        return self._marks.high_water(scope)

    def ping(self) -> None:
        with self._errors():
            self.client.ping()

    def counts(self) -> dict[State, int]:
        """One script: the server walks the index (its cost grows with the records kept, but
        nothing crosses the wire but the counts)."""
        flat = self._eval(lua.COUNT, self._index, f"{self.prefix}d:")
        found = dict.fromkeys(State, 0)
        for state, n in zip(flat[::2], flat[1::2], strict=True):
            found[State(state.decode())] = int(n)
        return found

    def purge(self, *, older_than: float | None = None) -> int:
        now = self._clock()
        cutoff = self._purge_cutoff(now, older_than)
        self._marks.purge(cutoff)
        removed = kept = 0
        while True:
            args = (repr(cutoff), repr(now), f"{self.prefix}d:", kept, _BATCH, f"{self.prefix}h:")
            gone, scanned, live = self._eval(lua.PURGE, self._index, *args)
            removed += int(gone)
            kept += int(live)
            if int(scanned) < _BATCH:
                return removed

    def close(self) -> None:
        # Dropping the thread-local drops every thread's _Pinned at once (threads still running
        # included), and their finalizers give the connections back to the pool.
        self._closed = True
        self._local = threading.local()
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"
