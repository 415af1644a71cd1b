"""High-water marks: the ordering decision every store performs with a claim or an enqueue.

A delivery that belongs to an ordering scope (:data:`codat_webhooks.ordering.SCOPES`) carries
a :class:`Mark`: its scope and its ``generatedDate`` (or, for the legacy status chain, its
``OldStatus`` and ``NewStatus``). Each store keeps one :class:`HighWater` per scope, in a place
of its own (SQL: the ``<table>_marks`` table; Redis: ``<prefix>m:<scope>`` hashes; memory: a
dict), and changes it in the same transaction (or Lua script, or lock) as the claim or enqueue
that hands the key over. So two processes that receive two events of one scope at once cannot
both believe they hold the newest.

:func:`judge` is the decision, written once; every backend reads the scope's mark, calls it
(SQL, memory) or runs its line-for-line Lua copy (:mod:`.lua`), and writes what it returns:

=========================================  ==================================================
the scope's mark                           verdict, and the mark afterwards
=========================================  ==================================================
none, or last written past retention       fresh; the delivery's mark
held by this very key (a retry, a replay)  this key's own verdict again (its ``gap``); kept
status chain, another key                  ``gap`` if ``OldStatus`` differs from the mark's
                                           status; the delivery's mark (with its ``gap``)
older ``generatedDate``                    fresh; the delivery's mark
equal ``generatedDate``                    fresh (equal is not stale); kept
newer ``generatedDate``                    ``stale``, newer = the mark's key and date; kept
=========================================  ==================================================

A verdict that is stale or gapped is also kept per key (:class:`Verdict` rows), with the same
retention as records, so ``events``, ``show`` and the console can say so later. Marks and
verdicts are purged with the records: whatever was last written before the purge's cutoff.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ADVANCES_WHERE",
    "CHAIN_GAP",
    "CHAIN_MOVES_WHERE",
    "FRESH",
    "HighWater",
    "Mark",
    "Verdict",
    "judge",
    "recheck",
]


class Mark(NamedTuple):
    """What one delivery tells its ordering scope (from :func:`codat_webhooks.ordering.mark_of`)."""

    scope: str
    at: float | None
    """``generatedDate`` in Unix seconds; ``None`` for a status chain, ordered by status."""
    old_status: str | None = None
    """Status chain only: the ``OldStatus`` the change started from."""
    new_status: str | None = None
    """Status chain only: the ``NewStatus`` it ended in."""


class HighWater(NamedTuple):
    """A scope's mark as the store keeps it."""

    scope: str
    at: float
    """The newest ``generatedDate`` received (0.0 for a status chain)."""
    key: str
    """The delivery key that carried it."""
    status: str | None
    """Status chain: the last ``NewStatus`` received."""
    gap: bool
    """Status chain: whether ``key`` itself broke the chain (its verdict, for its retries)."""
    last_seen: float
    """When it was last written: retention runs from here."""


class Verdict(NamedTuple):
    """A delivery's place in its scope, as a store answers it (see ``Claim.order``)."""

    stale: bool = False
    newer_key: str | None = None
    """For a stale delivery: the key of the newer event received first."""
    newer_at: float | None = None
    """... and its ``generatedDate`` in Unix seconds."""
    gap: bool = False

    @property
    def notable(self) -> bool:
        """Whether it is kept per key: stale or gapped."""
        return self.stale or self.gap


FRESH = Verdict()
"""In order: not stale, no gap."""


def judge(
    current: HighWater | None, mark: Mark, key: str, now: float, retention: float
) -> tuple[Verdict, HighWater | None]:
    """The verdict for ``key`` bringing ``mark``, and the mark to write (``None``: keep it)."""
    if current is None or now - current.last_seen > retention:
        return FRESH, HighWater(mark.scope, mark.at or 0.0, key, mark.new_status, False, now)
    if current.key == key:
        return Verdict(gap=current.gap), None
    if mark.at is None:
        gap = (
            mark.old_status is not None
            and current.status is not None
            and mark.old_status != current.status
        )
        verdict = Verdict(gap=gap)
        return verdict, HighWater(mark.scope, 0.0, key, mark.new_status, gap, now)
    if mark.at > current.at:
        return FRESH, HighWater(mark.scope, mark.at, key, None, False, now)
    if mark.at == current.at:
        return FRESH, None
    return Verdict(True, current.key, current.at), None


ADVANCES_WHERE = "excluded.at > {mark}.at OR {mark}.last_seen < {cutoff}"
""":func:`judge`'s moves of a dated mark as a SQL condition, for an upsert that moves the mark
in one statement (``{mark}``: the marks table, ``{cutoff}``: now minus retention). The mark
moves (and the delivery is in order) when its ``generatedDate`` is newer, or the mark is past
retention; in every other case the statement changes nothing and :func:`judge` is asked."""


CHAIN_GAP = "CASE WHEN {mark}.last_seen >= {cutoff} AND {mark}.status <> {old} THEN 1 ELSE 0 END"
CHAIN_MOVES_WHERE = "{mark}.key <> excluded.key OR {mark}.last_seen < {cutoff}"
""":func:`judge`'s moves of a status-chain mark in SQL, for an upsert that moves the mark and
says its ``gap`` in one statement (``{old}``: the delivery's ``OldStatus``). The mark moves
whenever another key brings it, or it is past retention; the move is a gap when the mark is
alive and its status is not ``OldStatus`` (a ``NULL`` on either side is no gap, as in
:func:`judge`). Only the key that holds the mark, brought again, changes nothing, and
:func:`judge` is asked for its own verdict."""


def recheck(current: HighWater | None, mark: Mark, key: str, kept: Verdict | None) -> Verdict:
    """A queued delivery's verdict when a worker takes it: the one given at enqueue
    (``kept``), made stale if a newer event of the scope arrived while it waited.

    Read-only: the mark moved when the newer event was enqueued.
    """
    verdict = kept or FRESH
    if (
        verdict.stale
        or current is None
        or mark.at is None
        or current.key == key
        or mark.at >= current.at
    ):
        return verdict
    return verdict._replace(stale=True, newer_key=current.key, newer_at=current.at)
