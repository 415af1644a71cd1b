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

import atexit
import os
import threading
import weakref
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeAlias

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

from .._forking import start_over_in_children
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


_Answer: TypeAlias = tuple[str, int | None, str | None, bool]
"""What ``on_outcome`` is told of an answer: outcome, status, type, and whether a worker ran
it. A type is spelt as the sender spelt it."""

_Labels: TypeAlias = tuple[str, str, str, bool]
"""The same as metric labels: the status as text, and the type's bounded label."""

_popleft = deque.popleft


def _drain(pending: deque[Any]) -> list[Any]:
    """Take what ``pending`` holds now. Other threads only ever append, so popping exactly its
    present length never runs dry, and a value appended meanwhile stays for the next drain:
    nothing is lost, and no lock is needed (each pop is atomic)."""
    return list(map(_popleft, repeat(pending, len(pending))))


_live: weakref.WeakSet[PrometheusMetrics] = weakref.WeakSet()
"""Every plugin of this process, so :func:`render` can flush them before a scrape."""


class PrometheusMetrics:
    """Counts and times every answer and worker run (see ``docs/operations.md``).

    ``registry`` defaults to prometheus-client's global one; pass your own to keep these
    metrics apart (tests, or two receivers in one process).

    ``on_outcome`` only appends the answer's duration and its hooks' times to queues kept per
    label set (thread-safe appends, no lock), and :meth:`flush` writes them into the metrics:
    when the registry is scraped (any scrape of ``registry``, or :func:`render`), and otherwise
    at most ``flush_interval`` seconds after an answer, from a timer thread. A flush updates
    each labelled series once, so a request pays a few appends instead of the seven locked
    updates of a new alert with two hooks (measured in ``benchmarks/core.py``). What a scrape of
    another process sees (gunicorn, multiprocess mode) is therefore up to ``flush_interval``
    late, and a process killed with SIGKILL loses that much; ``flush_interval=0`` writes every
    answer at once.
    """

    _timer: threading.Timer | None

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        namespace: str = "codat_webhooks",
        flush_interval: float = 1.0,
    ) -> None:
        if not flush_interval >= 0:  # NaN included
            raise ValueError("flush_interval must be a number of seconds, 0 or more")
        self.registry = registry
        self.flush_interval = flush_interval
        self._start_empty()
        self._children: dict[tuple[Counter | Histogram, tuple[str, ...]], Any] = {}
        if registry is not None:  # first, so any scrape of the registry flushes before reading
            registry.register(_Flusher(self))
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
        _live.add(self)
        start_over_in_children(self)
        atexit.register(_flush_if_alive, weakref.ref(self))

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
        answer = (outcome, status, kind, worker)
        durations = self._answers.get(answer)
        if durations is None:
            durations = self._queue_of(answer)
        durations.append(duration)
        hook_times = self._hook_times
        for name, _started, seconds, _error in hooks:
            times = hook_times.get(name)
            if times is None:
                times = hook_times.setdefault(name, deque())
            times.append(seconds)
        if error is not None and isinstance(error, StoreError):
            operation = "worker" if worker else "delivery"
            self._store_errors.setdefault(operation, deque()).append(None)
        if self._timer is None:
            self._arm()

    def flush(self) -> None:
        """Write every answer recorded so far into the metrics (scrapes call it)."""
        series = self._series
        with self._flushing:
            # list(dict.items()) is taken at once, while on_outcome may add a label set
            for (outcome, status, type_, worker), pending in list(self._pending.items()):
                durations = _drain(pending)
                if not durations:
                    continue
                if worker:  # a worker's run is timed per hook only
                    series(self.worker_runs, (outcome, type_)).inc(len(durations))
                    continue
                series(self.deliveries, (outcome, status, type_)).inc(len(durations))
                _observe_batch(series(self.duration, (outcome,)), durations)
            for name, pending in list(self._hook_times.items()):
                times = _drain(pending)
                if times:
                    _observe_batch(series(self.hook_duration, (name,)), times)
            for operation, failures in list(self._store_errors.items()):
                failed = len(_drain(failures))
                if failed:
                    series(self.store_errors, (operation,)).inc(failed)

    def _queue_of(self, answer: _Answer) -> deque[float]:
        """The queue of an answer's label set, the first time its spelling is seen."""
        outcome, status, kind, worker = answer
        label = type_label(kind)
        queue = self._pending.setdefault((outcome, str(status), label, worker), deque())
        if label != "other":  # a recognised type: a bounded set of spellings
            self._answers.setdefault(answer, queue)
        return queue

    def _series(self, metric: Counter | Histogram, labels: tuple[str, ...]) -> Any:
        """``metric.labels(*labels)``, looked up once: ``labels`` validates and locks each time."""
        child = self._children.get((metric, labels))
        if child is None:
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    def _arm(self) -> None:
        """Make sure a flush comes within ``flush_interval`` (one timer at a time)."""
        if not self.flush_interval:
            self.flush()
            return
        with self._arming:
            if self._timer is None:
                timer = threading.Timer(self.flush_interval, self._timed_flush)
                timer.daemon = True
                timer.name = "codat-webhooks-metrics-flush"
                self._timer = timer
                timer.start()

    def _timed_flush(self) -> None:
        self._timer = None  # first: an answer from now on arms the next timer
        self.flush()

    def _start_empty(self) -> None:
        """Nothing recorded, no timer, fresh locks: a new plugin, or one in a forked child."""
        self._pending: dict[_Labels, deque[float]] = {}
        """Durations per label set, not yet written: each one counts an answer. Only floats,
        which the garbage collector never walks, are kept between flushes."""
        self._answers: dict[_Answer, deque[float]] = {}
        """The same queues, found by what ``on_outcome`` is told (no label to work out per
        answer). Only recognised types are kept here, so a sender inventing types cannot grow
        it; an unrecognised one finds its queue the slow way each time."""
        self._hook_times: dict[str, deque[float]] = {}
        self._store_errors: dict[str, deque[None]] = {}
        self._flushing = threading.Lock()
        self._arming = threading.Lock()
        self._timer = None

    def _forked(self) -> None:
        """A forked child has no timer, and the parent writes what it had recorded."""
        self._start_empty()


