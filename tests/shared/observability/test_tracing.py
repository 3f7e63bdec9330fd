"""Tracing: off costs nothing and adds no header; on, a span continues the trace of the
headers it is given and hands on its own context."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.observability.tracing import Tracing, configure_tracing, trace_context
from shared.settings import RuntimeSettings

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def recording() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Tracing.exporting_to(exporter, service="test", batch=False), exporter


def test_off_yields_no_headers_and_records_nothing() -> None:
    tracing = Tracing.off()
    with tracing.span("work", parent=(("traceparent", CALLER.encode()),)) as carry:
        assert carry == ()
        assert tracing.current_headers() == ()
    assert not tracing.enabled


def test_a_span_continues_the_trace_in_kafka_headers() -> None:
    tracing, exporter = recording()
    with tracing.span("work", parent=(("traceparent", CALLER.encode()),)) as carry:
        pass
    (span,) = exporter.get_finished_spans()
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == CALLER_SPAN
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE
    ((name, value),) = carry
    assert name == "traceparent"
    assert value.decode() == f"00-{CALLER_TRACE}-{span.context.span_id:016x}-01"


def test_a_span_continues_the_trace_in_http_headers() -> None:
    tracing, exporter = recording()
    with tracing.span("request", parent={"traceparent": CALLER}):
        pass
    (span,) = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE


def test_trace_context_keeps_only_the_context_headers_as_text() -> None:
    headers = (
        ("milepost-source", b"events/3/17"),
        ("traceparent", CALLER.encode()),
        ("tracestate", b"vendor=1"),
    )
    assert trace_context(headers) == {"traceparent": CALLER, "tracestate": "vendor=1"}
    assert trace_context(()) == {}


def test_without_a_parent_a_span_starts_a_new_trace() -> None:
    tracing, exporter = recording()
    with tracing.span("work"), tracing.span("inner", parent=tracing.current_headers()):
        pass
    inner, outer = exporter.get_finished_spans()
    assert outer.parent is None
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert inner.context.trace_id == outer.context.trace_id


def test_malformed_context_starts_a_new_trace() -> None:
    tracing, exporter = recording()
    with tracing.span("work", parent=(("traceparent", b"not-a-trace"),)):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.parent is None


def test_settings_choose_the_exporter() -> None:
    assert not configure_tracing(RuntimeSettings(), service="s").enabled
    console = configure_tracing(RuntimeSettings(tracing_exporter="console"), service="s")
    otlp = configure_tracing(RuntimeSettings(tracing_exporter="otlp"), service="s")
    assert console.enabled
    assert otlp.enabled
    console.shutdown()
    otlp.shutdown()
