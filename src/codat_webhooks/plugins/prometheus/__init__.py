"""
Prometheus metrics
==================

An opt-in plugin (extra ``[prometheus]``, which installs ``prometheus-client``; only this
package imports it). Register it like any plugin, let it watch the receiver for the lease
renewals, and serve ``/metrics``::

    from codat_webhooks.plugins.prometheus import PrometheusMetrics, metrics_wsgi_app

    metrics = PrometheusMetrics()
    receiver = Receiver(..., plugins=[handlers, metrics])
    metrics.watch(receiver)
    metrics_app = metrics_wsgi_app(receiver.store)      # mount at /metrics

Counters and histograms are written by ``on_outcome``, a batch at a time (``_metrics``); the
gauges of records by state are read from the store when Prometheus scrapes (``Store.counts()``:
one query). Under gunicorn's several processes set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory before the server starts and add :func:`child_exit` to the gunicorn configuration;
the ``/metrics`` apps then add up every process's values (prometheus-client's multiprocess
mode, ``_exposition``). Only prometheus-client's public API is used: ``_histogram`` says how
histograms are written a batch at a time without it offering a batch call.
"""

from ._exposition import StoreCollector, child_exit, metrics_asgi_app, metrics_wsgi_app, render
from ._metrics import LATENCY_BUCKETS, PrometheusMetrics

__all__ = [
    "LATENCY_BUCKETS",
    "PrometheusMetrics",
    "StoreCollector",
    "child_exit",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "render",
]