def _observe_batch(series: Histogram, values: list[float]) -> None:
    """Add ``values`` to one labelled histogram series, as ``series.observe`` would one by one.

    prometheus-client has no batch API, and ``observe`` takes two locks and walks the buckets
    for every value: the plugin's main cost per delivery. Its histogram keeps the sum and each
    bucket's own count (the bounds in ``_upper_bounds``, the last one +Inf) as values that take
    a batch increment, so a batch increments each once: once sorted (in C), the values up to a
    bound are found by bisection, per bound rather than per value. A batch smaller than the
    number of buckets (``flush_interval=0``, a quiet second) looks up each value's bucket
    instead. Should a future prometheus-client keep them otherwise, every value goes through
    ``observe`` (slower, never wrong); a test checks which path the installed version takes.
    """
    bounds = getattr(series, "_upper_bounds", None)
    buckets = getattr(series, "_buckets", None)
    total = getattr(series, "_sum", None)
    if bounds is None or total is None or buckets is None or len(buckets) != len(bounds):
        for value in values:
            series.observe(value)
        return
    total.inc(sum(values))
    if len(values) < len(bounds):
        for value in values:
            buckets[bisect_left(bounds, value)].inc(1)  # the first bound >= value, as observe
        return
    values.sort()
    below = 0  # values in the buckets before this one
    for bucket, bound in zip(buckets, bounds, strict=True):
        upto = bisect_right(values, bound)  # observe puts a value in the first bound >= it
        if upto > below:
            bucket.inc(upto - below)
            below = upto


def _flush_if_alive(plugin: weakref.ref[PrometheusMetrics]) -> None:
    """At exit (a gunicorn worker stopping): write what the last interval recorded."""
    alive = plugin()
    if alive is not None:
        alive.flush()


class _Flusher(Collector):
    """Registered before the plugin's metrics: a scrape of the registry flushes them first."""

    def __init__(self, plugin: PrometheusMetrics) -> None:
        self._plugin = weakref.ref(plugin)

    def describe(self) -> Iterator[Metric]:
        """No metrics of its own (and registering it must not flush a half-built plugin)."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        plugin = self._plugin()
        if plugin is not None:
            plugin.flush()
        return iter(())


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
    for plugin in list(_live):  # this process's latest answers, whichever registry is read
        plugin.flush()
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
