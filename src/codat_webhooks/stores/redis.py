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

import hashlib
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from .._forking import leave_to_parent, start_over_in_children
from ..errors import ConfigurationError, StoreError
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
from .machine import Move
from .records import decode_headers, encode_headers

__all__ = ["RedisStore"]

# Optional strings are stored with a "=" in front, so "absent" (None) and "" stay distinct.
# Helpers shared by the scripts: touch() indexes the key by last_seen and sets its expiry.
_PRELUDE = """
local rec, index = KEYS[1], KEYS[2]
local function touch(now, member, ttl)
  redis.call('ZADD', index, now, member)
  redis.call('PEXPIRE', rec, ttl)
end
-- machine._hand_over: IN_PROGRESS while a lease is alive, else PROCESSING under a new token.
local function hand_over(state, attempts, token, lease_expires, now, expires, ttl, member)
  attempts, lease_expires = tonumber(attempts), tonumber(lease_expires)
  if state == 'processing' and lease_expires > tonumber(now) then
    return {'in_progress', 0, attempts, tostring(lease_expires - tonumber(now))}
  end
  token, attempts = tonumber(token) + 1, attempts + 1
  redis.call('HSET', rec, 'state', 'processing', 'attempts', attempts, 'last_seen', now,
             'token', token, 'lease_expires', expires)
  touch(now, member, ttl)
  return {'claimed', token, attempts, '0'}
end
"""

_CLAIM = (
    _PRELUDE
    + """
-- ARGV: now, lease_expires, cutoff, force, fingerprint, body, headers, kind, company_id,
--       ttl_ms, member, index_floor, verified_by
local cur = redis.call('HMGET', rec, 'state', 'fingerprint', 'attempts', 'token',
                       'lease_expires', 'last_seen')
local state = cur[1]
if state and tonumber(cur[6]) < tonumber(ARGV[3]) then state = false end
if not state then
  if cur[1] then redis.call('DEL', rec) end
  local fields = {'state', 'processing', 'fingerprint', ARGV[5], 'attempts', 1,
                  'first_seen', ARGV[1], 'last_seen', ARGV[1], 'body', ARGV[6],
                  'headers', ARGV[7], 'token', 1, 'lease_expires', ARGV[2]}
  if ARGV[8] ~= '' then table.insert(fields, 'kind'); table.insert(fields, ARGV[8]) end
  if ARGV[9] ~= '' then table.insert(fields, 'company_id'); table.insert(fields, ARGV[9]) end
  if ARGV[13] ~= '' then table.insert(fields, 'verified_by'); table.insert(fields, ARGV[13]) end
  redis.call('HSET', rec, unpack(fields))
  touch(ARGV[1], ARGV[11], ARGV[10])
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[12])
  return {'claimed', 1, 1, '0'}
end
if cur[2] ~= ARGV[5] then return {'conflict', 0, tonumber(cur[3]), '0'} end
if state == 'done' and ARGV[4] ~= '1' then
  redis.call('HSET', rec, 'last_seen', ARGV[1])
  touch(ARGV[1], ARGV[11], ARGV[10])
  return {'duplicate', 0, tonumber(cur[3]), '0'}
end
local answer = hand_over(state, cur[3], cur[4], cur[5], ARGV[1], ARGV[2], ARGV[10], ARGV[11])
if answer[1] == 'claimed' then  -- what this delivery brings refreshes what was kept
  if ARGV[6] ~= '' then redis.call('HSET', rec, 'body', ARGV[6]) end
  if ARGV[7] ~= '' then redis.call('HSET', rec, 'headers', ARGV[7]) end
  if ARGV[8] ~= '' and ARGV[8] ~= '=' then redis.call('HSET', rec, 'kind', ARGV[8]) end
  if ARGV[9] ~= '' and ARGV[9] ~= '=' then redis.call('HSET', rec, 'company_id', ARGV[9]) end
  if ARGV[13] ~= '' and ARGV[13] ~= '=' then redis.call('HSET', rec, 'verified_by', ARGV[13]) end
end
return answer
"""
)

_MOVE = """
-- machine.move: a record still PROCESSING under ARGV[1] gets state ARGV[2] and the changes,
-- pairs of field and value from ARGV[5] on ('' deletes the field); else nothing (fenced out).
-- KEYS: rec, index; ARGV: token, state, ttl_ms, member, field, value, ...
local rec, index = KEYS[1], KEYS[2]
local cur = redis.call('HMGET', rec, 'state', 'token')
if cur[1] ~= 'processing' or tonumber(cur[2]) ~= tonumber(ARGV[1]) then return 0 end
local set = {'state', ARGV[2]}
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', rec, ARGV[i])
  else
    set[#set + 1] = ARGV[i]
    set[#set + 1] = ARGV[i + 1]
    if ARGV[i] == 'last_seen' then redis.call('ZADD', index, ARGV[i + 1], ARGV[4]) end
  end
end
redis.call('HSET', rec, unpack(set))
if redis.call('PTTL', rec) < tonumber(ARGV[3]) then redis.call('PEXPIRE', rec, ARGV[3]) end
return 1
"""

