"""Metrics from a real gunicorn with 2 sync workers in prometheus-client's multiprocess mode,
after real HTTP deliveries answered by both workers: every count checked exactly, once the
worker that did not answer the scrape has flushed its batch (its timer, within a second)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from codat_webhooks.testing import sample_body

from ..adapters.servers import free_port, gunicorn, running

pytestmark = pytest.mark.slow

AUTHORIZATION = "Bearer metrics-s3cret"

PATH = "/webhooks/codat"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total_answers(text: str) -> float:
    found = samples(text)
    return sum(v for (name, _), v in found.items() if name == "codat_webhooks_deliveries_total")


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def metrics_server(
    tmp_path: Path, workers: int, **settings: str
) -> tuple[list[str], int, dict[str, str], Path]:
    """gunicorn serving ``metrics_app`` in multiprocess mode: command, port, environment, and
    the directory where its workers keep their values. ``settings`` are METRICS_TEST_* names."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "METRICS_TEST_DB": str(tmp_path / "deliveries.sqlite3"),
        "METRICS_TEST_AUTHORIZATION": AUTHORIZATION,
        **{f"METRICS_TEST_{name.upper()}": value for name, value in settings.items()},
    }
    port = free_port()
    command = [
        *gunicorn("tests.observability.metrics_app:app", port, workers=workers),
        "--config", "python:tests.observability.gunicorn_conf",
    ]  # fmt: skip
    return command, port, env, multiproc


def test_two_gunicorn_workers_add_up(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    command, port, env, _ = metrics_server(tmp_path, 2, gate=str(gate))
    auth = {"Authorization": AUTHORIZATION, "Content-Type": "application/json"}
    with running(command, port, env, tmp_path / "gunicorn.log", ready=f"{PATH}/health") as base:
        url = base + PATH
        # One worker is held inside a hook, so the other one answers everything else.
        held: list[httpx.Response] = []
        holder = threading.Thread(
            target=lambda: held.append(
                httpx.post(url, content=sample_body("Sync Started"), headers=auth, timeout=60)
            )
        )
        holder.start()
        wait_for(gate.with_suffix(".entered"))
        answers = []
        changed = [sample_body("Dataset data changed") for _ in range(3)]
        completed = [sample_body("Data sync completed") for _ in range(2)]
        for body in [*changed, *completed, changed[0], changed[1]]:
            answers.append(httpx.post(url, content=body, headers=auth))
        for _ in range(3):
            answers.append(httpx.post(url, content=changed[2], headers={"Authorization": "no"}))
        answers.append(httpx.post(url, content=b'{"hello": "world"}', headers=auth))
        answers.append(httpx.post(url, content=sample_body("Sync Failed"), headers=auth))
        gate.touch()
        holder.join(timeout=60)
        answers.append(held[0])
        assert [r.status_code for r in answers] == [200] * 7 + [401] * 3 + [422, 503, 200]
        pids = {r.headers["X-Worker-Pid"] for r in answers}
        assert len(pids) == 2, "both workers answered deliveries"

        # Each worker writes its answers within flush_interval (1 s) of them; then every
        # scrape, whichever worker answers it, adds up both.
        deadline = time.monotonic() + 30
        while total_answers(httpx.get(base + "/metrics").text) < len(answers):
            assert time.monotonic() < deadline, "the workers' metrics were never flushed"
            time.sleep(0.05)
        scrapes = [httpx.get(base + "/metrics").text for _ in range(4)]

    for text in scrapes:  # whichever worker answers the scrape adds up both
        found = samples(text)
        delivered = "codat_webhooks_deliveries_total"
        assert (
            value(found, delivered, outcome="processed", status="200", type="Dataset data changed")
            == 3
        )
        assert (
            value(found, delivered, outcome="processed", status="200", type="Data sync completed")
            == 2
        )
        assert value(found, delivered, outcome="processed", status="200", type="Sync Started") == 1
        assert (
            value(found, delivered, outcome="duplicate", status="200", type="Dataset data changed")
            == 2
        )
        assert value(found, delivered, outcome="unauthorized", status="401", type="") == 3
        assert value(found, delivered, outcome="invalid", status="422", type="") == 1
        assert value(found, delivered, outcome="failed", status="503", type="Sync Failed") == 1
        assert total_answers(text) == 13
        durations = "codat_webhooks_delivery_duration_seconds_count"
        assert value(found, durations, outcome="processed") == 6
        hooks = "codat_webhooks_hook_duration_seconds_count"
        assert value(found, hooks, hook="on_alert") == 6
        assert value(found, hooks, hook="on_expenses_sync_started") == 1
        assert value(found, hooks, hook="on_dataset_data_changed") == 0  # not implemented
        assert value(found, hooks, hook="on_expenses_sync_failed") == 1
        records = "codat_webhooks_records"
        assert value(found, records, state="done") == 6
        assert value(found, records, state="parked") == 1
        assert value(found, records, state="failed") == 1
        assert value(found, records, state="queued") == 0
        assert value(found, "codat_webhooks_store_up") == 1


def test_a_stopping_worker_writes_its_last_batch(tmp_path: Path) -> None:
    """No scrape and no timer (an hour away): the worker writes its batch as it exits."""
    command, port, env, multiproc = metrics_server(tmp_path, 1, flush_interval="3600")
    auth = {"Authorization": AUTHORIZATION, "Content-Type": "application/json"}
    with running(command, port, env, tmp_path / "gunicorn.log", ready=f"{PATH}/health") as base:
        for _ in range(2):
            answer = httpx.post(
                base + PATH, content=sample_body("Dataset data changed"), headers=auth
            )
            assert answer.status_code == 200
    # gunicorn has stopped (SIGTERM, by PID): read what its worker left in the directory.
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiproc))  # type: ignore[no-untyped-call]
    labels = {"outcome": "processed", "status": "200", "type": "Dataset data changed"}
    assert registry.get_sample_value("codat_webhooks_deliveries_total", labels) == 2
