"""The Prometheus plugin in one process, on a registry of its own."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from codat_webhooks import Receiver, RuleType, StoreError, hookimpl
from codat_webhooks.observe import HookTiming
from codat_webhooks.plugins.labels import type_label
from codat_webhooks.plugins.prometheus import (
    LATENCY_BUCKETS,
    PrometheusMetrics,
    metrics_asgi_app,
    metrics_wsgi_app,
    render,
)
from codat_webhooks.plugins.prometheus._histogram import BatchedHistogram, ObservedHistogram
from codat_webhooks.queues import RetryPolicy
from codat_webhooks.stores import Entry, MemoryStore
from codat_webhooks.testing import sample_body
from tests.queues.test_queued_receiver import ListQueue

AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> PrometheusMetrics:
    return PrometheusMetrics(registry)


def make(metrics: PrometheusMetrics, *plugins: object, **options: Any) -> Receiver:
    return Receiver(
        authorization="Bearer s3cret",
        plugins=[*plugins, metrics],
        load_entrypoints=False,
        **{"store": MemoryStore(), **options},
    )


class AlertHandlers:
    @hookimpl
    def on_alert(self) -> None:
        pass

    @hookimpl
    def on_unknown_alert(self) -> None:
        pass


def test_answers_are_counted_by_outcome_status_and_canonical_type(
    metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    receiver = make(metrics, AlertHandlers())
    body = sample_body("Dataset data changed")
    receiver.handle("POST", AUTH, body)
    receiver.handle("POST", AUTH, body)
    receiver.handle("POST", AUTH, sample_body("DataSyncCompleted"))  # another spelling
    receiver.handle(
        "POST",
        AUTH,
        json.dumps(
            {"RuleType": "A rule Codat adds tomorrow", "AlertId": str(uuid.uuid4())}
        ).encode(),
    )
    receiver.handle("POST", {"Authorization": "wrong"}, body)
    get = registry.get_sample_value
    counted = "codat_webhooks_deliveries_total"
    assert (
        get(counted, {"outcome": "processed", "status": "200", "type": "Dataset data changed"}) == 1
    )
    assert (
        get(counted, {"outcome": "duplicate", "status": "200", "type": "Dataset data changed"}) == 1
    )
    assert (
        get(counted, {"outcome": "processed", "status": "200", "type": "Data sync completed"}) == 1
    )
    assert get(counted, {"outcome": "processed", "status": "200", "type": "other"}) == 1
    assert get(counted, {"outcome": "unauthorized", "status": "401", "type": ""}) == 1
    assert get("codat_webhooks_delivery_duration_seconds_count", {"outcome": "processed"}) == 3
    assert get("codat_webhooks_hook_duration_seconds_count", {"hook": "on_alert"}) == 3
    assert get("codat_webhooks_hook_duration_seconds_count", {"hook": "on_unknown_alert"}) == 1
    # a hook nobody implements ran nothing: no series for it
    assert (
        get("codat_webhooks_hook_duration_seconds_count", {"hook": "on_data_sync_completed"})
        is None
    )


def test_type_labels_are_bounded() -> None:
    assert type_label("DatasetDataChanged") == "Dataset data changed"
    assert type_label("invoices.write.successful") == "{dataType}.write.successful"
    assert {type_label(f"made-up {n}") for n in range(50)} == {"other"}
    assert type_label(None) == ""


class Unreachable(MemoryStore):
    def claim(
        self, entry: Entry, *, lease: float, force: bool = False, attempt: object = None
    ) -> Any:
        raise StoreError("connection refused")

    def counts(self) -> Any:
        raise StoreError("connection refused")


def test_store_errors_and_the_store_gauges(
    metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    down = make(metrics, store=Unreachable())
    assert down.handle("POST", AUTH, sample_body("Dataset data changed")).status == 503
    assert (
        registry.get_sample_value("codat_webhooks_store_errors_total", {"operation": "delivery"})
        == 1
    )
    text = render(down.store, registry).decode()
    assert "codat_webhooks_store_up 0.0" in text
    assert "codat_webhooks_records{" not in text

    store = MemoryStore()
    store.park(Entry("parked-1", "a" * 64, b"[]"), reason="not an alert")
    families = {f.name: f for f in text_string_to_metric_families(render(store, registry).decode())}
    by_state = {s.labels["state"]: s.value for s in families["codat_webhooks_records"].samples}
    assert by_state == {"queued": 0, "processing": 0, "done": 0, "failed": 0, "parked": 1}


class HoldsUntilRenewed:
    """A hook that returns only once its lease has been renewed (or a deadline passed)."""

    def __init__(self) -> None:
        self.renewed = threading.Event()

    @hookimpl
    def on_alert(self) -> None:
        assert self.renewed.wait(timeout=30), "the lease was never renewed"


def test_lease_renewals_are_counted(
    metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    hook = HoldsUntilRenewed()
    receiver = make(metrics, hook, lease=0.2)
    metrics.watch(receiver)
    receiver.lease_keeper.listeners.append(lambda result: hook.renewed.set())
    try:
        assert receiver.handle("POST", AUTH, sample_body("Dataset data changed")).status == 200
    finally:
        receiver.close()
    renewed = registry.get_sample_value(
        "codat_webhooks_lease_renewals_total", {"result": "renewed"}
    )
    assert renewed is not None
    assert renewed >= 1


class FailsOnce:
    def __init__(self) -> None:
        self.failed = False

    @hookimpl
    def on_alert(self) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("first try fails")


def test_worker_runs_are_counted(metrics: PrometheusMetrics, registry: CollectorRegistry) -> None:
    queue = ListQueue()
    receiver = make(metrics, FailsOnce(), queue=queue, retries=RetryPolicy(first=0, cap=0))
    assert receiver.handle("POST", AUTH, sample_body("Dataset data changed")).status == 202
    key = queue.keys[0]
    receiver.process_queued(key)
    receiver.process_queued(key)
    get = registry.get_sample_value
    runs = "codat_webhooks_worker_runs_total"
    assert get(runs, {"outcome": "retry", "type": "Dataset data changed"}) == 1
    assert get(runs, {"outcome": "processed", "type": "Dataset data changed"}) == 1
    assert (
        get(
            "codat_webhooks_deliveries_total",
            {"outcome": "queued", "status": "202", "type": "Dataset data changed"},
        )
        == 1
    )


@pytest.fixture
def counted_store() -> MemoryStore:
    store = MemoryStore()
    store.park(Entry("parked-1", "a" * 64, b"[]"), reason="not an alert")
    return store


def test_wsgi_and_asgi_metrics_apps(
    counted_store: MemoryStore, registry: CollectorRegistry
) -> None:
    from werkzeug.test import Client

    wsgi = Client(metrics_wsgi_app(counted_store, registry)).get("/metrics")
    assert wsgi.status_code == 200
    assert wsgi.headers["Content-Type"].startswith("text/plain")
    assert 'codat_webhooks_records{state="parked"} 1.0' in wsgi.get_data(as_text=True)

    async def scrape() -> httpx.Response:
        transport = httpx.ASGITransport(app=metrics_asgi_app(counted_store, registry))
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            return await client.get("/metrics")

    asgi = asyncio.run(scrape())
    assert asgi.status_code == 200
    assert 'codat_webhooks_records{state="parked"} 1.0' in asgi.text


def delivered(metrics: PrometheusMetrics) -> float:
    """The answers counted so far, read from the counter itself: no scrape, so no flush."""
    return sum(
        sample.value
        for family in metrics.deliveries.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def test_answers_wait_for_a_scrape_or_the_flush_interval(registry: CollectorRegistry) -> None:
    metrics = PrometheusMetrics(registry, flush_interval=3600)
    receiver = make(metrics)
    receiver.handle("POST", AUTH, sample_body("Dataset data changed"))
    assert delivered(metrics) == 0  # recorded, not yet written
    text = render(registry=registry).decode()  # a scrape writes the batch first
    assert 'outcome="processed",status="200",type="Dataset data changed"} 1.0' in text
    assert delivered(metrics) == 1

    soon = PrometheusMetrics(CollectorRegistry(), flush_interval=0.05)
    make(soon).handle("POST", AUTH, sample_body("Dataset data changed"))
    deadline = time.monotonic() + 10
    while delivered(soon) < 1:  # nobody scrapes: the timer writes it
        assert time.monotonic() < deadline, "the batch was never flushed"
        time.sleep(0.01)

    at_once = PrometheusMetrics(CollectorRegistry(), flush_interval=0)
    make(at_once).handle("POST", AUTH, sample_body("Dataset data changed"))
    assert delivered(at_once) == 1

    with pytest.raises(ValueError, match="flush_interval"):
        PrometheusMetrics(CollectorRegistry(), flush_interval=-1)


def test_answers_recorded_from_many_threads_during_flushes_are_each_counted_once(
    registry: CollectorRegistry,
) -> None:
    """on_outcome takes no lock: its appends and the flush's pops are each atomic, and a flush
    takes exactly what was there. Switching threads every 10 µs puts flushes between the steps
    of the recording threads: a flush that copied each queue and then cleared it lost 66 to 378
    answers of the 20,000 in each of five runs of this test. Every answer is written once."""
    metrics = PrometheusMetrics(registry, flush_interval=3600)
    threads, answers = 4, 5000
    hooks = (HookTiming("on_alert", 0.0, 0.002),)
    kinds = [rule.value for rule in RuleType]
    started, stop = threading.Barrier(threads + 1), threading.Event()
    flushes: list[int] = []
    errors: list[BaseException] = []

    def record(number: int) -> None:
        started.wait()
        for answer in range(answers):  # a new label set now and then, while flushing
            kind = kinds[(number * 5 + answer // 1000) % len(kinds)]
            metrics.on_outcome("processed", 200, kind, 0.001, hooks, None, False)

    def flush_until_stopped() -> None:
        started.wait()
        try:
            while not stop.is_set():
                metrics.flush()
                flushes.append(1)
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        flusher = threading.Thread(target=flush_until_stopped)
        recorders = [threading.Thread(target=record, args=(n,)) for n in range(threads)]
        for thread in [flusher, *recorders]:
            thread.start()
        for thread in recorders:
            thread.join()
        stop.set()
        flusher.join()
    finally:
        sys.setswitchinterval(switching)
    assert not errors
    assert len(flushes) >= 2, "no flush ran while the answers were being recorded"
    metrics.flush()
    assert delivered(metrics) == threads * answers
    samples = {
        (sample.name, sample.labels.get("le")): sample.value
        for family in metrics.hook_duration.collect()
        for sample in family.samples
    }
    assert samples["codat_webhooks_hook_duration_seconds_count", None] == threads * answers
    assert samples["codat_webhooks_hook_duration_seconds_bucket", "0.001"] == 0
    assert samples["codat_webhooks_hook_duration_seconds_bucket", "0.0025"] == threads * answers
    assert samples["codat_webhooks_hook_duration_seconds_sum", None] == pytest.approx(40.0)


def test_types_a_sender_invents_share_one_label_set(registry: CollectorRegistry) -> None:
    metrics = PrometheusMetrics(registry, flush_interval=3600)
    for n in range(1000):
        metrics.on_outcome("processed", 200, f"made-up {n}", 0.001, (), None, False)
    metrics.on_outcome("processed", 200, "DatasetDataChanged", 0.001, (), None, False)
    metrics.on_outcome("processed", 200, "Dataset data changed", 0.001, (), None, False)
    metrics.flush()
    counted = {
        sample.labels["type"]: sample.value
        for family in metrics.deliveries.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counted == {"other": 1000, "Dataset data changed": 2}
    assert len(metrics._answers) == 2, "only the recognised spellings are kept"


def observed(*args: Any, **options: Any) -> ObservedHistogram:
    return ObservedHistogram(Histogram(*args, **options))


@pytest.mark.parametrize("kind", [BatchedHistogram, observed])
@pytest.mark.parametrize("more", [0, 200], ids=["a few values", "a busy second"])
def test_a_batch_of_observations_adds_up_as_one_by_one(kind: Any, more: int) -> None:
    """Both ways of writing a batch expose what prometheus-client's Histogram would, sample
    for sample: the same names, the same ``le`` labels, the same counts and sum."""
    values = [0.0, 0.0005, 0.0004999, 0.0005001, 0.003, 0.05, 0.05, 1, 9.99, 10, 11, 3600]
    values += [random.uniform(0, 12) for _ in range(more)]
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    expected = Histogram("t_seconds", "t", ["hook"], buckets=LATENCY_BUCKETS, registry=one_by_one)
    for value in values:
        expected.labels("on_alert").observe(value)
    expected.labels("on_alert_too").observe(0.01)
    histogram = kind("t_seconds", "t", ["hook"], buckets=LATENCY_BUCKETS, registry=batched)
    half = len(values) // 2
    histogram.add(("on_alert",), values[:half])  # two flushes
    histogram.add(("on_alert",), values[half:])
    histogram.add(("on_alert_too",), [0.01])

    def exposed(registry: CollectorRegistry) -> dict[tuple[str, tuple[Any, ...]], float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")  # when each series began: not a count
        }

    want, got = exposed(one_by_one), exposed(batched)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key


def test_a_histogram_name_taken_on_the_registry_is_refused(registry: CollectorRegistry) -> None:
    """As with prometheus-client's own metrics, two series of one name cannot be registered."""
    BatchedHistogram(
        "codat_webhooks_hook_duration_seconds", "t", ["hook"], buckets=[1], registry=registry
    )
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        BatchedHistogram(
            "codat_webhooks_hook_duration_seconds", "t", [], buckets=[1], registry=registry
        )
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusMetrics(registry)


