"""A receiver built before ``fork()``, as gunicorn ``--preload`` and Celery's prefork pool build it.

The parent uses its store (so it holds open connections, a pool and its threads), then forks
children that share the receiver object, inline and through the worker path. Each child claims
and completes 200 keys of its own, and all of them deliver another 200 keys at once. Each hook
run is written to a log with the child's PID and the payload's own ID, so a child given another
key's body, a key run twice, a child that did not run its own keys, or a store error shows up,
and a child that hangs is killed at a deadline and fails the test. The parent then uses its
store again: a child that closed or wrote on the parent's connections would break it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.queues.test_queued_receiver import ListQueue

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.stores import State, Store
from codat_webhooks.testing import sample_body

pytestmark = pytest.mark.slow

CHILDREN = 3
KEYS = 200
"""Keys each child claims and completes alone, and keys all children deliver at once."""
SETTLED = {"processed", "duplicate"}
PASSING = {"in_progress"}
"""Answers that are no error: another child holds the key's lease for now."""
THREADS = 2
DEADLINE = 60.0  # well inside pytest-timeout's 120 s, so the children are always reaped


class LogRuns:
    """One line per hook run: the child, the delivery key and the payload's own ID."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @hookimpl
    def on_alert(self, alert: Any, delivery: Any) -> None:
        line = f"{os.getpid()} {delivery.key} {alert.alert_id}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one short O_APPEND write: never interleaved
        finally:
            os.close(fd)


class CountProblems(logging.Handler):
    """Warnings and errors from the library: store errors, fenced completions."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _deliver_all(receiver: Receiver, jobs: list[Any], worker_path: bool) -> Counter[str]:
    """Every job until it is settled, retrying a 503 as Codat would (briefly, here)."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(share: list[Any]) -> None:
        for job in share:
            for _ in range(200):
                if worker_path:
                    outcome = str(receiver.process_queued(job).outcome)
                else:
                    outcome = str(receiver.handle("POST", {}, job).outcome)
                settled = outcome in SETTLED
                with lock:
                    outcomes[outcome] += 1
                if settled:
                    break
                time.sleep(0.01)

    # One share on the thread that forked (a gunicorn sync worker and a Celery pool process
    # serve on it, and it holds what the parent opened there), the others on new threads.
    threads = [threading.Thread(target=run, args=(jobs[i::THREADS],)) for i in range(1, THREADS)]
    for thread in threads:
        thread.start()
    run(jobs[0::THREADS])
    for thread in threads:
        thread.join()
    return outcomes


def _child(receiver: Receiver, jobs: list[Any], worker_path: bool, report: Path) -> None:
    """The body of a forked child; it never returns into pytest."""
    status = 1
    try:
        problems = CountProblems()
        logging.getLogger("codat_webhooks").addHandler(problems)
        outcomes = _deliver_all(receiver, jobs, worker_path)
        report.write_text(
            json.dumps({"pid": os.getpid(), "outcomes": outcomes, "problems": problems.messages})
        )
        status = 0
    except BaseException:
        report.write_text(json.dumps({"crash": traceback.format_exc()}))
    finally:
        os._exit(status)


def _fork_children(
    receiver: Receiver, jobs: list[list[Any]], worker_path: bool, tmp: Path
) -> list[Any]:
    """Child ``n`` works ``jobs[n]``; its report, in that order."""
    children: dict[int, Path] = {}
    for n, share in enumerate(jobs):
        report = tmp / f"child-{n}.json"
        pid = os.fork()
        if pid == 0:
            _child(receiver, share, worker_path, report)
        children[pid] = report
    deadline = time.monotonic() + DEADLINE
    finished: set[int] = set()
    try:
        while len(finished) < len(children) and time.monotonic() < deadline:
            for pid in children.keys() - finished:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    finished.add(pid)
            time.sleep(0.05)
    finally:
        stuck = children.keys() - finished
        for pid in stuck:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert not stuck, f"{len(stuck)} forked children hung for {DEADLINE:.0f}s"
    return [json.loads(path.read_text()) for path in children.values()]


def _runs(log: Path) -> list[tuple[str, str, str]]:
    if not log.exists():
        return []
    return [tuple(line.split()) for line in log.read_text().splitlines()]  # type: ignore[misc]


@pytest.mark.parametrize("worker_path", [False, True], ids=["inline", "worker"])
def test_children_forked_after_the_parent_used_the_store_share_nothing(
    durable_backend: str, make_store: Callable[..., Store], tmp_path: Path, worker_path: bool
) -> None:
    log = tmp_path / "runs.log"
    queue = ListQueue() if worker_path else None
    store: Store = make_store(durable_backend)
    receiver = Receiver(
        insecure=True, store=store, plugins=[LogRuns(log)], load_entrypoints=False, queue=queue
    )
    shared = [str(uuid.uuid4()) for _ in range(KEYS)]
    own = [[str(uuid.uuid4()) for _ in range(KEYS)] for _ in range(CHILDREN)]
    keys = shared + [key for child in own for key in child]
    body = {key: sample_body(RuleType.DATA_SYNC_COMPLETED, alert_id=key) for key in keys}
    # The parent uses its store before forking, as a --preload master or a Celery parent does.
    store.ping()
    assert receiver.handle("POST", {}, sample_body(RuleType.DATA_SYNC_COMPLETED)).status in (
        200,
        202,
    )
    if worker_path:  # the parent received them all; the children are the workers
        for key in keys:
            assert receiver.handle("POST", {}, body[key]).status == 202
    log.unlink(missing_ok=True)
    # Each child alternates its own keys with the shared ones, which all children race for.
    orders = [[key for pair in zip(mine, shared, strict=True) for key in pair] for mine in own]
    jobs = [order if worker_path else [body[key] for key in order] for order in orders]

    reports = _fork_children(receiver, jobs, worker_path, tmp_path)

    crashes = [report["crash"] for report in reports if "crash" in report]
    assert not crashes, crashes[0]
    problems = [message for report in reports for message in report["problems"]]
    assert problems == [], problems[:5]
    outcomes = sum((Counter(report["outcomes"]) for report in reports), Counter())
    assert set(outcomes) <= SETTLED | PASSING, outcomes  # no unavailable, error, conflict
    runs = _runs(log)
    assert [run for run in runs if run[1] != run[2]] == [], "a hook got another key's payload"
    per_key = Counter(run[1] for run in runs)
    assert sorted(per_key) == sorted(keys), "a key never ran"
    assert [key for key, n in per_key.items() if n > 1] == [], "a key ran twice"
    for report, mine in zip(reports, own, strict=True):
        ran_here = {run[1] for run in runs if run[0] == str(report["pid"])}
        assert set(mine) <= ran_here, "a child did not claim and complete its own keys"
        assert report["outcomes"].get("processed", 0) >= KEYS
    # The parent's own connections still work: no child closed them or wrote on them.
    for key in keys:
        record = store.get(key)
        assert record is not None
        assert record.state is State.DONE, key
    late = sample_body(RuleType.DATA_SYNC_COMPLETED)
    assert receiver.handle("POST", {}, late).status in (200, 202)
    receiver.close()