_PARK = (
    _PRELUDE
    + """
-- ARGV: now, fingerprint, body, headers, kind, company_id, reason, ttl_ms, member
local cur = redis.call('HMGET', rec, 'state', 'attempts')
if not cur[1] then
  redis.call('HSET', rec, 'state', 'parked', 'fingerprint', ARGV[2], 'attempts', 1,
             'first_seen', ARGV[1], 'last_seen', ARGV[1], 'body', ARGV[3], 'headers', ARGV[4],
             'last_error', ARGV[7], 'token', 0, 'lease_expires', '0')
  if ARGV[5] ~= '' then redis.call('HSET', rec, 'kind', ARGV[5]) end
  if ARGV[6] ~= '' then redis.call('HSET', rec, 'company_id', ARGV[6]) end
elseif cur[1] == 'parked' or cur[1] == 'failed' then
  redis.call('HSET', rec, 'state', 'parked', 'attempts', tonumber(cur[2]) + 1,
             'last_seen', ARGV[1], 'last_error', ARGV[7])
else
  redis.call('HSET', rec, 'last_seen', ARGV[1])
end
touch(ARGV[1], ARGV[9], ARGV[8])
return 1
"""
)

_ENQUEUE = (
    _PRELUDE
    + """
-- ARGV: now, cutoff, fingerprint, body, headers, kind, company_id, ttl_ms, member,
--       verified_by
local cur = redis.call('HMGET', rec, 'state', 'fingerprint', 'attempts', 'token', 'last_seen',
                       'first_seen')
local state, token, first_seen = cur[1], 0, ARGV[1]
if state and tonumber(cur[5]) < tonumber(ARGV[2]) then state = false end
if state then
  if cur[2] ~= ARGV[3] then return {'conflict', 0, tonumber(cur[3])} end
  if state ~= 'failed' and state ~= 'parked' then return {'duplicate', 0, tonumber(cur[3])} end
  token, first_seen = tonumber(cur[4]), cur[6]
end
if cur[1] then redis.call('DEL', rec) end
local fields = {'state', 'queued', 'fingerprint', ARGV[3], 'attempts', 0,
                'first_seen', first_seen, 'last_seen', ARGV[1], 'body', ARGV[4],
                'headers', ARGV[5], 'token', token, 'lease_expires', ARGV[1]}
if ARGV[6] ~= '' then table.insert(fields, 'kind'); table.insert(fields, ARGV[6]) end
if ARGV[7] ~= '' then table.insert(fields, 'company_id'); table.insert(fields, ARGV[7]) end
if ARGV[10] ~= '' then table.insert(fields, 'verified_by'); table.insert(fields, ARGV[10]) end
redis.call('HSET', rec, unpack(fields))
touch(ARGV[1], ARGV[9], ARGV[8])
return {'queued', token, 0}
"""
)

_TAKE = (
    _PRELUDE
    + """
-- ARGV: now, lease_expires, ttl_ms, member
local cur = redis.call('HMGET', rec, 'state', 'attempts', 'token', 'lease_expires')
if cur[1] ~= 'queued' and cur[1] ~= 'processing' then
  return {'duplicate', 0, tonumber(cur[2] or '0'), '0'}
end
return hand_over(cur[1], cur[2], cur[3], cur[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

_PURGE = """
-- KEYS: index; ARGV: cutoff, now, record key prefix, offset, batch
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1],
                           'LIMIT', ARGV[4], ARGV[5])
local removed, kept = 0, 0
for _, member in ipairs(members) do
  local rec = ARGV[3] .. member
  local cur = redis.call('HMGET', rec, 'state', 'lease_expires')
  if cur[1] == 'processing' and tonumber(cur[2]) > tonumber(ARGV[2]) then
    kept = kept + 1
  else
    if cur[1] then removed = removed + 1 end
    redis.call('DEL', rec)
    redis.call('ZREM', KEYS[1], member)
  end
