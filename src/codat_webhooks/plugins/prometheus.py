"""
Prometheus metrics
==================

An opt-in plugin (extra ``[prometheus]``, which installs ``prometheus-client``; only this
module imports it). Register it like any plugin, let it watch the receiver for the gauges and
lease renewals, and serve ``/metrics``::

    from codat_webhooks.plugins.prometheus import PrometheusMetrics, metrics_wsgi_app

    metrics = PrometheusMetrics()
    receiver = Receiver(..., plugins=[handlers, metrics])
    metrics.watch(receiver)
    metrics_app = metrics_wsgi_app(receiver.store)      # mount at /metrics

Counters and histograms are written by ``on_outcome``; the gauges of records by state are
read from the store when Prometheus scrapes (``Store.counts()``: one query). Under gunicorn's
several processes set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the server
starts and add :func:`child_exit` to the gunicorn configuration; the ``/metrics`` apps then
add up every process's values (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from ..errors import StoreError
from ..hooks.dispatch import nonblocking
from ..hooks.markers import hookimpl
from ..observe import HookTiming
from .labels import type_label

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..receiver import Receiver
    from ..stores.base import Store

__all__ = [
    "PrometheusMetrics",
    "StoreCollector",
    "child_exit",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "render",
]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Seconds: a delivery without slow hooks takes well under a millisecond of the receiver's own
time, a slow hook seconds, and anything past Codat's timeout is lost anyway."""


class PrometheusMetrics:
    """Counts and times every answer and worker run (see ``docs/operations.md``).

    ``registry`` defaults to prometheus-client's global one; pass your own to keep these
    metrics apart (tests, or two receivers in one process). Cheap per delivery: the labelled
    children are looked up once per label combination and reused.
    """

    def __init__(
        self, registry: CollectorRegistry | None = REGISTRY, *, namespace: str = "codat_webhooks"
    ) -> None:
        self.registry = registry
        options: dict[str, Any] = {"namespace": namespace, "registry": registry}
        self.deliveries = Counter(
            "deliveries",
            "Answers to deliveries, by outcome, HTTP status and rule or event type.",
            ["outcome", "status", "type"],
            **options,
        )
        self.duration = Histogram(
            "delivery_duration_seconds",
            "The receiver's time per answer (verify, parse, store, hooks), by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            **options,
        )
        self.hook_duration = Histogram(
            "hook_duration_seconds",
            "Time of each hook (all its implementations) per delivery or worker run.",
            ["hook"],
            buckets=LATENCY_BUCKETS,
            **options,
        )
        self.worker_runs = Counter(
            "worker_runs",
            "Runs of queued keys on workers, by outcome (processed, retry, failed, ...) and type.",
            ["outcome", "type"],
            **options,
        )
        self.store_errors = Counter(
            "store_errors",
            "Store calls that failed, by what was being done (delivery, worker, renew).",
            ["operation"],
            **options,
        )
        self.lease_renewals = Counter(
            "lease_renewals",
            "Renewals of the leases of running hooks, by result (renewed, lost, error).",
            ["result"],
            **options,
        )
        self._answers: dict[tuple[str, int | None, str | None], tuple[Any, Any]] = {}
        self._runs: dict[tuple[str, str | None], Any] = {}
        self._hooks: dict[str, Any] = {}

    def watch(self, receiver: Receiver) -> None:
        """Count ``receiver``'s lease renewals (they happen between answers, on its own
        thread). The gauges of records by state come from the store at scrape time instead:
        see :func:`metrics_wsgi_app`."""
        renewals = self.lease_renewals
        errors = self.store_errors.labels("renew")

        def renewed(result: str) -> None:
            renewals.labels(result).inc()
            if result == "error":
                errors.inc()

        receiver.lease_keeper.listeners.append(renewed)

    @hookimpl
    @nonblocking
    def on_outcome(
        self,
        outcome: str,
        status: int | None,
        kind: str | None,
        duration: float,
        hooks: tuple[HookTiming, ...],
        error: BaseException | None,
        worker: bool,
    ) -> None:
        if worker:
            run = self._runs.get((outcome, kind))
            if run is None:
                run = self._runs[(outcome, kind)] = self.worker_runs.labels(
                    outcome, type_label(kind)
                )
            run.inc()
        else:
            children = self._answers.get((outcome, status, kind))
            if children is None:
                children = self._answers[(outcome, status, kind)] = (
                    self.deliveries.labels(outcome, str(status), type_label(kind)),
                    self.duration.labels(outcome),
                )
            children[0].inc()
            children[1].observe(duration)
        for timing in hooks:
            child = self._hooks.get(timing.name)
            if child is None:
                child = self._hooks[timing.name] = self.hook_duration.labels(timing.name)
            child.observe(timing.seconds)
        if isinstance(error, StoreError):
            self.store_errors.labels("worker" if worker else "delivery").inc()


class StoreCollector(Collector):
    """Gauges read from the store at each scrape: records by state, and whether it answered.

    ``codat_webhooks_records{state="parked"}`` above 0 means authenticated deliveries that
    could not be processed; ``failed`` ones wait for Codat's retry (or a worker's, or a
    replay). Register it on the registry that is scraped (the apps below do).
    """

    def __init__(self, store: Store, *, namespace: str = "codat_webhooks") -> None:
        self.store = store
        self.namespace = namespace

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{self.namespace}_store_up", "1 if the store answered the last scrape, else 0."
        )
        try:
            counts = self.store.counts()
        except StoreError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        records = GaugeMetricFamily(
            f"{self.namespace}_records", "Records kept in the store, by state.", labels=["state"]
        )
        for state, count in counts.items():
            records.add_metric([state.value], count)
        yield records


def render(store: Store | None = None, registry: CollectorRegistry | None = None) -> bytes:
    """The text exposition of every metric: the processes' own (summed over every process in
    multiprocess mode, i.e. when ``PROMETHEUS_MULTIPROC_DIR`` is set) and, with ``store``,
    the gauges read from it now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    parts = [generate_latest(registry or REGISTRY)]
    if store is not None:
        gauges = CollectorRegistry(auto_describe=False)
        gauges.register(StoreCollector(store))
        parts.append(generate_latest(gauges))
    return b"".join(parts)


_HEADERS = [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")]


def metrics_wsgi_app(
    store: Store | None = None, registry: CollectorRegistry | None = None
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """A WSGI app answering every request with :func:`render`: mount it at ``/metrics``."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = render(store, registry)
        start_response("200 OK", [*_HEADERS, ("Content-Length", str(len(body)))])
        return [body]

    return app


def metrics_asgi_app(
    store: Store | None = None, registry: CollectorRegistry | None = None
) -> Callable[..., Any]:
    """An ASGI app answering every HTTP request with :func:`render` (a blocking store is
    read in a thread, so the event loop never waits on it)."""
    from asgiref.sync import sync_to_async

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await sync_to_async(render, thread_sensitive=False)(store, registry)
        headers = [(k.lower().encode(), v.encode()) for k, v in _HEADERS]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def child_exit(server: object, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook for multiprocess mode: forgets a dead worker's gauges.

    In ``gunicorn.conf.py``: ``from codat_webhooks.plugins.prometheus import child_exit``.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
