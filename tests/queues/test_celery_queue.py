"""CeleryQueue with real parts: a redis-server broker and real ``celery worker`` processes."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from codat_webhooks.stores import SQLiteStore, State
from codat_webhooks.testing import sample_body
from tests.stores.store_servers import REDIS_SERVER, missing_service, start_redis, stop
from tests.waiting import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CELERY = str(Path(sys.executable).parent / "celery")
AUTH = {"Authorization": "Bearer s3cret"}

APP = """
import os, time
from celery import Celery
from codat_webhooks import Receiver, hookimpl
from codat_webhooks.queues import RetryPolicy
from codat_webhooks.queues.celery import CeleryQueue
from codat_webhooks.stores import SQLiteStore

celery_app = Celery("celery_hooks", broker=os.environ["BROKER"])
celery_app.conf.update(
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 5},
    worker_hijack_root_logger=False,
)


class Effects:
    @hookimpl
    def on_alert(self, delivery):
        with open(os.environ["STARTED"], "a") as started:
            started.write(f"{delivery.key} {os.getpid()}\\n")
        time.sleep(float(os.environ.get("HOOK_SECONDS", "0")))
        if delivery.attempt <= int(os.environ.get("FAIL_ATTEMPTS", "0")):
            raise RuntimeError("downstream API is down")
        with open(os.environ["EFFECTS"], "a") as effects:
            effects.write(delivery.key + "\\n")


receiver = Receiver(
    authorization="Bearer s3cret",
    store=SQLiteStore(os.environ["DB"]),
    plugins=[Effects()],
    load_entrypoints=False,
    lease=2.0,
    queue=CeleryQueue(celery_app),
    retries=RetryPolicy(attempts=5, first=0.1, cap=0.3),
)
"""


class Deployment:
    """A broker, the app module, and the celery workers started from it."""

    def __init__(self, tmp_path: Path, broker: str) -> None:
        self.tmp = tmp_path
        (tmp_path / "celery_hooks.py").write_text(textwrap.dedent(APP))
        self.db = tmp_path / "hooks.sqlite3"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(tmp_path),
            "BROKER": broker,
            "DB": str(self.db),
            "EFFECTS": str(tmp_path / "effects.txt"),
            "STARTED": str(tmp_path / "started.txt"),
        }
        self.workers: list[subprocess.Popen[bytes]] = []

    def web(self) -> ModuleType:
        """The app as a web process imports it: same module, in this process."""
        os.environ.update(self.env)
        spec = importlib.util.spec_from_file_location(
            f"celery_hooks_{id(self)}", self.tmp / "celery_hooks.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def worker(self, concurrency: int = 2, **env: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [CELERY, "-A", "celery_hooks", "worker", "--pool", "prefork",
             "--concurrency", str(concurrency), "--loglevel", "warning", "--without-heartbeat",
             "--without-gossip", "--without-mingle"],
            cwd=self.tmp,
            env={**self.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.workers.append(process)
        return process

    def lines(self, name: str) -> list[str]:
        path = self.tmp / name
        return path.read_text().splitlines() if path.exists() else []

    def states(self, keys: list[str]) -> set[State | None]:
        with SQLiteStore(self.db) as store:
            return {(r.state if (r := store.get(key)) else None) for key in keys}


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    if REDIS_SERVER is None:
        missing_service("redis-server")
    broker_process, broker = start_redis()
    for name in ("BROKER", "DB", "EFFECTS", "STARTED"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    running = Deployment(tmp_path, broker)
    try:
        yield running
    finally:
        for process in running.workers:
            stop(process)
        stop(broker_process)
        for name in running.env:
            if name != "PATH":
                os.environ.pop(name, None)


def send(module: ModuleType, count: int) -> list[str]:
    keys = []
    for _ in range(count):
        body = sample_body("Data sync completed")
        reply = module.receiver.handle("POST", AUTH, body)
        assert (reply.status, reply.outcome) == (202, "queued")
        keys.append(json.loads(body)["AlertId"])
    return keys


def test_celery_workers_run_every_key_once(deployment: Deployment) -> None:
    web = deployment.web()
    assert "codat_webhooks.run" in web.celery_app.tasks
    keys = send(web, 40)
    deployment.worker()
    deployment.worker()
    wait_for(lambda: deployment.states(keys) == {State.DONE})
    assert Counter(deployment.lines("effects.txt")) == Counter(keys)


def test_failing_hook_is_retried_by_celery_with_backoff(deployment: Deployment) -> None:
    web = deployment.web()
    deployment.worker(FAIL_ATTEMPTS="2")
    keys = send(web, 5)
    wait_for(lambda: deployment.states(keys) == {State.DONE})
    with SQLiteStore(deployment.db) as store:
        assert {r.attempts for key in keys if (r := store.get(key))} == {3}
    assert Counter(deployment.lines("effects.txt")) == Counter(keys)


def test_a_worker_process_killed_mid_hook_is_redelivered(deployment: Deployment) -> None:
    web = deployment.web()
    deployment.worker(HOOK_SECONDS="1.5")
    [key] = send(web, 1)
    wait_for(lambda: len(deployment.lines("started.txt")) == 1)
    pid = int(deployment.lines("started.txt")[0].split()[1])
    os.kill(pid, signal.SIGKILL)  # the pool process running the hook, started by our worker
    wait_for(lambda: deployment.states([key]) == {State.DONE})
    assert deployment.lines("effects.txt") == [key]  # killed before its side effect
    assert len(deployment.lines("started.txt")) == 2
