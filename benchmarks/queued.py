"""Queued dispatch against inline dispatch, side by side, on the same SQLite store.

Run: ``python -m benchmarks.queued [--seconds 5] [--rate 200] [--n 3000]``. Three figures, each
with the inline receiver as the baseline measured in the same run:

(a) acknowledgement latency while every hook sleeps 1 s: an open-loop sender offers ``--rate``
    deliveries a second for ``--seconds`` to ``--server-threads`` threads calling
    ``Receiver.handle`` (they stand for a server's request workers). Latency runs from when a
    delivery was due to be sent to its answer, so a receiver that falls behind shows it.
    Target: queued p99 under 20 ms at 200 req/s; inline cannot keep up.
(b) acknowledgement throughput with a trivial hook: ``--n`` deliveries as fast as
    ``--server-threads`` threads can send them; queued / inline (target >= 0.8). Queued is
    measured recording only (``LocalQueue(workers=0)``) and with its embedded workers draining
    at the same time on the same cores.
(c) end to end with a trivial hook: deliveries completed per second by the embedded worker
    (LocalQueue, 4 threads) and, with ``--celery``, by 2 Celery worker processes on a
    redis-server broker this script starts on a free loopback port, split into publishing
    alone, draining alone and both at once, with kombu's ack emulation on (the default) and off.

The receiver is called in-process (no HTTP), so the figures are the receiver's own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue as stdlib_queue
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "stores"))

from store_servers import REDIS_SERVER, running_redis

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.queues import LocalQueue, Queue
from codat_webhooks.stores import SQLiteStore, Store
from codat_webhooks.testing import sample_body

AUTH = {"Authorization": "Bearer bench"}


class Sleeper:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @hookimpl
    def on_alert(self) -> None:
        if self.seconds:
            time.sleep(self.seconds)


def bodies(n: int) -> list[bytes]:
    return [sample_body("Data connection status changed") for _ in range(n)]


@contextmanager
def receiver(
    directory: Path, name: str, hook_seconds: float, queue: Queue | None
) -> Iterator[Receiver]:
    built = Receiver(
        authorization="Bearer bench",
        store=SQLiteStore(directory / f"{name}.sqlite3"),
        plugins=[Sleeper(hook_seconds)],
        load_entrypoints=False,
        queue=queue,
    )
    try:
        yield built
    finally:
        built.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def offered_load(target: Receiver, rate: float, seconds: float, threads: int) -> dict[str, float]:
    """(a): open loop; returns p50/p99 ms of the answered ones, answered/s and the backlog."""
    jobs: stdlib_queue.Queue[tuple[float, bytes] | None] = stdlib_queue.Queue()
    latencies: list[float] = []
    lock = threading.Lock()
    # Made before the clock starts: building a thousand bodies takes longer than the head
    # start, and the sender's lateness would be counted as the receiver's latency.
    sent = bodies(int(rate * seconds))
    start = time.monotonic() + 0.1
    end = start + seconds

    def serve() -> None:
        while (job := jobs.get()) is not None:
            due, body = job
            if time.monotonic() > end + 1:  # past the window: count it as unanswered
                continue
            target.handle("POST", AUTH, body)
            with lock:
                latencies.append(time.monotonic() - due)

    workers = [threading.Thread(target=serve, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for index, body in enumerate(sent):
        due = start + index / rate
        time.sleep(max(0.0, due - time.monotonic()))
        jobs.put((due, body))
    deadline = end + 1
    while time.monotonic() < deadline and len(latencies) < len(sent):
        time.sleep(0.01)
    with lock:
        answered = list(latencies)
    for _ in workers:
        jobs.put(None)
    for worker in workers:  # the ones still in a hook finish it before the receiver closes
        worker.join()
    return {
        "p50_ms": percentile(answered, 0.50) * 1000,
        "p99_ms": percentile(answered, 0.99) * 1000 if len(answered) == len(sent) else float("inf"),
        "answered_per_s": len(answered) / seconds,
        "unanswered": len(sent) - len(answered),
    }


def closed_loop(target: Receiver, n: int, threads: int) -> float:
    """(b): deliveries acknowledged per second, ``threads`` senders as fast as they can."""
    work = bodies(n)
    chunks = [work[i::threads] for i in range(threads)]
    began = time.perf_counter()
    senders = [
        threading.Thread(target=lambda c=chunk: [target.handle("POST", AUTH, b) for b in c])
        for chunk in chunks
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    return n / (time.perf_counter() - began)


def done_count(store: Store) -> int:
    """Records ``done``, counted by SQLite itself: polling keys one by one would load the CPU
    the workers being measured need."""
    assert isinstance(store, SQLiteStore), "the benchmark's receivers share one SQLite file"
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries WHERE state = 'done'").fetchone()
    return int(row[0])


def end_to_end(target: Receiver, n: int, threads: int, timeout: float = 300) -> float:
    """(c): deliveries completed per second, from the first send to the last ``done``."""
    assert isinstance(target.store, SQLiteStore)
    wanted = done_count(target.store) + n
    began = time.perf_counter()
    closed_loop_bodies(target, bodies(n), threads)
    deadline = time.monotonic() + timeout
    while done_count(target.store) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"deliveries not done after {timeout}s")
        time.sleep(0.02)
    return n / (time.perf_counter() - began)


def closed_loop_bodies(target: Receiver, work: list[bytes], threads: int) -> None:
    senders = [
        threading.Thread(
            target=lambda c=work[i::threads]: [target.handle("POST", AUTH, b) for b in c]
        )
        for i in range(threads)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()


CELERY_APP = """
import os
from celery import Celery
from codat_webhooks import Receiver
from codat_webhooks.queues.celery import CeleryQueue
from codat_webhooks.stores import SQLiteStore

