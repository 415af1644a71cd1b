"""What needs a person now: the findings of ``codat-webhooks status`` and the console's panel.

Codat has no API that lists what it sent or what it gave up on, so the findings are read from
the store: each key's record, its history (:mod:`.stores.history`) and the sender's horizon
(:mod:`.horizon`). Each finding says what was found and what to do about it, and has a
severity: ``action`` (a person must act: a delivery only a replay will run, an endpoint on its
way to being disabled, most answers 401), ``warning`` (Codat is still retrying; a parked
body), ``info`` (the counts). Actions come first, keys abandoned by the sender first of all.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from .describe import ago, format_time
from .horizon import CODAT_DISABLES_AFTER, Horizon, sender_horizon
from .queues.base import RetryPolicy
from .stores.base import Record, State, Store
from .stores.history import UNAUTHORIZED_KEY, HistoryEntry

__all__ = [
    "PORTAL_EVENTS",
    "SEVERITIES",
    "UNAUTHORIZED_KEY",
    "Finding",
    "KeyReport",
    "ago",
    "key_reports",
    "status_report",
]

SEVERITIES = ("action", "warning", "info")
"""From the most to the least urgent; ``status`` exits 1 when any finding is ``action``."""

PORTAL_EVENTS = "https://app.codat.io/monitor/events"
"""Where the Codat Portal lists the webhook endpoints, their attempts, and recovers messages."""

SCAN = 500
"""Records read per look (the newest): enough for a status, bounded for a large store."""

_HOUR, _DAY = 3600.0, 86400.0
_A_WHILE = 600.0
"""Failures over less than this are a blip, not an endpoint on its way to being disabled."""


class Finding(NamedTuple):
    severity: str
    """``action``, ``warning`` or ``info`` (see :data:`SEVERITIES`)."""
    what: str
    do: str
    keys: tuple[str, ...] = ()


class KeyReport(NamedTuple):
    """One delivery with its kept history and the sender's horizon."""

    record: Record
    history: list[HistoryEntry]
    horizon: Horizon
    dropped: int = 0
    """Older entries no longer kept (see :class:`~.stores.history.History`)."""


def key_reports(
    store: Store, records: Iterable[Record], now: float, retries: RetryPolicy | None = None
) -> list[KeyReport]:
    """Each record with its history and horizon (one history read per record)."""
    reports = []
    for record in records:
        kept = store.kept_history(record.key)
        horizon = sender_horizon(record, kept, now, retries)
        reports.append(KeyReport(record, kept.entries, horizon, kept.dropped))
    return reports


def status_report(
    store: Store,
    *,
    now: float | None = None,
    retries: RetryPolicy | None = None,
    app: str | None = None,
    scan: int = SCAN,
) -> list[Finding]:
    """The findings for ``store`` at ``now``, most urgent first. ``app`` is the ``--app``
    value the commands it suggests should carry; ``scan`` bounds the records read."""
    now = time.time() if now is None else now
    recent = store.find(since=now - _DAY, limit=scan)
    unfinished = store.find(states=(State.FAILED, State.PARKED), limit=scan)
    records = {record.key: record for record in [*recent, *unfinished]}
    reports = key_reports(store, records.values(), now, retries)
    unauthorized = store.history(UNAUTHORIZED_KEY)
    entries = [entry for report in reports for entry in report.history]
    flag = f" --app {app}" if app else ""
    findings = [
        *_abandoned(reports, flag),
        *_disable_risk(entries, unauthorized, now),
        *_unauthorized(entries, unauthorized, now),
        *_retrying(reports, now),
        *_parked(reports, flag),
        *_counts(entries, unauthorized, now),
    ]
    order = {severity: n for n, severity in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda finding: order[finding.severity])


def recover_steps(since: float) -> str:
    return (
        f"recover what Codat gave up on in the Codat Portal ({PORTAL_EVENTS}): Monitor > "
        f"Webhooks > Events > Endpoints, open this endpoint, and recover failed messages "
        f"since {format_time(since)} (the Portal reaches back two weeks)"
    )


def _abandoned(reports: list[KeyReport], flag: str) -> list[Finding]:
    gone = [report for report in reports if report.horizon.abandoned]
    if not gone:
        return []
    gone.sort(key=lambda report: report.record.first_seen)
    keys = tuple(report.record.key for report in gone)
    codat = [report for report in gone if report.horizon.sender == "codat"]
    what = (
        f"{len(gone)} deliver{'y' if len(gone) == 1 else 'ies'} abandoned by the sender: "
        f"{'Codat' if codat else 'our queue'} made its last attempt and it failed, so only a "
        f"replay will run {'it' if len(gone) == 1 else 'them'} now ({', '.join(keys[:5])}"
        f"{', ...' if len(keys) > 5 else ''})"
    )
    replay = f"codat-webhooks replay {' '.join(keys)}{flag}"
    do = f"fix the cause (see `codat-webhooks show KEY`), then run: {replay}"
    return [Finding("action", what, do, keys)]


def _failure(entry: HistoryEntry) -> bool:
    return entry.status is not None and not 200 <= entry.status < 300


