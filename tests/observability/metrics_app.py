"""The application the gunicorn metrics test serves: a receiver on a shared SQLite file with
the Prometheus plugin, ``/metrics`` beside it, and each answer naming the worker's pid.

Only gunicorn imports it, with its settings in ``METRICS_TEST_*`` variables: a default file name
here would put a store in whatever directory imported it (the repository root, under pytest).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.plugins.prometheus import PrometheusMetrics, metrics_wsgi_app
from codat_webhooks.stores import SQLiteStore
from codat_webhooks.wsgi import WebhookApp

AUTHORIZATION = os.environ["METRICS_TEST_AUTHORIZATION"]
GATE = Path(os.environ.get("METRICS_TEST_GATE", "/nonexistent"))


class Handlers:
    @hookimpl
    def on_alert(self) -> None:
        pass

    @hookimpl
    def on_expenses_sync_failed(self) -> None:
        raise RuntimeError("downstream API down")

    @hookimpl
    def on_expenses_sync_started(self) -> None:
        """Holds this worker until the test opens the gate, so the other worker must answer."""
        GATE.with_suffix(".entered").touch()
        deadline = time.monotonic() + 30
        while not GATE.exists() and time.monotonic() < deadline:
            time.sleep(0.01)


metrics = PrometheusMetrics(flush_interval=float(os.environ.get("METRICS_TEST_FLUSH_INTERVAL", 1)))
receiver = Receiver(
    authorization=AUTHORIZATION,
    store=SQLiteStore(os.environ["METRICS_TEST_DB"]),  # the test's tmp_path: never the cwd
    plugins=[Handlers(), metrics],
    load_entrypoints=False,
)
metrics.watch(receiver)
served = DispatcherMiddleware(WebhookApp(receiver), {"/metrics": metrics_wsgi_app(receiver.store)})


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    def named(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        return start_response(status, [*headers, ("X-Worker-Pid", str(os.getpid()))], *rest)

    return served(environ, named)
