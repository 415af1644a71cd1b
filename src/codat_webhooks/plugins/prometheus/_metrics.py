"""The plugin: what each answer records, and how the records reach the metrics."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ..._forking import start_over_in_children
from ...errors import StoreError
from ...hooks.dispatch import nonblocking
from ...hooks.markers import hookimpl
from ...observe import HookTiming
from ..labels import type_label
from ._histogram import latency_histogram

if TYPE_CHECKING:
    from ...receiver import Receiver

__all__ = ["LATENCY_BUCKETS", "PrometheusMetrics", "flush_every_plugin"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Seconds: a delivery without slow hooks takes well under a millisecond of the receiver's own
time, a slow hook seconds, and anything past Codat's timeout is lost anyway."""


_Answer: TypeAlias = tuple[str, int | None, str | None, bool]
"""What ``on_outcome`` is told of an answer: outcome, status, type, and whether a worker ran
it. A type is spelt as the sender spelt it."""

_Labels: TypeAlias = tuple[str, str, str, bool]
"""The same as metric labels: the status as text, and the type's bounded label."""

_T = TypeVar("_T")


def _drain(pending: deque[_T]) -> list[_T]:
    """Take what ``pending`` holds now. Other threads only ever append, so popping exactly its
    present length never runs dry, and a value appended meanwhile stays for the next drain:
    nothing is lost, and no lock is needed (each pop is atomic)."""
    return list(map(deque.popleft, repeat(pending, len(pending))))


_live: weakref.WeakSet[PrometheusMetrics] = weakref.WeakSet()
"""Every plugin of this process, so a scrape can write them all first."""


def flush_every_plugin() -> None:
    """Write this process's latest answers, whichever registry is about to be read."""
    for plugin in list(_live):
        plugin.flush()


class PrometheusMetrics:
    """Counts and times every answer and worker run (see ``docs/operations.md``).

    ``registry`` defaults to prometheus-client's global one; pass your own to keep these
    metrics apart (tests, or two receivers in one process).

    ``on_outcome`` only appends the answer's duration and its hooks' times to queues kept per
    label set (thread-safe appends, no lock), and :meth:`flush` writes them into the metrics,
    each labelled series once per flush: when the registry is scraped (any scrape of
    ``registry``, or ``render``), and otherwise at most ``flush_interval`` seconds after an
    answer, from a timer thread. What a scrape of another process sees (gunicorn,
    multiprocess mode) is therefore up to ``flush_interval`` late, and a process killed with
    SIGKILL loses that much; ``flush_interval=0`` writes every answer at once.
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
        self._children: dict[tuple[Counter, tuple[str, ...]], Counter] = {}
        if registry is not None:  # first, so any scrape of the registry flushes before reading
            registry.register(_Flusher(self))
        options: dict[str, Any] = {"namespace": namespace, "registry": registry}
        self.deliveries = Counter(
            "deliveries",
            "Answers to deliveries, by outcome, HTTP status and rule or event type.",
            ["outcome", "status", "type"],
            **options,
        )
        prefix = f"{namespace}_" if namespace else ""
        self.duration = latency_histogram(
            f"{prefix}delivery_duration_seconds",
            "The receiver's time per answer (verify, parse, store, hooks), by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.hook_duration = latency_histogram(
            f"{prefix}hook_duration_seconds",
            "Time of each hook (all its implementations) per delivery or worker run.",
            ["hook"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
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
        see ``metrics_wsgi_app``."""
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
        count = self._count
        with self._flushing:
            # list(dict.items()) is taken at once, while on_outcome may add a label set
            for (outcome, status, type_, worker), pending in list(self._pending.items()):
                durations = _drain(pending)
                if not durations:
                    continue
                if worker:  # a worker's run is timed per hook only
                    count(self.worker_runs, (outcome, type_), len(durations))
                    continue
                count(self.deliveries, (outcome, status, type_), len(durations))
                self.duration.add((outcome,), durations)
            for name, pending in list(self._hook_times.items()):
                times = _drain(pending)
                if times:
                    self.hook_duration.add((name,), times)
            for operation, failures in list(self._store_errors.items()):
                failed = len(_drain(failures))
                if failed:
                    count(self.store_errors, (operation,), failed)

    def _queue_of(self, answer: _Answer) -> deque[float]:
        """The queue of an answer's label set, the first time its spelling is seen."""
        outcome, status, kind, worker = answer
        label = type_label(kind)
        queue = self._pending.setdefault((outcome, str(status), label, worker), deque())
        if label != "other":  # a recognised type: a bounded set of spellings
            self._answers.setdefault(answer, queue)
        return queue

    def _count(self, counter: Counter, labels: tuple[str, ...], amount: int) -> None:
        """Add ``amount`` to one labelled series of ``counter`` (its child found once)."""
        child = self._children.get((counter, labels))
        if child is None:
            child = self._children[(counter, labels)] = counter.labels(*labels)
        child.inc(amount)

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
