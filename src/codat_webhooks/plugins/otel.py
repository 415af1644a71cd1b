"""
OpenTelemetry tracing
=====================

An opt-in plugin (extra ``[otel]``, which installs ``opentelemetry-api``; only this module
imports it): one span per answer and per worker run, with a child span per hook that ran (one
with an implementation)::

    from codat_webhooks.plugins.otel import OpenTelemetryTracing

    receiver = Receiver(..., plugins=[handlers, OpenTelemetryTracing()])

Spans go to the global tracer provider unless one is given; configure the SDK and an exporter
as usual. The delivery span carries ``codat_webhooks.key``, ``codat_webhooks.type``,
``codat_webhooks.company_id``, ``codat_webhooks.outcome``, ``codat_webhooks.attempt`` and
``http.response.status_code``; a hook that raised has its exception recorded and status
``ERROR``, and so has the delivery span when the answer is a failure (503) or a worker's run
failed. Spans are written from ``on_outcome`` once the outcome is known, with the measured
start and end times, so spans your own hooks open are not children of them.

A span costs tens of microseconds in the SDK, several times the plugin's own work (see
``benchmarks/core.py``); a sampler that drops a delivery's span skips its hook spans too.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..hooks.dispatch import nonblocking
from ..hooks.markers import hookimpl
from ..observe import HookTiming
from ..outcomes import Outcome

__all__ = ["OpenTelemetryTracing"]

_FAILURES = frozenset(
    {
        Outcome.FAILED,
        Outcome.ABANDONED,
        Outcome.UNAVAILABLE,
        Outcome.RETRY,
        Outcome.ERROR,
        Outcome.MISCONFIGURED,
    }
)
"""Outcomes that are our failure (503, or a worker's failed run), not the sender's."""


class OpenTelemetryTracing:
    """Writes a span per delivery (``codat_webhooks.delivery``) or worker run
    (``codat_webhooks.worker``), and one per hook that ran, named after the hook."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("codat_webhooks", tracer_provider=tracer_provider)

    @hookimpl
    @nonblocking
    def on_outcome(
        self,
        outcome: str,
        status: int | None,
        key: str | None,
        kind: str | None,
        company_id: str | None,
        attempt: int,
        duration: float,
        hooks: tuple[HookTiming, ...],
        error: BaseException | None,
        worker: bool,
    ) -> None:
        end, now = time.time_ns(), time.perf_counter()
        attributes: dict[str, Any] = {"codat_webhooks.outcome": str(outcome)}
        attributes["codat_webhooks.attempt"] = attempt
        for name, value in (
            ("codat_webhooks.key", key),
            ("codat_webhooks.type", kind),
            ("codat_webhooks.company_id", company_id),
            ("http.response.status_code", status),
        ):
            if value is not None:
                attributes[name] = value
        span = self.tracer.start_span(
            "codat_webhooks.worker" if worker else "codat_webhooks.delivery",
            kind=SpanKind.CONSUMER if worker else SpanKind.SERVER,
            start_time=end - int(duration * 1e9),
            attributes=attributes,
        )
        if not span.is_recording():  # sampled out: so would its children be, at a cost each
            span.end(end_time=end)
            return
        context = trace.set_span_in_context(span)
        for timing in hooks:
            started = end - int((now - timing.started) * 1e9)
            child = self.tracer.start_span(timing.name, context=context, start_time=started)
            if timing.error is not None:
                _failed(child, timing.error)
            child.end(end_time=started + int(timing.seconds * 1e9))
        if outcome in _FAILURES:
            if error is not None:
                _failed(span, error)
            else:
                span.set_status(Status(StatusCode.ERROR, str(outcome)))
        span.end(end_time=end)


def _failed(span: trace.Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
