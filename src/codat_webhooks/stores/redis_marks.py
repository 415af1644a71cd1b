"""Ordering marks in Redis: a hash per scope and per noted key, moved by the claim's script.

``<prefix>m:<scope>`` holds a scope's :class:`~.marks.HighWater`; ``<prefix>v:<key>`` the
verdict of a key that was stale or broke a status chain; ``<prefix>marks`` indexes both by
when they were last written, for :meth:`RedisStore.purge`. Each expires after the retention by
itself. The claim and enqueue scripts of an entry with a mark (``lua.CLAIM_MARKED``,
``lua.ENQUEUE_MARKED``) run the machine's decision and then ``judge``, the Lua copy of
:func:`.marks.judge`, in one script: atomic on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from . import lua, machine, marks
from .marks import HighWater, Mark, Verdict
from .records import decodes

if TYPE_CHECKING:
    from .records import Claim
    from .redis import RedisStore

__all__ = ["RedisMarks"]


def _text(value: bytes | None) -> str | None:
    return None if value is None or value == b"" else value.decode()


@decodes("an ordering verdict")
def _verdict_of(fields: dict[bytes, bytes]) -> Verdict:
    newer_at = _text(fields.get(b"newer_at"))
    return Verdict(
        fields.get(b"stale") == b"1",
        _text(fields.get(b"newer_key")),
        None if newer_at is None else float(newer_at),
        fields.get(b"gap") == b"1",
    )


@decodes("an ordering verdict")
def _appended_verdict(item: list[Any]) -> Verdict:
    """The verdict a claim or enqueue script appends to its answer:
    ``[stale, newer_key, newer_at, gap]``."""
    stale, newer_key, newer_at, gap = item
    at = newer_at.decode() if isinstance(newer_at, bytes) else str(newer_at)
    key = newer_key.decode() if isinstance(newer_key, bytes) else str(newer_key)
    return Verdict(int(stale) == 1, key or None, float(at) if at else None, int(gap) == 1)


class RedisMarks:
    """The ordering half of one :class:`RedisStore`: key names, arguments and reads."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.index = f"{store.prefix}marks"

    def _mark_key(self, scope: str) -> str:
        return f"{self.store.prefix}m:{scope}"

    def _verdict_key(self, key: str) -> str:
        return f"{self.store.prefix}v:{key}"

    def keys(self, key: str, mark: Mark) -> tuple[str, str, str]:
        """KEYS 4-6 of the marked scripts (after the record, the index and the history)."""
        return (self._mark_key(mark.scope), self._verdict_key(key), self.index)

    def arguments(self, mark: Mark, now: float) -> tuple[str, str, str, str]:
        """The four ARGV of the marked scripts before the history entry (the last)."""
        at = "" if mark.at is None else repr(mark.at)
        cutoff = repr(now - self.store.retention)
        return (at, mark.old_status or "", mark.new_status or "", cutoff)

    @staticmethod
    def answer(claim: Claim, reply: list[Any]) -> Claim:
        """``claim`` with the verdict the script appended, if it judged one."""
        if len(reply) < 2:
            return claim
        return machine.in_scope(claim, _appended_verdict(reply[1]))

    def recheck(self, key: str, mark: Mark) -> Verdict:
        """Two reads; the verdict is written only if newly stale (it can only grow stale, so
        a race between two writers of it writes the same thing)."""
        client, store = self.store.client, self.store
        with store._errors():
            pipe = client.pipeline(transaction=False)
            pipe.hgetall(self._mark_key(mark.scope))
            pipe.hgetall(self._verdict_key(key))
            mark_fields, kept_fields = pipe.execute()
        current = _high_water_of(mark.scope, mark_fields) if mark_fields else None
        kept = _verdict_of(kept_fields) if kept_fields else None
        verdict = marks.recheck(current, mark, key, kept)
        if verdict.notable and verdict != kept:
            now = store._clock()
            name = self._verdict_key(key)
            fields = {
                "stale": int(verdict.stale),
                "newer_key": verdict.newer_key or "",
                "newer_at": "" if verdict.newer_at is None else repr(verdict.newer_at),
                "gap": int(verdict.gap),
                "last_seen": repr(now),
            }
            with store._errors():
                pipe = client.pipeline(transaction=True)
                pipe.hset(name, mapping=fields)  # type: ignore[arg-type]
                pipe.pexpire(name, store._ttl_ms(0))
                pipe.zadd(self.index, {name: now})
                pipe.execute()
        return verdict

    def verdict(self, key: str) -> Verdict | None:
        with self.store._errors():
            fields = cast("dict[bytes, bytes]", self.store.client.hgetall(self._verdict_key(key)))
        return _verdict_of(fields) if fields else None

    def verdicts(self, keys: Sequence[str]) -> dict[str, Verdict]:
        with self.store._errors():
            pipe = self.store.client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(self._verdict_key(key))
            replies = pipe.execute()
        return {
            key: _verdict_of(fields) for key, fields in zip(keys, replies, strict=True) if fields
        }

    def high_water(self, scope: str) -> HighWater | None:
        with self.store._errors():
            fields = cast("dict[bytes, bytes]", self.store.client.hgetall(self._mark_key(scope)))
        return _high_water_of(scope, fields) if fields else None

    def purge(self, cutoff: float) -> None:
        """Marks and verdicts last written before ``cutoff``, in batches."""
        while int(self.store._eval(lua.PURGE_MARKS, self.index, repr(cutoff))) >= 500:
            pass


@decodes("an ordering mark")
def _high_water_of(scope: str, fields: dict[bytes, bytes]) -> HighWater:
    return HighWater(
        scope,
        float(fields[b"at"]),
        fields[b"key"].decode(),
        _text(fields.get(b"status")),
        fields.get(b"gap") == b"1",
        float(fields[b"last_seen"]),
    )
