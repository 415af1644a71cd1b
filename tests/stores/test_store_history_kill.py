"""A process killed with SIGKILL while it answers deliveries of one key leaves the key's state
and its history in agreement: each entry was written with the state change it describes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from store_worker import make_store as worker_store
from store_worker import store_spec

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.stores import State, Store
from codat_webhooks.testing import sample_body

pytestmark = pytest.mark.slow

DELIVERER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from store_worker import make_store
    from codat_webhooks import Receiver, hookimpl

    class Fails:
        @hookimpl
        def on_alert(self):
            raise RuntimeError("downstream API is down")

    config = json.loads(Path(sys.argv[1]).read_text())
    receiver = Receiver(insecure=True, store=make_store(config["store"]), plugins=[Fails()],
                        load_entrypoints=False, lease=0.5)
    body = config["body"].encode()
    answered = 0
    while True:  # Codat's retries, as fast as they come, until the test kills this process
        receiver.handle("POST", {}, body)
        answered += 1
        if answered == 3:
            Path(config["ready"]).touch()
    """
)


class Fails:
    @hookimpl
    def on_alert(self) -> None:
        raise RuntimeError("still down")


def consistent(store: Store, key: str, lost: int = 0) -> tuple[State, int]:
    """Every hand-over of the key ended in one ``failed`` entry, but the one still running and
    ``lost`` ones whose process was killed while their hooks ran."""
    record = store.get(key)
    assert record is not None
    failed = [entry for entry in store.history(key) if entry.outcome == "failed"]
    running = 1 if record.state is State.PROCESSING else 0
    assert record.state in (State.FAILED, State.PROCESSING)
    assert len(failed) + store.kept_history(key).dropped + running + lost == record.attempts
    assert all(entry.status == 503 for entry in failed)
    return record.state, record.attempts


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_sigkill_between_deliveries_leaves_history_and_state_agreeing(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    spec = store_spec(backend, request, tmp_path)
    body = sample_body(RuleType.DATASET_DATA_CHANGED)
    ready = tmp_path / "ready"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"store": spec, "body": body.decode(), "ready": str(ready)}))
    script = tmp_path / "deliverer.py"
    script.write_text(DELIVERER)
    here = str(Path(__file__).parent)
    process = subprocess.Popen([sys.executable, str(script), str(config), here])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, "the deliverer died"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05 + (os.getpid() % 7) / 100)  # somewhere among its writes
    finally:
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    store = worker_store(spec)
    key = json.loads(body)["AlertId"]
    state, attempts = consistent(store, key)
    assert attempts >= 3
    # The next delivery (after a killed claim's lease) goes on from there.
    if state is State.PROCESSING:
        time.sleep(0.6)
    receiver = Receiver(insecure=True, store=store, plugins=[Fails()], load_entrypoints=False)
    request.addfinalizer(receiver.close)
    assert receiver.handle("POST", {}, body).outcome == "failed"
    lost = 1 if state is State.PROCESSING else 0
    assert consistent(store, key, lost) == (State.FAILED, attempts + 1)