celery_app = Celery("bench_celery", broker=os.environ["BROKER"])
celery_app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=16,
    broker_transport_options={"ack_emulation": os.environ["ACK_EMULATION"] == "1"},
)
receiver = Receiver(
    authorization="Bearer bench",
    store=SQLiteStore(os.environ["DB"]),
    load_entrypoints=False,
    queue=CeleryQueue(celery_app),
)
"""


def celery_figures(
    directory: Path, n: int, threads: int, processes: int, *, ack_emulation: bool = True
) -> dict[str, float]:
    """(c) on Celery, split: ``processes`` worker processes (solo pool), a real broker.

    ``publish_per_s``: deliveries accepted (recorded and published) per second with no worker
    running; ``drain_per_s``: those then completed per second by the workers alone;
    ``per_s``: end to end, both at once on the same cores. ``ack_emulation=False`` turns off
    kombu's Redis bookkeeping of unacknowledged messages (two transactions per task): a killed
    worker's message is then recovered by the sweep, not redelivered by the broker.
    """
    import importlib.util

    (directory / "bench_celery.py").write_text(textwrap.dedent(CELERY_APP))
    db = directory / f"celery-{int(ack_emulation)}.sqlite3"
    with running_redis() as broker:
        env = {**os.environ, "BROKER": broker, "DB": str(db), "PYTHONPATH": str(directory)}
        env["ACK_EMULATION"] = "1" if ack_emulation else "0"
        os.environ.update(BROKER=broker, DB=env["DB"], ACK_EMULATION=env["ACK_EMULATION"])
        spec = importlib.util.spec_from_file_location("bench_celery", directory / "bench_celery.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        target: Receiver = module.receiver
        began = time.perf_counter()
        closed_loop_bodies(target, bodies(n), threads)
        publish = n / (time.perf_counter() - began)
        celery = str(Path(sys.executable).parent / "celery")
        command = [celery, "-A", "bench_celery", "worker", "--pool", "solo"]
        command += ["--loglevel", "error", "--without-heartbeat", "--without-gossip"]
        command += ["--without-mingle"]
        workers = [
            subprocess.Popen(
                [*command, "-n", f"bench{index}@%h"],
                cwd=directory,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for index in range(processes)
        ]
        try:
            first = min(50, n // 10)  # counted from once the workers are up
            while done_count(target.store) < first:
                time.sleep(0.02)
            began, start = time.perf_counter(), done_count(target.store)
            while done_count(target.store) < n:
                time.sleep(0.02)
            drain = (n - start) / (time.perf_counter() - began)
            return {
                "publish_per_s": publish,
                "drain_per_s": drain,
                "per_s": end_to_end(target, n, threads),
            }
        finally:
            target.close()
            for worker in workers:
                worker.terminate()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()


def load() -> str:
    """The machine's load next to a figure: other work on the same cores skews it."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} cores"


