"""Exactly-once across real OS processes sharing one store, and recovery from a killed worker.

Each worker is ``store_worker.py`` in its own interpreter with its own Receiver; the hook
appends to a shared log, which is what these tests count.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from store_worker import store_spec

from codat_webhooks import Receiver, RuleType
from codat_webhooks.stores import State
from codat_webhooks.testing import sample_body

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("store_worker.py")
ALERTS = 200
COPIES = 5


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    results: Path


def spawn(
    tmp_path: Path, spec: dict[str, Any], bodies: list[bytes], *, go: Path, **options: Any
) -> Worker:
    """Start one worker; it waits for the ``go`` file so all workers start delivering together."""
    name = uuid.uuid4().hex[:8]
    config = {
        "store": spec,
        "log": str(tmp_path / "runs.log"),
        "bodies": [body.decode() for body in bodies],
        "threads": 2,
        "lease": 10.0,
        "work": 0.002,
        "hang": False,
        "ready": str(tmp_path / f"{name}.ready"),
        "go": str(go),
        "results": str(tmp_path / f"{name}.json"),
        **options,
    }
    path = tmp_path / f"{name}.config.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen([sys.executable, str(WORKER), str(path)])
    deadline = time.monotonic() + 60
    while not Path(config["ready"]).exists():
        assert process.poll() is None, "worker died while starting"
        assert time.monotonic() < deadline, "worker did not start"
        time.sleep(0.02)
    return Worker(process, Path(config["results"]))


def runs(tmp_path: Path, what: str) -> Counter[str]:
    log = tmp_path / "runs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(line.split()[1] for line in lines if line.startswith(what + " "))


def deliver_everywhere(tmp_path: Path, spec: dict[str, Any], processes: int) -> list[list[Any]]:
    """200 alerts, 5 copies each, the copies dealt to different processes at the same moment."""
    kinds = list(RuleType)
    alerts = [sample_body(kinds[i % len(kinds)]) for i in range(ALERTS)]
    shares: list[list[bytes]] = [[] for _ in range(processes)]
    for body in alerts:
        for copy in range(COPIES):
            shares[copy % processes].append(body)
    go = tmp_path / "go"
    workers = [spawn(tmp_path, spec, share, go=go) for share in shares]
    go.touch()
    results: list[list[Any]] = []
    for worker in workers:
        assert worker.process.wait(timeout=100) == 0
        results.extend(json.loads(worker.results.read_text()))
    return results


def assert_exactly_once(tmp_path: Path, results: list[list[Any]]) -> set[str]:
    assert len(results) == ALERTS * COPIES
    assert {status for _, status, _, _ in results} == {200}
    outcomes = Counter(outcome for _, _, outcome, _ in results)
    assert outcomes == {"processed": ALERTS, "duplicate": ALERTS * (COPIES - 1)}
    keys = {key for key, _, _, _ in results}
    assert len(keys) == ALERTS
    started, ended = runs(tmp_path, "start"), runs(tmp_path, "end")
    assert set(started) == set(ended) == keys
    assert set(started.values()) == set(ended.values()) == {1}
    return keys


def test_four_processes_sharing_one_sqlite_file_run_each_hook_once(tmp_path: Path) -> None:
    spec = store_spec("sqlite", None, tmp_path)
    keys = assert_exactly_once(tmp_path, deliver_everywhere(tmp_path, spec, 4))
    from codat_webhooks.stores import SQLiteStore

    with SQLiteStore(spec["path"]) as store:
        done = store.find(states=[State.DONE])
    assert {record.key for record in done} == keys
    assert {record.attempts for record in done} == {1}


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_two_receivers_sharing_one_server_run_each_hook_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    spec = store_spec(backend, request, tmp_path)
    assert_exactly_once(tmp_path, deliver_everywhere(tmp_path, spec, 2))


def test_a_killed_worker_loses_its_lease_and_the_redelivery_runs_once(
    durable_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    spec = store_spec(durable_backend, request, tmp_path)
    body = sample_body(RuleType.DATA_SYNC_COMPLETED)
    go = tmp_path / "go"
    go.touch()
    doomed = spawn(tmp_path, spec, [body], go=go, hang=True, lease=1.0, threads=1)
    deadline = time.monotonic() + 30
    while not runs(tmp_path, "start"):
        assert time.monotonic() < deadline, "the hook never started"
        time.sleep(0.02)

    from store_worker import RecordRuns, make_store

    store = make_store(spec)
    receiver = Receiver(
        insecure=True,
        store=store,
        plugins=[RecordRuns(str(tmp_path / "runs.log"), work=0, hang=False)],
        load_entrypoints=False,
        lease=1.0,
    )
    try:
        # Alive and hanging: the worker keeps renewing its 1 s lease, so no one else may run,
        # even once the lease it first took has run out.
        key = json.loads(body)["AlertId"]
        first = store.get(key)
        assert first is not None
        deadline = time.monotonic() + 30
        while True:
            current = store.get(key)
            assert current is not None
            if time.time() > first.lease_expires and current.lease_expires > first.lease_expires:
                break
            assert time.monotonic() < deadline, "the hanging worker never renewed its lease"
            time.sleep(0.02)
        assert receiver.handle("POST", {}, body).outcome == "in_progress"

        os.kill(doomed.process.pid, signal.SIGKILL)
        assert doomed.process.wait(timeout=10) == -signal.SIGKILL
        outcomes: list[str] = []
        while not outcomes or outcomes[-1] == "in_progress":
            outcomes.append(receiver.handle("POST", {}, body).outcome)
            time.sleep(0.05)
            assert len(outcomes) < 400, "the dead worker's lease never expired"
        assert outcomes[-1] == "processed"
        assert receiver.handle("POST", {}, body).outcome == "duplicate"
    finally:
        receiver.close()

    key = json.loads(body)["AlertId"]
    assert runs(tmp_path, "start") == {key: 2}
    assert runs(tmp_path, "end") == {key: 1}
