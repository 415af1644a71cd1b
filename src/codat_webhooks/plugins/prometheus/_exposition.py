"""Serving ``/metrics``: the text exposition, the store's gauges, and gunicorn's hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from ...errors import StoreError
from ._histogram import in_multiprocess_mode
from ._metrics import flush_every_plugin

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ...stores.base import Store

__all__ = ["StoreCollector", "child_exit", "metrics_asgi_app", "metrics_wsgi_app", "render"]


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
    flush_every_plugin()
    if in_multiprocess_mode():
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
    if in_multiprocess_mode():
        mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