def _disable_risk(
    entries: list[HistoryEntry], unauthorized: list[HistoryEntry], now: float
) -> list[Finding]:
    """Every answer since some time failed: Codat's 5-day rule is running."""
    answers = sorted(
        (entry for entry in [*entries, *unauthorized] if entry.status is not None),
        key=lambda entry: entry.at,
    )
    streak: list[HistoryEntry] = []
    for entry in reversed(answers):
        if not _failure(entry):
            break
        streak.append(entry)
    if len(streak) < 3 or streak[0].at - streak[-1].at < _A_WHILE:
        return []
    since = streak[-1].at
    disabled_at = since + CODAT_DISABLES_AFTER
    what = (
        f"every answer since {format_time(since)} ({ago(now - since)} ago, {len(streak)} "
        f"answers) was a failure: Codat disables an endpoint whose attempts all fail for 5 "
        f"days, so this one in about {ago(disabled_at - now)} (at {format_time(disabled_at)})"
    )
    do = f"fix the cause (the failing answers below say which), then {recover_steps(since)}"
    return [Finding("action", what, do)]


def _unauthorized(
    entries: list[HistoryEntry], unauthorized: list[HistoryEntry], now: float
) -> list[Finding]:
    hour = [entry for entry in unauthorized if entry.at >= now - _HOUR]
    day = [entry for entry in unauthorized if entry.at >= now - _DAY]
    if not day:
        return []
    answered = sum(1 for entry in entries if entry.status is not None and entry.at >= now - _HOUR)
    share = len(hour) / (len(hour) + answered) if hour else 0.0
    severity = "action" if hour and share >= 0.5 else "warning"
    last = day[-1]
    what = (
        f"{share:.0%} of answers in the last hour were 401 ({len(hour)} in the last hour, "
        f"{len(day)} in the last day, at most one a second noted per process); the latest at "
        f"{format_time(last.at)}: {last.error or 'no credential matched'}"
    )
    do = (
        "a signing secret or Authorization value no longer matches, the usual cause after a "
        "rotation: compare CODAT_WEBHOOKS_SIGNING_SECRET / CODAT_WEBHOOKS_AUTHORIZATION (or "
        "your receiver's settings) with the endpoint's signing secret and the Authorization "
        f"header in the Codat Portal ({PORTAL_EVENTS}); during a rotation configure both the "
        "old and the new value; the receiver's log says why each 401 was given"
    )
    return [Finding(severity, what, do)]


def _retrying(reports: list[KeyReport], now: float) -> list[Finding]:
    findings = []
    for report in reports:
        record, horizon = report.record, report.horizon
        if record.state is not State.FAILED or horizon.abandoned or not horizon.attempts_left:
            continue
        who = "Codat" if horizon.sender == "codat" else "our queue"
        when = horizon.next_attempt_after
        next_text = ""
        if when is not None:
            due = f"in about {ago(when - now)}" if when > now else "due"
            next_text = f", the next after {format_time(when)} ({due})"
        what = (
            f"{record.key} ({record.kind or 'unknown type'}) is failing: attempt "
            f"{horizon.attempts_seen}, {horizon.attempts_left} left from {who}{next_text}"
        )
        do = f"fix the cause before the attempts run out: {record.last_error or 'see its history'}"
        findings.append(Finding("warning", what, do, (record.key,)))
    return findings


def _parked(reports: list[KeyReport], flag: str) -> list[Finding]:
    parked = [
        report.record.key
        for report in reports
        if report.record.state is State.PARKED and not report.horizon.abandoned
    ]
    if not parked:
        return []
    what = (
        f"{len(parked)} parked deliver{'y' if len(parked) == 1 else 'ies'}: authenticated, but"
        " not an alert or event this version reads (or a second body under a known key)"
    )
    do = (
        f"look at them with `codat-webhooks events --state parked{flag}`; after a fix, "
        f"`codat-webhooks replay --state parked{flag}`"
    )
    return [Finding("warning", what, do, tuple(parked))]


def _counts(
    entries: list[HistoryEntry], unauthorized: list[HistoryEntry], now: float
) -> list[Finding]:
    findings = []
    every = [*entries, *unauthorized]
    for label, span in (("last hour", _HOUR), ("last day", _DAY)):
        counted = Counter(entry.outcome for entry in every if entry.at >= now - span)
        text = ", ".join(f"{n} {outcome}" for outcome, n in counted.most_common()) or "nothing"
        findings.append(Finding("info", f"{label}: {text}", "nothing to do"))
    successes = [entry.at for entry in entries if entry.outcome == "processed"]
    if successes:
        last = max(successes)
        what = f"last successful delivery: {format_time(last)} ({ago(now - last)} ago)"
        findings.append(Finding("info", what, "nothing to do"))
    elif every:
        findings.append(
            Finding(
                "warning",
                "no successful delivery in the last day",
                "check the failures above and the receiver's log",
            )
        )
    else:
        findings.append(
            Finding(
                "info",
                "no delivery in the last day",
                f"if Codat should have sent some, check the endpoint in the Codat Portal "
                f"({PORTAL_EVENTS}): a disabled or unreachable endpoint leaves nothing here; "
                f"then {recover_steps(now - _DAY)}",
            )
        )
    return findings