def test_a_forked_child_counts_its_own_answers(registry: CollectorRegistry) -> None:
    metrics = PrometheusMetrics(registry, flush_interval=3600)
    receiver = make(metrics)
    receiver.handle("POST", AUTH, sample_body("Dataset data changed"))  # armed, not written
    metrics.flush_interval = 0.05
    pid = os.fork()
    if pid == 0:  # the child: the parent's pending answer is the parent's to write
        status = 1
        try:
            receiver.handle("POST", AUTH, sample_body("Dataset data changed"))
            deadline = time.monotonic() + 10
            while delivered(metrics) < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            status = 0 if delivered(metrics) == 1 else 2
        finally:
            os._exit(status)
    _, code = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(code) == 0, "the child's own timer wrote its answer, once"
    assert delivered(metrics) == 0
    metrics.flush()
    assert delivered(metrics) == 1


def test_multiprocess_mode_feeds_prometheus_clients_own_histograms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Only the files of prometheus-client's own metrics are added up over processes, so in
    multiprocess mode the histograms are real ``Histogram`` objects (see the gunicorn test)."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    alone = PrometheusMetrics(CollectorRegistry())
    assert isinstance(alone.hook_duration, BatchedHistogram)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    shared = PrometheusMetrics(CollectorRegistry())
    assert isinstance(shared.duration, ObservedHistogram)
    assert isinstance(shared.hook_duration, ObservedHistogram)
    assert isinstance(shared.hook_duration.histogram, Histogram)


def test_stale_deliveries_are_counted_under_their_own_outcome(
    metrics: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    from tests.test_ordering import REORDERED, raw

    receiver = make(metrics, stale="skip")
    assert [receiver.handle("POST", AUTH, raw(body)).outcome for body in REORDERED] == [
        "processed",
        "stale",
    ]
    labels = {"outcome": "stale", "status": "200", "type": "connection.disconnected"}
    assert registry.get_sample_value("codat_webhooks_deliveries_total", labels) == 1