end
return {removed, #members, kept}
"""

_COUNT = """
-- KEYS: index; ARGV: record key prefix. Counts by state on the server: one round trip.
local counts = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local state = redis.call('HGET', ARGV[1] .. member, 'state')
  if state then counts[state] = (counts[state] or 0) + 1 end
end
local flat = {}
for state, n in pairs(counts) do
  flat[#flat + 1] = state
  flat[#flat + 1] = n
end
return flat
"""

_BATCH = 500


class _Script(NamedTuple):
    """A Lua script as EVALSHA names it; the source is sent only when the server lacks it."""

    source: str
    sha: str
    numkeys: int


def _script(source: str, numkeys: int) -> _Script:
    sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    return _Script(source, sha, numkeys)


_CLAIM_SCRIPT = _script(_CLAIM, 2)
_MOVE_SCRIPT = _script(_MOVE, 2)
_PARK_SCRIPT = _script(_PARK, 2)
_PURGE_SCRIPT = _script(_PURGE, 1)
_ENQUEUE_SCRIPT = _script(_ENQUEUE, 2)
_TAKE_SCRIPT = _script(_TAKE, 2)
_COUNT_SCRIPT = _script(_COUNT, 1)


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


def _send(connection: Any, script: _Script, keys_and_args: tuple[Any, ...]) -> Any:
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


def _claim_of(reply: list[Any]) -> Claim:
    """A script's answer ``{status, token, attempts[, retry_after]}`` as a :class:`Claim`."""
    status, token, attempts, *rest = reply
    retry_after = float(rest[0]) if rest else 0.0
    return Claim(ClaimStatus(status.decode()), int(token), int(attempts), retry_after)


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
        self._local = threading.local()
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
            pool = self.client.connection_pool
            pinned = _Pinned(pool.get_connection())
            weakref.finalize(pinned, pool.release, pinned.connection)
            self._local.pinned = pinned
        return pinned.connection

    def _eval(self, script: _Script, *keys_and_args: Any) -> Any:
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

    def _claim(self, entry: Entry, *, lease: float, force: bool) -> Claim:
        now = self._clock()
        args = (
            repr(now),
            repr(now + lease),
            repr(now - self.retention),
            "1" if force else "0",
            entry.fingerprint,
            entry.body,
            encode_headers(entry.headers) if entry.headers else "",
            _opt(entry.kind),
            _opt(entry.company_id),
            self._ttl_ms(lease),
            entry.key,
            repr(now - 2 * self.retention),
            _opt(entry.verified_by),
        )
        return _claim_of(self._eval(_CLAIM_SCRIPT, self._rec(entry.key), self._index, *args))

    def _move(self, key: str, token: int, change: Move) -> bool:
        changes = dict(change.changes)
        # Kept for the retention, and past a renewed lease or a deferred record's due time.
        ttl = self._ttl_ms(float(changes["lease_expires"] or 0.0) - self._clock())
        args: list[object] = [token, change.state.value, ttl, key]
        for field, value in change.changes:
            args += (field, _field_value(value))
        return bool(self._eval(_MOVE_SCRIPT, self._rec(key), self._index, *args))

    def _enqueue(self, entry: Entry) -> Claim:
        now = self._clock()
        args = (
            repr(now),
            repr(now - self.retention),
            entry.fingerprint,
            entry.body,
            encode_headers(entry.headers),
            _opt(entry.kind),
            _opt(entry.company_id),
            self._ttl_ms(0),
            entry.key,
            _opt(entry.verified_by),
        )
        return _claim_of(self._eval(_ENQUEUE_SCRIPT, self._rec(entry.key), self._index, *args))

    def _take(self, key: str, *, lease: float) -> Claim:
        now = self._clock()
        args = (repr(now), repr(now + lease), self._ttl_ms(lease), key)
        return _claim_of(self._eval(_TAKE_SCRIPT, self._rec(key), self._index, *args))

    def _park(self, entry: Entry, *, reason: str) -> None:
        args = (
            repr(self._clock()),
            entry.fingerprint,
            entry.body,
            encode_headers(entry.headers),
            _opt(entry.kind),
            _opt(entry.company_id),
            _opt(reason),
            self._ttl_ms(0),
            entry.key,
        )
        self._eval(_PARK_SCRIPT, self._rec(entry.key), self._index, *args)

    def _get(self, key: str) -> Record | None:
        with self._errors():
            fields = cast("dict[bytes, bytes]", self.client.hgetall(self._rec(key)))
        return _record(key, fields) if fields else None

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

    def ping(self) -> None:
        with self._errors():
            self.client.ping()

    def counts(self) -> dict[State, int]:
        """One script: the server walks the index (its cost grows with the records kept, but
        nothing crosses the wire but the counts)."""
        flat = self._eval(_COUNT_SCRIPT, self._index, f"{self.prefix}d:")
        found = dict.fromkeys(State, 0)
        for state, n in zip(flat[::2], flat[1::2], strict=True):
            found[State(state.decode())] = int(n)
        return found

    def purge(self, *, older_than: float | None = None) -> int:
        now = self._clock()
        cutoff = self._purge_cutoff(now, older_than)
        removed = kept = 0
        while True:
            args = (repr(cutoff), repr(now), f"{self.prefix}d:", kept, _BATCH)
            gone, scanned, live = self._eval(_PURGE_SCRIPT, self._index, *args)
            removed += int(gone)
            kept += int(live)
            if int(scanned) < _BATCH:
                return removed

    def close(self) -> None:
        # Dropping the thread-local drops every thread's _Pinned at once (threads still running
        # included), and their finalizers give the connections back to the pool.
        self._local = threading.local()
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"
