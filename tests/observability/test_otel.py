"""The OpenTelemetry plugin, checked with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode

from codat_webhooks import Receiver, StoreError, hookimpl
from codat_webhooks.plugins.otel import OpenTelemetryTracing
from codat_webhooks.stores import Claim, Entry, MemoryStore
from codat_webhooks.testing import sample_body

AUTH = {"Authorization": "Bearer s3cret"}
COMPANY = str(uuid.uuid4())


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> OpenTelemetryTracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryTracing(provider)


class Handlers:
    @hookimpl
    def on_expenses_sync_failed(self) -> None:
        raise ValueError("the ledger API said no")

    @hookimpl
    def on_dataset_data_changed(self) -> None:
        pass

    @hookimpl
    def on_alert(self) -> None:
        pass


def receiver(tracing: OpenTelemetryTracing, store: MemoryStore | None = None) -> Receiver:
    return Receiver(
        authorization="Bearer s3cret",
        store=store or MemoryStore(),
        plugins=[Handlers(), tracing],
        load_entrypoints=False,
    )


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def test_a_processed_delivery_is_a_span_with_a_child_per_hook(
    tracing: OpenTelemetryTracing, exporter: InMemorySpanExporter
) -> None:
    key = str(uuid.uuid4())
    body = sample_body("Dataset data changed", alert_id=key, company_id=COMPANY)
    receiver(tracing).handle("POST", AUTH, body)
    spans = exporter.get_finished_spans()
    (delivery,) = by_name(spans, "codat_webhooks.delivery")
    assert delivery.kind is SpanKind.SERVER
    assert dict(delivery.attributes or {}) == {
        "codat_webhooks.key": key,
        "codat_webhooks.type": "Dataset data changed",
        "codat_webhooks.company_id": COMPANY,
        "codat_webhooks.outcome": "processed",
        "codat_webhooks.attempt": 1,
        "http.response.status_code": 200,
    }
    assert delivery.status.status_code is StatusCode.UNSET
    children = [span for span in spans if span.parent is not None]
    assert [span.name for span in children] == ["on_dataset_data_changed", "on_alert"]
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == delivery.context.span_id
        assert child.context.trace_id == delivery.context.trace_id
        assert delivery.start_time is not None
        assert delivery.end_time is not None
        assert child.start_time is not None
        assert child.end_time is not None
        assert delivery.start_time <= child.start_time <= child.end_time <= delivery.end_time


def test_a_hook_that_no_plugin_implements_gets_no_span(
    tracing: OpenTelemetryTracing, exporter: InMemorySpanExporter
) -> None:
    receiver(tracing).handle("POST", AUTH, sample_body("Sync Started"))
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans if span.parent is not None] == ["on_alert"]


def test_a_failing_hook_records_its_exception_on_both_spans(
    tracing: OpenTelemetryTracing, exporter: InMemorySpanExporter
) -> None:
    reply = receiver(tracing).handle("POST", AUTH, sample_body("Sync Failed"))
    assert reply.status == 503
    spans = exporter.get_finished_spans()
    (delivery,) = by_name(spans, "codat_webhooks.delivery")
    (hook,) = by_name(spans, "on_expenses_sync_failed")
    assert not by_name(spans, "on_alert")  # the chain stopped at the error
    for span in (delivery, hook):
        assert span.status.status_code is StatusCode.ERROR
        (event,) = [e for e in span.events if e.name == "exception"]
        assert event.attributes is not None
        assert event.attributes["exception.type"] == "ValueError"
        assert event.attributes["exception.message"] == "the ledger API said no"
    assert (delivery.attributes or {})["codat_webhooks.outcome"] == "failed"


class Unreachable(MemoryStore):
    def claim(
        self, entry: Entry, *, lease: float, force: bool = False, attempt: object = None
    ) -> Claim:
        raise StoreError("connection refused")


def test_rejections_are_spans_without_error_and_store_outages_are_errors(
    tracing: OpenTelemetryTracing, exporter: InMemorySpanExporter
) -> None:
    receiver(tracing).handle("POST", {"Authorization": "wrong"}, sample_body("Sync Failed"))
    asyncio.run(receiver(tracing).handle_async("POST", AUTH, json.dumps({"a": 1}).encode()))
    receiver(tracing, Unreachable()).handle("POST", AUTH, sample_body("Sync Failed"))
    unauthorized, invalid, unavailable = exporter.get_finished_spans()
    assert (unauthorized.attributes or {})["http.response.status_code"] == 401
    assert "codat_webhooks.type" not in (unauthorized.attributes or {})
    assert unauthorized.status.status_code is StatusCode.UNSET
    assert (invalid.attributes or {})["codat_webhooks.outcome"] == "invalid"
    assert unavailable.status.status_code is StatusCode.ERROR
    assert [e.attributes["exception.type"] for e in unavailable.events if e.attributes] == [
        "codat_webhooks.errors.StoreError"
    ]


class CountingDropSampler(Sampler):
    """Drops every span, counting how many the plugin asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def should_sample(
        self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any
    ) -> SamplingResult:
        self.asked.append(name)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "drops everything"


def test_a_sampled_out_delivery_costs_no_hook_spans() -> None:
    sampler = CountingDropSampler()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = OpenTelemetryTracing(provider)
    assert receiver(tracing).handle("POST", AUTH, sample_body("Dataset data changed")).status == 200
    assert sampler.asked == ["codat_webhooks.delivery"]
    assert exporter.get_finished_spans() == ()
