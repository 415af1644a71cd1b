"""The embedded queue under real forking servers: every process sweeps, a crash loses nothing.

gunicorn with ``--preload`` builds the receiver in the master and forks the workers from it,
so the queue's threads and the lease renewer must start over in each child. The crash run is
the issue's: SQLite store, LocalQueue, gunicorn -w 2, deliveries over HTTP, the whole server
SIGKILLed mid-run and restarted; the sweeper finishes every key that was answered 202.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codat_webhooks.stores import SQLiteStore, State
from codat_webhooks.testing import sample_body
from tests.stores.store_servers import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
AUTH = "Bearer s3cret"
THREADS = 2  # LocalQueue workers per process

APP = f"""
import os, time
from codat_webhooks import Receiver, hookimpl
from codat_webhooks.queues import LocalQueue
from codat_webhooks.stores import SQLiteStore
from codat_webhooks.wsgi import WebhookApp

class Effects:
    @hookimpl
    def on_alert(self, delivery):
        time.sleep(float(os.environ["HOOK_SECONDS"]))
        with open(os.environ["EFFECTS"], "a") as effects:  # the handler's side effect
            effects.write(f"{{delivery.key}} {{os.getpid()}}\\n")

receiver = Receiver(
    authorization="{AUTH}",
    store=SQLiteStore(os.environ["DB"]),
    plugins=[Effects()],
    load_entrypoints=False,
    lease=float(os.environ.get("LEASE", "2")),
    queue=LocalQueue(workers={THREADS}, stale_after=0.5, sweep_every=0.1),
)
app = WebhookApp(receiver)
"""

FORK = """
import json, os, sys, time
from codat_webhooks.stores import Entry, SQLiteStore
from codat_webhooks.testing import sample_body
from queued_wsgi import receiver

def done(key):
    record = receiver.store.get(key)
    return record is not None and record.state == "done"

def wait(key):
    deadline = time.monotonic() + 30
    while not done(key):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True

first = sample_body("Sync Completed")
assert receiver.handle("POST", {"Authorization": "Bearer s3cret"}, first).status == 202
assert wait(json.loads(first)["AlertId"])  # the parent ran a hook: its renewer thread is up
child = os.fork()
if child == 0:  # no delivery ever reaches the child: only its own sweeper can find the key
    os._exit(0 if wait(sys.argv[1]) else 1)
receiver.queue.close()  # the parent stops running keys before the key exists
body = sample_body("Sync Completed")
with SQLiteStore(os.environ["DB"]) as store:
    # the key is the delivery's webhook-id, as a worker checks before running the hooks
    store.enqueue(Entry(sys.argv[1], "f" * 64, body=body, headers=(("webhook-id", sys.argv[1]),)))
_, status = os.waitpid(child, 0)
print(json.dumps({"parent": os.getpid(), "child": child, "status": status}))
"""


class Server:
    """The app in a tmp dir, and gunicorn started in its own process group."""

    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "queued_wsgi.py").write_text(textwrap.dedent(APP))
        self.cwd = tmp_path
        self.db = tmp_path / "hooks.sqlite3"
        self.effects = tmp_path / "effects.txt"
        self.env = {
            "PATH": str(BIN),
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path.cwd())]),
            "DB": str(self.db),
            "EFFECTS": str(self.effects),
            "HOOK_SECONDS": "0.05",
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        """Start gunicorn -w 2 --preload; its master's PID once it answers."""
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-w", "2", "--preload", "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "queued_wsgi:app"],
            cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killed whole, by that group's ID
        )  # fmt: skip
        wait_for(lambda: post(self.url, b"", method="GET") == 405, timeout=30)
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the master and its workers at once, as a machine or OOM-killer would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def runs(self) -> list[tuple[str, int]]:
        if not self.effects.exists():
            return []
        lines = self.effects.read_text().splitlines()
        return [(key, int(pid)) for key, pid in (line.split() for line in lines)]

    def states(self, keys: list[str]) -> Counter[State | None]:
        with SQLiteStore(self.db) as store:
            return Counter(r.state if (r := store.get(key)) else None for key in keys)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    yield running
    running.stop()


def post(url: str, body: bytes, *, method: str = "POST") -> int:
    """The status, or 0 when the connection failed (the server was killed)."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=body or None, method=method, headers={"Authorization": AUTH}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)
    except OSError:
        return 0


def test_a_forked_child_sweeps_and_renews_its_leases_with_no_delivery(server: Server) -> None:
    (server.cwd / "fork_once.py").write_text(textwrap.dedent(FORK))
    server.env.update(HOOK_SECONDS="1.2", LEASE="0.2")  # a hook outlives six leases
    done = subprocess.run(
        [sys.executable, "fork_once.py", "only-the-child"], cwd=server.cwd, env=server.env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == 0, "the child never finished the key"
    # once, by the child: had its renewer not restarted, the lease would have run out mid-hook
    # and its own sweeper would have run the key a second time
    assert [pid for key, pid in server.runs() if key == "only-the-child"] == [result["child"]]


def test_gunicorn_killed_mid_run_and_restarted_finishes_every_accepted_key(
    server: Server,
) -> None:
    server.start()
    bodies = [sample_body("Data sync completed") for _ in range(150)]
    keys = [json.loads(body)["AlertId"] for body in bodies]
    statuses: dict[str, int] = {}
    accepted = threading.Semaphore(0)

    def send(body: bytes) -> None:
        status = post(server.url, body)
        statuses[json.loads(body)["AlertId"]] = status
        if status == 202:
            accepted.release()

    with ThreadPoolExecutor(8) as pool:
        for body in bodies:
            pool.submit(send, body)
        for _ in range(60):  # mid-run: 60 keys accepted, most of their hooks still to run
            assert accepted.acquire(timeout=30)
        server.kill()
    ok = [key for key in keys if statuses[key] == 202]
    assert set(statuses.values()) <= {202, 0}, Counter(statuses.values())  # no 500, no 503
    assert server.states(ok)[State.DONE] < len(ok), "everything finished before the kill"
    ran_before = Counter(key for key, _ in server.runs())

    server.start()  # no delivery is sent: the restarted processes' sweepers find the keys
    wait_for(lambda: set(server.states(ok)) == {State.DONE}, timeout=60)
    runs = Counter(key for key, _ in server.runs())
    assert set(ok) <= set(runs)
    doubles = {key: count - 1 for key, count in runs.items() if count > 1}
    # A double run is a key whose side effect was written but not yet marked done when the
    # kill came: at most one per worker thread (master and two workers, THREADS each).
    assert set(doubles) <= set(ran_before)
    assert sum(doubles.values()) <= 3 * THREADS, doubles
    # Codat's copies of accepted keys are duplicates now (0: no answer within 10 s, as from a
    # worker forked while the master's queue threads were inside SQLite, before 622cfd4)
    copies = Counter(
        post(server.url, body) for body in bodies if statuses[json.loads(body)["AlertId"]] == 202
    )
    assert set(copies) == {200}, copies
    print(f"accepted={len(ok)} refused_by_the_kill={len(keys) - len(ok)} doubles={doubles}")
