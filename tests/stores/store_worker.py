"""One worker process: a Receiver on a shared store that delivers bodies as Codat would.

Run as ``python store_worker.py CONFIG.json`` by the multi-process tests. Every hook run is
appended to a shared log file (``start KEY PID`` before the work, ``end KEY PID`` after), so
the test can count runs across processes. A 503 is retried, as Codat retries it.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.stores import SQLiteStore, Store


def store_spec(backend: str, request: Any, tmp_path: Path) -> dict[str, Any]:
    """How a worker process reaches the same store as the test (see store_worker.make_store)."""
    name = uuid.uuid4().hex[:12]
    if backend == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "shared.sqlite3")}
    if backend == "redis":
        return {"kind": "redis", "url": request.getfixturevalue("redis_url"), "prefix": name}
    return {"kind": "postgres", "dsn": request.getfixturevalue("postgres_dsn"), "table": f"p{name}"}


def make_store(spec: dict[str, Any]) -> Store:
    kind = spec["kind"]
    if kind == "sqlite":
        return SQLiteStore(spec["path"])
    if kind == "redis":
        from codat_webhooks.stores import RedisStore

        return RedisStore(spec["url"], prefix=spec["prefix"])
    if kind == "postgres":
        from codat_webhooks.stores import PostgresStore

        return PostgresStore(spec["dsn"], table=spec["table"])
    raise SystemExit(f"unknown store kind {kind!r}")


class RecordRuns:
    """Appends one line per hook start and end; O_APPEND writes this short are atomic."""

    def __init__(self, log: str, *, work: float, hang: bool) -> None:
        self.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.work = work
        self.hang = hang

    @hookimpl
    def on_alert(self, delivery: Any) -> None:
        os.write(self.fd, f"start {delivery.key} {os.getpid()}\n".encode())
        if self.hang:
            time.sleep(3600)  # killed with SIGKILL by the test
        time.sleep(self.work)
        os.write(self.fd, f"end {delivery.key} {os.getpid()}\n".encode())


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    receiver = Receiver(
        insecure=True,
        store=make_store(config["store"]),
        plugins=[RecordRuns(config["log"], work=config["work"], hang=config["hang"])],
        load_entrypoints=False,
        lease=config["lease"],
    )
    bodies: queue.Queue[str] = queue.Queue()
    for body in config["bodies"]:
        bodies.put(body)
    results: list[tuple[str | None, int, str, int]] = []

    def deliver() -> None:
        while True:
            try:
                body = bodies.get_nowait()
            except queue.Empty:
                return
            retries = 0
            while True:
                reply = receiver.handle("POST", {"Content-Type": "application/json"}, body.encode())
                if reply.status != 503:
                    break
                retries += 1
                time.sleep(0.01)
            results.append((reply.key, reply.status, reply.outcome, retries))

    Path(config["ready"]).touch()
    while not Path(config["go"]).exists():
        time.sleep(0.01)
    threads = [threading.Thread(target=deliver) for _ in range(config["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Path(config["results"]).write_text(json.dumps(results))
    receiver.close()


if __name__ == "__main__":
    main()
