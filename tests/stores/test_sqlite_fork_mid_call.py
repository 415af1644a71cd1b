"""A fork while other threads of the parent are inside SQLite: the child must not hang.

This is how gunicorn ``--preload`` restarts a worker: its master built the receiver, and the
embedded queue's workers and sweeper run SQLite statements there while the master forks. SQLite
holds process-wide mutexes inside each call, so a child forked in the middle of one inherited
them held and its first SQLite call waited forever (a worker that answered nothing and ignored
SIGTERM: the gunicorn crash test failed that way in CI). Each child here uses the parent's store
object at once, as a worker does with its first request, and must finish within a deadline.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from codat_webhooks.stores import ClaimStatus, Entry, SQLiteStore

pytestmark = pytest.mark.slow

FORKS = 150
"""Before the fix about one child in five hung: a run with no hang by chance is unthinkable."""
CHILD_DEADLINE = 5.0
"""A child's claim and completion take milliseconds; the test stops at the first hung one."""


def _churn(store: SQLiteStore, stop: threading.Event) -> None:
    """What the queue's threads do: claim a key, read it, complete it, again and again."""
    while not stop.is_set():
        key = uuid.uuid4().hex
        claim = store.claim(Entry(key, "f" * 64, body=b"{}"), lease=30)
        store.get(key)
        store.complete(key, claim.token)


def _wait_or_kill(pid: int) -> int | None:
    """The child's exit status, or None when it had to be killed at the deadline."""
    deadline = time.monotonic() + CHILD_DEADLINE
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_child_forked_while_threads_are_inside_sqlite_uses_the_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hooks.sqlite3")
    stop = threading.Event()
    threads = [threading.Thread(target=_churn, args=(store, stop)) for _ in range(2)]
    for thread in threads:
        thread.start()
    statuses: list[int | None] = []
    try:
        time.sleep(0.05)  # both threads are busy in SQLite
        for _ in range(FORKS):
            pid = os.fork()
            if pid == 0:  # the child: the parent's store, its own connection
                try:
                    key = uuid.uuid4().hex
                    claim = store.claim(Entry(key, "c" * 64, body=b"{}"), lease=30)
                    ok = claim.status is ClaimStatus.CLAIMED and store.complete(key, claim.token)
                    os._exit(0 if ok else 3)
                finally:
                    os._exit(4)
            statuses.append(_wait_or_kill(pid))
            if statuses[-1] is None:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert None not in statuses, f"child {len(statuses)} of {FORKS} hung"
    assert set(statuses) == {0}, statuses
    # and the parent's store still works after all those forks
    claim = store.claim(Entry("after", "a" * 64, body=b"{}"), lease=30)
    assert claim.status is ClaimStatus.CLAIMED
    assert store.complete("after", claim.token)
    store.close()
