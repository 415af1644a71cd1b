"""Latency histograms written a batch at a time, on prometheus-client's public API.

A Prometheus histogram of seconds is, per label set, a count per bucket bound (how many times
were at most that long: the buckets are cumulative, and the last bound, +Inf, counts them all)
and the sum of the times. The plugin records answers as they come and hands them over here a
batch at a time (see ``_metrics``). Where the numbers must end up decides how a batch is
written:

* **One process** (the usual case): the numbers are ours. :class:`BatchedHistogram` counts a
  whole batch into its buckets at once and is a custom collector, prometheus-client's public
  extension point: the registry reads it at scrape time as a ``HistogramMetricFamily``, with
  the names, labels and ``le`` values a ``prometheus_client.Histogram`` would expose.
* **prometheus-client's multiprocess mode** (``PROMETHEUS_MULTIPROC_DIR`` set, e.g. gunicorn
  with several workers): a scrape adds up the files that each process's own metric objects
  write, and sees nothing a custom collector holds. :class:`ObservedHistogram` therefore feeds
  a real ``Histogram`` through ``observe``, one value at a time: the library has no batch call.
  This happens on the flush (a timer thread, or a scrape), never while a delivery is answered.

:func:`latency_histogram` picks one when the plugin is built.
"""

from __future__ import annotations

import operator
import os
import threading
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

from ..._forking import start_over_in_children

__all__ = [
    "BatchedHistogram",
    "LatencyHistogram",
    "ObservedHistogram",
    "in_multiprocess_mode",
    "latency_histogram",
]


def in_multiprocess_mode() -> bool:
    """Whether prometheus-client keeps this process's values in files for a scrape to add up
    (the variable must be set before the server starts, so it holds for the process's life)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class LatencyHistogram(Protocol):
    """A histogram of seconds that takes a batch of values for one label set at a time."""

    def add(self, labels: tuple[str, ...], values: Sequence[float]) -> None:
        """Count ``values`` for the series ``labels``, as ``observe`` would one by one."""

    def collect(self) -> Iterable[Metric]:
        """The histogram as prometheus-client exposes it."""


class _Series:
    """One label set's numbers: the cumulative count of each bucket, and the sum."""

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.total = 0.0


class BatchedHistogram(Collector):
    """Our own bucket counts and sums per label set, read by the registry at scrape time."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry | None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = (*sorted(float(bound) for bound in buckets if bound != INF), INF)
        # the ``le`` label of each bucket, spelt as prometheus-client's own Histogram spells it
        # (public in prometheus_client.utils, but without type annotations)
        self._le: list[str] = [floatToGoString(bound) for bound in self.bounds]  # type: ignore[no-untyped-call]
        self._series: dict[tuple[str, ...], _Series] = {}
        self._lock = threading.Lock()
        """A flush and a scrape may run at once: a scrape sees a batch whole or not at all."""
        start_over_in_children(self)
        if registry is not None:
            registry.register(self)

    def add(self, labels: tuple[str, ...], values: Sequence[float]) -> None:
        # Prometheus buckets are cumulative: the bucket of a bound counts every value at or
        # below it (Histogram.observe's rule), i.e. how far into the sorted batch the bound lies.
        ordered = sorted(values)
        upto = [bisect_right(ordered, bound) for bound in self.bounds]
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = _Series(len(self.bounds))
            series.buckets = list(map(operator.add, series.buckets, upto))
            series.total += sum(ordered)

    def describe(self) -> Iterator[Metric]:
        """The family's name, so a registry refuses a second plugin's histogram of that name."""
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            series = [(labels, one.buckets, one.total) for labels, one in self._series.items()]
        for labels, buckets, total in series:
            family.add_metric(labels, list(zip(self._le, map(float, buckets), strict=True)), total)
        yield family

    def _forked(self) -> None:
        """A child may inherit the lock held by a parent's flush: it starts with its own."""
        self._lock = threading.Lock()


class ObservedHistogram:
    """A ``prometheus_client.Histogram`` fed one value at a time, for multiprocess mode."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self._children: dict[tuple[str, ...], Histogram] = {}

    def add(self, labels: tuple[str, ...], values: Sequence[float]) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.histogram.labels(*labels)
        for value in values:
            child.observe(value)

    def collect(self) -> Iterable[Metric]:
        return self.histogram.collect()


def latency_histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str],
    *,
    buckets: Sequence[float],
    registry: CollectorRegistry | None,
) -> LatencyHistogram:
    """The histogram that reaches a scrape in this process's mode (see the module's text)."""
    if in_multiprocess_mode():
        histogram = Histogram(name, documentation, labelnames, buckets=buckets, registry=registry)
        return ObservedHistogram(histogram)
    return BatchedHistogram(name, documentation, labelnames, buckets=buckets, registry=registry)
