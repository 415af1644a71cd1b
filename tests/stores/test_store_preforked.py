"""Each durable store behind servers that fork after building the receiver at import time.

``gunicorn --preload`` imports the application in its master and forks the workers from it;
Celery's default (prefork) pool imports it in the worker's parent and forks the pool's
processes. Both are how these apps are normally deployed, and both hand every child the
objects, connections and pools the parent made, after the parent used the store (as an app
that checks its database at start-up does). Keys are sent several times over real HTTP, with
no fault injected: every key must run its hook exactly once with its own payload, with no
500, no 422 for an identical copy, and no store error or warning logged by any process.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.adapters.servers import free_port, python_path, running

from codat_webhooks import RuleType
from codat_webhooks.stores import SQLiteStore, State, Store
from codat_webhooks.testing import sample_body

pytestmark = pytest.mark.slow

KEYS, COPIES = 60, 3
BIN = Path(sys.executable).parent

APP = """
import logging, os
from codat_webhooks import Receiver, hookimpl
from codat_webhooks.wsgi import WebhookApp


def make_store():
    kind, where = os.environ["STORE_KIND"], os.environ["STORE_AT"]
    if kind == "sqlite":
        from codat_webhooks.stores import SQLiteStore
        return SQLiteStore(where)
    if kind == "redis":
        from codat_webhooks.stores import RedisStore
        return RedisStore(where, prefix=os.environ["NAMESPACE"] + ":")
    from codat_webhooks.stores import PostgresStore
    return PostgresStore(where, table=os.environ["NAMESPACE"])


problems = logging.FileHandler(os.environ["PROBLEMS"])
problems.setLevel(logging.WARNING)
problems.setFormatter(logging.Formatter("%(process)d %(levelname)s %(message)s"))
logging.getLogger("codat_webhooks").addHandler(problems)


class Effects:
    @hookimpl
    def on_alert(self, alert, delivery):
        line = f"{os.getpid()} {delivery.key} {alert.alert_id}\\n".encode()
        fd = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


queue = None
if os.environ.get("BROKER"):
    from celery import Celery
    from codat_webhooks.queues.celery import CeleryQueue

    celery_app = Celery("forked_app", broker=os.environ["BROKER"])
    celery_app.conf.update(worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True)
    queue = CeleryQueue(celery_app)

receiver = Receiver(
    authorization="Bearer s3cret",
    store=make_store(),
    plugins=[Effects()],
    load_entrypoints=False,
    queue=queue,
)
receiver.store.ping()  # the parent uses its store before it forks
web = WebhookApp(receiver)
"""


def _post_until_settled(url: str, body: bytes, statuses: Counter[int]) -> None:
    """As Codat does: a 503 or a refused connection is tried again; anything else is final."""
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                status = client.post(
                    url, content=body, headers={"Authorization": "Bearer s3cret"}
                ).status_code
            except httpx.TransportError:
                status = 0
            statuses[status] += 1
            if status not in (0, 503):
                return
            time.sleep(0.05)
    statuses[-1] += 1


@contextmanager
def _celery_worker(tmp_path: Path, env: dict[str, str]) -> Iterator[None]:
    """``celery worker`` with its default pool: prefork, two processes forked after import."""
    log = (tmp_path / "celery.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "celery"), "-A", "forked_app:celery_app", "worker", "--concurrency", "2",
         "--loglevel", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle",
         "-n", f"w{uuid.uuid4().hex[:8]}@%h"],
        cwd=tmp_path, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _store_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    namespace = f"f{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        where = str(tmp_path / "deliveries.sqlite3")
    elif backend == "redis":
        where = str(request.getfixturevalue("redis_url"))
    else:
        where = str(request.getfixturevalue("postgres_dsn"))
    return {"STORE_KIND": backend, "STORE_AT": where, "NAMESPACE": namespace}


def _reader(env: dict[str, str]) -> Store:
    """The test's own view of the store the servers share."""
    kind, where, namespace = env["STORE_KIND"], env["STORE_AT"], env["NAMESPACE"]
    if kind == "sqlite":
        return SQLiteStore(where)
    if kind == "redis":
        from codat_webhooks.stores import RedisStore

        return RedisStore(where, prefix=namespace + ":")
    from codat_webhooks.stores import PostgresStore

    return PostgresStore(where, table=namespace)


@pytest.mark.parametrize("shape", ["gunicorn-preload", "celery-prefork"])
def test_servers_that_fork_after_import_run_each_key_once_with_its_own_payload(
    durable_backend: str, shape: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    (tmp_path / "forked_app.py").write_text(textwrap.dedent(APP))
    env = {
        **_store_for(durable_backend, request, tmp_path),
        "PYTHONPATH": python_path(tmp_path),
        "EFFECTS": str(tmp_path / "effects.txt"),
        "PROBLEMS": str(tmp_path / "problems.log"),
    }
    if shape == "celery-prefork":
        broker = str(request.getfixturevalue("redis_url"))
        env["BROKER"] = broker.rsplit("/", 1)[0] + f"/{random.randrange(1, 16)}"
    bodies = [sample_body(RuleType.DATA_SYNC_COMPLETED) for _ in range(KEYS)]
    keys = [json.loads(body)["AlertId"] for body in bodies]
    copies = [body for body in bodies for _ in range(COPIES)]
    random.shuffle(copies)
    statuses: Counter[int] = Counter()
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "forked_app:web", "--preload", "--workers", "2",
        "--bind", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "--log-level", "warning",
    ]  # fmt: skip
    worker = _celery_worker(tmp_path, env) if shape == "celery-prefork" else _nothing()
    reader = _reader(env)
    with running(command, port, env, tmp_path / "gunicorn.log", ready="/health"), worker:
        url = f"http://127.0.0.1:{port}/"
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda body: _post_until_settled(url, body, statuses), copies))
        _wait_until(lambda: all(_done(reader, key) for key in keys), 90)
    reader.close()

    assert set(statuses) <= {200, 202, 503}, statuses
    assert statuses[-1] == 0, statuses
    effects = [line.split() for line in (tmp_path / "effects.txt").read_text().splitlines()]
    assert [line for line in effects if line[1] != line[2]] == [], "a hook got another's body"
    runs = Counter(line[1] for line in effects)
    assert sorted(runs) == sorted(keys)
    assert {key: n for key, n in runs.items() if n > 1} == {}, "keys ran twice"
    processes = {line[0] for line in effects}
    assert len(processes) >= 2, f"every hook ran in {processes}: no two forked children shared work"
    problems = tmp_path / "problems.log"
    assert not problems.exists() or problems.read_text() == "", problems.read_text()[:2000]


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _done(store: Store, key: str) -> bool:
    record = store.get(key)
    return record is not None and record.state is State.DONE


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "keys were not all done before the deadline"
        time.sleep(0.2)
