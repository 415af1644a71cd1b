"""The decisions of :mod:`.machine`, as the Lua scripts :class:`RedisStore` runs on the server.

Each operation is one script, so it is atomic on the server without locks or WATCH retries.
The scripts follow ``machine.py`` function by function, and share its helpers (the prelude):

============  =====================  ======================================================
script        performs               notes
============  =====================  ======================================================
``CLAIM``     ``machine.claim``      ``first_claim`` via ``record_of``; ``hand_over`` shared
``ENQUEUE``   ``machine.enqueue``    a new round via ``record_of``, token kept
``TAKE``      ``machine.take``       ``hand_over`` shared with ``CLAIM``
``MOVE``      ``machine.move``       renew/complete/release/defer: the fields come from the
                                     :class:`~.machine.Move` Python built, fenced on token
``PARK``      ``machine.park``       a new record via ``record_of``
``PURGE``     ``machine.purgeable``  over the ``last_seen`` index, in batches
``COUNT``     ``Store.counts``       one round trip, only counts cross the wire
============  =====================  ======================================================

The contract suite (``tests/stores/test_store_machine.py``) runs random sequences of every
operation on Redis and on MemoryStore, which applies ``machine.py`` directly, and requires the
same answers and records: that is what keeps these scripts and the machine the same.

A record is a hash. Optional strings are kept with a "=" in front, so "absent" (None) and ""
stay distinct. Every script that writes an entry gets it first in ``ARGV``: fingerprint, body,
headers, kind, company_id, verified_by (``''``: none), then now, the key's TTL in ms and the
key itself (its member in the ``last_seen`` index), then its own arguments.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from .history import ANSWERS, HISTORY_LIMIT

__all__ = [
    "CLAIM",
    "CLAIM_MARKED",
    "COUNT",
    "ENQUEUE",
    "ENQUEUE_MARKED",
    "MOVE",
    "NOTE",
    "PARK",
    "PURGE",
    "PURGE_MARKS",
    "TAKE",
    "Script",
]

_PRELUDE = """
local rec, index = KEYS[1], KEYS[2]
local now, ttl, member = ARGV[7], ARGV[8], ARGV[9]
-- Index the key by last_seen and keep it for its TTL.
local function touch()
  redis.call('ZADD', index, now, member)
  redis.call('PEXPIRE', rec, ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
-- machine._record_of: a new record of what the delivery brings (ARGV 1-6).
local function record_of(existed, state, attempts, first_seen, token, lease_expires)
  if existed then redis.call('DEL', rec) end
  local fields = {'state', state, 'fingerprint', ARGV[1], 'attempts', attempts,
                  'first_seen', first_seen, 'last_seen', now, 'body', ARGV[2],
                  'headers', ARGV[3], 'token', token, 'lease_expires', lease_expires}
  for i, name in ipairs({'kind', 'company_id', 'verified_by'}) do
    if ARGV[3 + i] ~= '' then fields[#fields + 1] = name; fields[#fields + 1] = ARGV[3 + i] end
  end
  redis.call('HSET', rec, unpack(fields))
  touch()
end
-- machine._forgotten: absent, or last seen longer than retention ago (cutoff).
local function forgotten(state, last_seen, cutoff)
  return not state or tonumber(last_seen) < tonumber(cutoff)
end
-- machine._hand_over: IN_PROGRESS while a lease is alive, else PROCESSING under a new token.
local function hand_over(state, attempts, token, lease_expires, expires)
  attempts, lease_expires = tonumber(attempts), tonumber(lease_expires)
  if state == 'processing' and lease_expires > tonumber(now) then
    return {'in_progress', 0, attempts, tostring(lease_expires - tonumber(now))}
  end
  token, attempts = tonumber(token) + 1, attempts + 1
  redis.call('HSET', rec, 'state', 'processing', 'attempts', attempts, 'last_seen', now,
             'token', token, 'lease_expires', expires)
  touch()
  return {'claimed', token, attempts, '0'}
end
"""


# stores/history.py: the entry this operation describes goes to the list KEYS[3], numbered
# from 1, the newest HISTORY_LIMIT kept. The last ARGV is the entry ('' for none) as JSON cut
# in two at a '|': the time (and, for a whole entry, status and outcome), then the rest.
# A claim or enqueue sends a template: the status and outcome are its answer (ANSWERS).
_HISTORY = """
local hist = ARGV[#ARGV]
local ANSWERS = {@ANSWERS@}
local function note(answer)
  if hist == '' then return end
  local cut = string.find(hist, '|', 1, true)
  local head = string.sub(hist, 1, cut - 1)
  if answer then head = head .. ',' .. answer end
  local last = redis.call('LINDEX', KEYS[3], -1)
  local seq = 1
  if last then seq = tonumber(string.match(last, '^%[(%d+)')) + 1 end
  redis.call('RPUSH', KEYS[3], '[' .. seq .. ',' .. head .. ',' .. string.sub(hist, cut + 1))
  if seq > @LIMIT@ then redis.call('LTRIM', KEYS[3], -@LIMIT@, -1) end
  redis.call('PEXPIRE', KEYS[3], ttl)
end
local function note_answer(status)
  local answer = ANSWERS[status]
  if answer then note(answer) end
end
""".replace(
    "@ANSWERS@",
    ", ".join(
        f"{status.value} = {json.dumps(f'{code},{json.dumps(outcome)}')}"
        for status, (code, outcome) in ANSWERS.items()
    ),
).replace("@LIMIT@", str(HISTORY_LIMIT))

_CLAIM = """
-- ARGV 10-13: lease_expires, cutoff (retention), force, index floor (2 x retention)
local cur = redis.call('HMGET', rec, 'state', 'fingerprint', 'attempts', 'token',
                       'lease_expires', 'last_seen')
if forgotten(cur[1], cur[6], ARGV[11]) then
  record_of(cur[1], 'processing', 1, now, 1, ARGV[10])
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[13])
  return {'claimed', 1, 1, '0'}
end
if cur[2] ~= ARGV[1] then
  note_answer('conflict')
  return {'conflict', 0, tonumber(cur[3]), '0'}
end
if cur[1] == 'done' and ARGV[12] ~= '1' then
  redis.call('HSET', rec, 'last_seen', now)
  touch()
  note_answer('duplicate')
  return {'duplicate', 0, tonumber(cur[3]), '0'}
end
local answer = hand_over(cur[1], cur[3], cur[4], cur[5], ARGV[10])
note_answer(answer[1])
if answer[1] == 'claimed' then  -- what this delivery brings refreshes what was kept
  if ARGV[2] ~= '' then redis.call('HSET', rec, 'body', ARGV[2]) end
  if ARGV[3] ~= '' then redis.call('HSET', rec, 'headers', ARGV[3]) end
  for i, name in ipairs({'kind', 'company_id', 'verified_by'}) do
    local value = ARGV[3 + i]
    if value ~= '' and value ~= '=' then redis.call('HSET', rec, name, value) end
  end
end
return answer
"""

_ENQUEUE = """
-- ARGV 10: cutoff (retention)
local cur = redis.call('HMGET', rec, 'state', 'fingerprint', 'attempts', 'token', 'last_seen',
                       'first_seen')
local token, first_seen = 0, now
if not forgotten(cur[1], cur[5], ARGV[10]) then
  if cur[2] ~= ARGV[1] then
    note_answer('conflict')
    return {'conflict', 0, tonumber(cur[3])}
  end
  if cur[1] ~= 'failed' and cur[1] ~= 'parked' then
    note_answer('duplicate')
    return {'duplicate', 0, tonumber(cur[3]), '0', cur[1]}
  end
  token, first_seen = tonumber(cur[4]), cur[6]
end
record_of(cur[1], 'queued', 0, first_seen, token, now)
note_answer('queued')
return {'queued', token, 0}
"""

_TAKE = """
-- ARGV 10: lease_expires (ARGV 1-6 unused)
local cur = redis.call('HMGET', rec, 'state', 'attempts', 'token', 'lease_expires')
if cur[1] ~= 'queued' and cur[1] ~= 'processing' then
  return {'duplicate', 0, tonumber(cur[2] or '0'), '0'}
end
return hand_over(cur[1], cur[2], cur[3], cur[4], ARGV[10])
"""

_MOVE = """
-- A record still PROCESSING under ARGV[10] gets state ARGV[11] and the changes: pairs of field
-- and value from ARGV[12] on ('' deletes the field), then the history entry. Else nothing
-- changes: fenced out.
-- The TTL is the retention, or longer for a renewed lease or a deferred due time.
local cur = redis.call('HMGET', rec, 'state', 'token')
if cur[1] ~= 'processing' or tonumber(cur[2]) ~= tonumber(ARGV[10]) then return 0 end
local set = {'state', ARGV[11]}
for i = 12, #ARGV - 1, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', rec, ARGV[i])
  else
    set[#set + 1] = ARGV[i]
    set[#set + 1] = ARGV[i + 1]
    if ARGV[i] == 'last_seen' then redis.call('ZADD', index, ARGV[i + 1], member) end
  end
end
redis.call('HSET', rec, unpack(set))
redis.call('PEXPIRE', rec, ttl)
note(nil)
return 1
"""

_PARK = """
-- ARGV 10: reason (with its "=")
local cur = redis.call('HMGET', rec, 'state', 'attempts', 'fingerprint')
if cur[1] and cur[3] ~= ARGV[1] then
  return 0  -- another body's record: Store.park keeps this one beside it
elseif not cur[1] then
  record_of(false, 'parked', 1, now, 0, '0')
  redis.call('HSET', rec, 'last_error', ARGV[10])
elseif cur[1] == 'parked' or cur[1] == 'failed' then
  redis.call('HSET', rec, 'state', 'parked', 'attempts', tonumber(cur[2]) + 1,
             'last_seen', now, 'last_error', ARGV[10])
  touch()
else
  redis.call('HSET', rec, 'last_seen', now)
  touch()
end
note(nil)
return 1
"""

_PURGE = """
-- KEYS: index; ARGV: cutoff, now, record key prefix, offset, batch, history key prefix.
-- machine.purgeable: last seen before the cutoff (the index's range), and not a live lease.
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
    redis.call('DEL', rec, ARGV[6] .. member)
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


class Script(NamedTuple):
    """A Lua script as EVALSHA names it; the source is sent only when the server lacks it."""

    source: str
    sha: str
    numkeys: int


def _script(source: str, numkeys: int) -> Script:
    sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    return Script(source, sha, numkeys)


CLAIM = _script(_PRELUDE + _HISTORY + _CLAIM, 3)
ENQUEUE = _script(_PRELUDE + _HISTORY + _ENQUEUE, 3)
TAKE = _script(_PRELUDE + _HISTORY + _TAKE, 3)
MOVE = _script(_PRELUDE + _HISTORY + _MOVE, 3)
PARK = _script(_PRELUDE + _HISTORY + _PARK, 3)
NOTE = _script(_PRELUDE + _HISTORY + "note(nil)\nreturn 1\n", 3)
"""An entry alone, with no record (``Store.note``)."""
PURGE = _script(_PURGE, 1)
COUNT = _script(_COUNT, 1)


# --- ordering marks (see marks.py): a claim or enqueue that also moves its scope's mark -------

_JUDGE = """
-- marks.judge. KEYS 4-6: the scope's mark, this key's verdict, the marks' last_seen index.
-- The four ARGV before the history entry (the last): the mark's at ('' for a status chain),
-- old and new status ('' none), and the retention cutoff. Returns {stale, newer_key,
-- newer_at, gap}.
local function judge()
  local n = #ARGV - 1
  local at, old, new, cutoff = ARGV[n - 3], ARGV[n - 2], ARGV[n - 1], ARGV[n]
  local mk, vk, marks = KEYS[4], KEYS[5], KEYS[6]
  local cur = redis.call('HMGET', mk, 'at', 'key', 'status', 'gap', 'last_seen')
  local write, stale, newer_key, newer_at, gap = false, 0, '', '', 0
  if not cur[1] or tonumber(cur[5]) < tonumber(cutoff) then
    write = true
  elseif cur[2] == member then
    gap = tonumber(cur[4])
  elseif at == '' then
    if old ~= '' and cur[3] and old ~= cur[3] then gap = 1 end
    write = true
  elseif tonumber(at) > tonumber(cur[1]) then
    write = true
  elseif tonumber(at) < tonumber(cur[1]) then
    stale, newer_key, newer_at = 1, cur[2], cur[1]
  end
  if write then
    redis.call('DEL', mk)
    redis.call('HSET', mk, 'at', at == '' and '0' or at, 'key', member, 'gap', gap,
               'last_seen', now)
    if new ~= '' then redis.call('HSET', mk, 'status', new) end
    redis.call('PEXPIRE', mk, ttl)
    redis.call('ZADD', marks, now, mk)
  end
  if stale == 1 or gap == 1 then
    redis.call('HSET', vk, 'stale', stale, 'newer_key', newer_key, 'newer_at', newer_at,
               'gap', gap, 'last_seen', now)
    redis.call('PEXPIRE', vk, ttl)
    redis.call('ZADD', marks, now, vk)
  end
  return {stale, newer_key, newer_at, gap}
end
"""

_THEN_JUDGE = """
end
local answer = decide()
if answer[1] == 'claimed' or answer[1] == 'queued' then return {answer, judge()} end
return {answer}
"""

_PURGE_MARKS = """
-- KEYS: the marks' index; ARGV: cutoff. Marks and verdicts last written before it go.
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 500)
for _, key in ipairs(gone) do
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], key)
end
return #gone
"""


def _marked(body: str) -> Script:
    """``body`` (a script of the machine) as a function, then the mark judged if it handed
    the key over: both in one script, so atomic together."""
    source = _PRELUDE + _HISTORY + _JUDGE + "local function decide()\n" + body + _THEN_JUDGE
    return _script(source, 6)


CLAIM_MARKED = _marked(_CLAIM)
ENQUEUE_MARKED = _marked(_ENQUEUE)
PURGE_MARKS = _script(_PURGE_MARKS, 1)
