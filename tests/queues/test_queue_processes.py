"""Real processes: the embedded queue survives SIGKILL of the receiving process, and a
``codat-webhooks worker`` process drains what a web process recorded."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.queues import LocalQueue, RetryPolicy
from codat_webhooks.stores import SQLiteStore, State
from codat_webhooks.testing import sample_body
from tests.waiting import wait_for

EXECUTABLE = str(Path(sys.executable).parent / "codat-webhooks")
AUTH = "Bearer s3cret"

APP = """
import os, time
from codat_webhooks import Receiver, hookimpl
from codat_webhooks.queues import LocalQueue
from codat_webhooks.stores import SQLiteStore

class Effects:
    @hookimpl
    def on_alert(self, delivery):
        time.sleep(float(os.environ["HOOK_SECONDS"]))
        with open(os.environ["EFFECTS"], "a") as effects:  # the handler's side effect
            effects.write(delivery.key + "\\n")

receiver = Receiver(
    authorization="Bearer s3cret",
    store=SQLiteStore(os.environ["DB"]),
    plugins=[Effects()],
    load_entrypoints=False,
    lease=1.0,
    queue=LocalQueue(
        workers=2, stale_after=float(os.environ.get("STALE_AFTER", "0.5")), sweep_every=0.1
    ),
)
"""


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "queued_app.py").write_text(textwrap.dedent(APP))
        self.db = tmp_path / "hooks.sqlite3"
        self.effects = tmp_path / "effects.txt"
        self.cwd = tmp_path
        self.env = {
            "PATH": str(Path(sys.executable).parent),
            "PYTHONPATH": str(tmp_path),
            "DB": str(self.db),
            "EFFECTS": str(self.effects),
            "HOOK_SECONDS": "0.05",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [EXECUTABLE, *args, "--app", "queued_app:receiver"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def serve(self) -> tuple[subprocess.Popen[str], str]:
        process = self.start("serve", "--port", "0")
        assert process.stdout is not None
        banner = process.stdout.readline()
        if "listening on" not in banner:
            process.kill()
            pytest.fail(f"serve did not start: {banner}{process.communicate()}")
        return process, banner.split("listening on ", 1)[1].split()[0]

    def effect_counts(self) -> Counter[str]:
        if not self.effects.exists():
            return Counter()
        return Counter(self.effects.read_text().split())

    def states(self, keys: list[str]) -> dict[str, State | None]:
        with SQLiteStore(self.db) as store:
            return {key: (r.state if (r := store.get(key)) else None) for key in keys}

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    running = Setup(tmp_path)
    yield running
    running.stop_all()


def post(url: str, body: bytes) -> int:
    headers = {"Authorization": AUTH}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_sigkilled_receiver_restarted_finishes_every_accepted_key(setup: Setup) -> None:
    setup.env["HOOK_SECONDS"] = "0.1"  # 30 keys on 2 threads: 1.5 s of work, killed at once
    first, url = setup.serve()
    bodies = [sample_body("Data sync completed") for _ in range(30)]
    keys = [json.loads(body)["AlertId"] for body in bodies]
    assert [post(url, body) for body in bodies] == [202] * 30
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    unfinished = [key for key, state in setup.states(keys).items() if state is not State.DONE]
    assert unfinished, "the kill came after every key was done: nothing was tested"

    second, url = setup.serve()
    # Codat's copies of accepted keys are duplicates now, whatever their state
    assert {post(url, body) for body in bodies[:5]} == {200}
    wait_for(lambda: set(setup.states(keys).values()) == {State.DONE})
    counts = setup.effect_counts()
    assert set(counts) == set(keys)
    # A key whose side effect was written when the kill came, but not yet marked done, runs
    # again (the documented at-least-once window): at most one per worker thread.
    assert sum(count - 1 for count in counts.values()) <= 2
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0


def test_worker_process_drains_what_the_web_process_recorded(setup: Setup) -> None:
    web = Receiver(
        authorization=AUTH,
        store=SQLiteStore(setup.db),
        load_entrypoints=False,
        queue=LocalQueue(workers=0),  # record only: the worker process runs them
    )
    try:
        bodies = [sample_body("Sync Completed") for _ in range(12)]
        keys = [json.loads(body)["AlertId"] for body in bodies]
        for body in bodies:
            assert web.handle("POST", {"Authorization": AUTH}, body).status == 202
        assert set(setup.states(keys).values()) == {State.QUEUED}
        worker = setup.start("worker", "--threads", "3", "--poll", "0.05")
        wait_for(lambda: set(setup.states(keys).values()) == {State.DONE})
        assert setup.effect_counts() == Counter(keys)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)
        assert worker.returncode == 0, err
        assert "running queued deliveries" in out
    finally:
        web.close()


def test_serve_queued_answers_202_and_runs_the_hooks_on_its_threads(setup: Setup) -> None:
    process = subprocess.Popen(
        [EXECUTABLE, "serve", "--port", "0", "--queued", "--no-plugins",
         "--authorization", AUTH, "--db", str(setup.db)],
        cwd=setup.cwd, env=setup.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    setup.processes.append(process)
    assert process.stdout is not None
    banner = process.stdout.readline()
    assert "listening on" in banner, banner
    url = banner.split("listening on ", 1)[1].split()[0]
    body = sample_body("Sync Completed")
    key = json.loads(body)["AlertId"]
    assert post(url, body) == 202
    wait_for(lambda: setup.states([key]) == {key: State.DONE})
    assert post(url, body) == 200


class Failing:
    @hookimpl
    def on_alert(self) -> None:
        raise RuntimeError("downstream API down")


def test_events_and_show_list_worker_records_and_replay_runs_a_queued_key_once(
    setup: Setup,
) -> None:
    setup.env["STALE_AFTER"] = "3600"  # no sweep anywhere: only the replay may run the key
    web = Receiver(
        authorization=AUTH,
        store=SQLiteStore(setup.db),
        plugins=[Failing()],
        load_entrypoints=False,
        queue=LocalQueue(workers=0),
        retries=RetryPolicy(attempts=2, first=0.0, cap=0.0),
    )
    try:
        waiting, failing = sample_body("Sync Completed"), sample_body("Sync Completed")
        queued_key, failed_key = (json.loads(body)["AlertId"] for body in (waiting, failing))
        for body in (waiting, failing):
            assert web.handle("POST", {"Authorization": AUTH}, body).status == 202
        assert web.process_queued(failed_key).retry_in == 0.0
        assert web.process_queued(failed_key).retry_in is None  # attempts spent: failed

        listed = {row["key"]: row for row in events(setup)}
        assert (listed[queued_key]["state"], listed[queued_key]["attempts"]) == ("queued", 0)
        assert (listed[failed_key]["state"], listed[failed_key]["attempts"]) == ("failed", 2)
        assert listed[failed_key]["last_error"] == "RuntimeError: downstream API down"
        table = run_cli(setup, "events", "--db", str(setup.db)).stdout
        assert any(line.split()[1:3] == ["failed", "2"] for line in table.splitlines())
        shown = json.loads(
            run_cli(setup, "show", failed_key, "--db", str(setup.db), "--json").stdout
        )
        assert (shown["state"], shown["attempts"], shown["verified_by"]) == (
            "failed", 2, "authorization"
        )  # fmt: skip

        replayed = run_cli(setup, "replay", "--app", "queued_app:receiver", queued_key)
        assert f"{queued_key}  queued -> processed" in replayed.stdout
        assert setup.states([queued_key]) == {queued_key: State.DONE}
        assert setup.effect_counts() == Counter([queued_key])
        # the job the queue still holds for the key runs later, and does nothing
        assert web.process_queued(queued_key).outcome == "duplicate"
        assert setup.effect_counts() == Counter([queued_key])
    finally:
        web.close()


def run_cli(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [EXECUTABLE, *args], cwd=setup.cwd, env=setup.env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def events(setup: Setup) -> list[dict[str, object]]:
    output = run_cli(setup, "events", "--db", str(setup.db), "--json").stdout
    return [json.loads(line) for line in output.splitlines()]