def row(label: str, values: dict[str, Any]) -> None:
    cells = "  ".join(f"{name}={value:,.1f}" for name, value in values.items())
    print(f"  {label:<34} {cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="(a) offered-load window")
    parser.add_argument("--rate", type=float, default=200.0, help="(a) deliveries offered per s")
    parser.add_argument("--hook-seconds", type=float, default=1.0, help="(a) each hook's sleep")
    parser.add_argument("--server-threads", type=int, default=16)
    parser.add_argument("--n", type=int, default=3000, help="(b) and (c) deliveries")
    parser.add_argument("--celery", action="store_true", help="(c) on 2 Celery processes too")
    args = parser.parse_args(argv)
    threads = args.server_threads
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(load())
        print(
            f"(a) acknowledgement, every hook sleeps {args.hook_seconds:g} s, "
            f"{args.rate:g} req/s offered for {args.seconds:g} s, {threads} threads"
        )
        with receiver(directory, "a-inline", args.hook_seconds, None) as inline:
            a_inline = offered_load(inline, args.rate, args.seconds, threads)
        row("inline (baseline)", a_inline)
        with receiver(directory, "a-queued", args.hook_seconds, LocalQueue()) as queued:
            a_queued = offered_load(queued, args.rate, args.seconds, threads)
        row("queued (LocalQueue)", a_queued)

        print(f"(b) acknowledgement throughput, trivial hook, {args.n} deliveries")
        with receiver(directory, "b-inline", 0, None) as inline:
            b_inline = closed_loop(inline, args.n, threads)
        with receiver(directory, "b-record", 0, LocalQueue(workers=0)) as recording:
            b_record = closed_loop(recording, args.n, threads)
        with receiver(directory, "b-queued", 0, LocalQueue()) as queued:
            b_queued = closed_loop(queued, args.n, threads)
        row("inline (baseline)", {"per_s": b_inline, "ratio": 1.0})
        row("queued, record only", {"per_s": b_record, "ratio": b_record / b_inline})
        row("queued, embedded workers running", {"per_s": b_queued, "ratio": b_queued / b_inline})

        print(f"(c) end to end, trivial hook, {args.n} deliveries completed")
        with receiver(directory, "c-inline", 0, None) as inline:
            c_inline = end_to_end(inline, args.n, threads)
        with receiver(directory, "c-queued", 0, LocalQueue()) as queued:
            c_local = end_to_end(queued, args.n, threads)
        row("inline (baseline)", {"per_s": c_inline, "ratio": 1.0})
        row("embedded worker, 4 threads", {"per_s": c_local, "ratio": c_local / c_inline})
        if args.celery:
            if REDIS_SERVER is None:
                print("  celery: skipped, no redis-server")
            else:
                for ack_emulation in (True, False):
                    figures = celery_figures(
                        directory, args.n, threads, 2, ack_emulation=ack_emulation
                    )
                    label = "" if ack_emulation else ", ack_emulation off"
                    row(f"2 Celery workers{label}", figures)
                    print(f"    {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
