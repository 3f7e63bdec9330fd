"""OpenTelemetry tracing, off by default, with the W3C trace context carried in Kafka headers.

One :class:`Tracing` per process, built from the runtime settings in ``main`` and held by
:class:`shared.runtime.Resources`. A trace starts at an ingest request (continuing the
caller's ``traceparent`` when it sends one), goes onto ``milepost.events`` as a header,
continues in the node engine, onto ``milepost.triggers``, and ends at a delivery.

When tracing is off every method is a no-op: no span, no header, nothing allocated per
record, so hot paths call it unconditionally. The tracer provider is the process's own, never
the global one, so the embedded process and the tests can hold several.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared import __version__
from shared.settings import RuntimeSettings

Headers = tuple[tuple[str, bytes], ...]
"""Kafka record headers."""

_PROPAGATOR = TraceContextTextMapPropagator()
_CONTEXT_HEADERS = frozenset(_PROPAGATOR.fields)
"""``traceparent`` and ``tracestate``."""
_NO_SPAN: AbstractContextManager[Headers] = nullcontext(())
"""The span of tracing that is off: reusable, it carries no headers."""


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]] | Mapping[str, str]]):
    """Reads trace context from Kafka headers or from HTTP headers."""

    def get(
        self, carrier: Sequence[tuple[str, bytes]] | Mapping[str, str], key: str
    ) -> list[str] | None:
        if isinstance(carrier, Mapping):
            value = carrier.get(key)
            return None if value is None else [value]
        found = [v.decode("latin-1") for name, v in carrier if name == key]
        return found or None

    def keys(self, carrier: Sequence[tuple[str, bytes]] | Mapping[str, str]) -> list[str]:
        if isinstance(carrier, Mapping):
            return list(carrier)
        return [name for name, _ in carrier]


_GETTER = _HeaderGetter()


class Tracing:
    """Spans of one process and the headers that carry them to the next."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self._provider = provider
        self._tracer: Tracer | None = (
            None if provider is None else provider.get_tracer("milepost", __version__)
        )

    @classmethod
    def off(cls) -> Tracing:
        return cls(None)

    @classmethod
    def exporting_to(
        cls, exporter: SpanExporter, *, service: str, sample_ratio: float = 1.0, batch: bool = True
    ) -> Tracing:
        """Tracing that sends finished spans to ``exporter`` (batched unless told otherwise;
        a root span is sampled at ``sample_ratio``, a child follows its parent)."""
        provider = TracerProvider(
            resource=Resource.create({"service.name": service, "service.version": __version__}),
            sampler=ParentBasedTraceIdRatio(sample_ratio),
        )
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def span(
        self,
        name: str,
        *,
        parent: Sequence[tuple[str, bytes]] | Mapping[str, str] = (),
        kind: SpanKind = SpanKind.CONSUMER,
        attributes: Mapping[str, str | int] | None = None,
    ) -> AbstractContextManager[Headers]:
        """A span continuing the trace in ``parent`` (Kafka or HTTP headers), current for
        the ``with`` block; yields the headers that carry it onward (none when off: one
        shared context, nothing built per call)."""
        if self._tracer is None:
            return _NO_SPAN
        return self._span(self._tracer, name, parent, kind, attributes)

    @contextmanager
    def _span(
        self,
        tracer: Tracer,
        name: str,
        parent: Sequence[tuple[str, bytes]] | Mapping[str, str],
        kind: SpanKind,
        attributes: Mapping[str, str | int] | None,
    ) -> Iterator[Headers]:
        context = _PROPAGATOR.extract(parent, getter=_GETTER, context=Context())
        with tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes):
            yield self.current_headers()

    def current_headers(self) -> Headers:
        """The headers that carry the current span (none when off or outside a span)."""
        if self._tracer is None:
            return ()
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return tuple((name, value.encode("latin-1")) for name, value in carrier.items())

    def shutdown(self) -> None:
        """Flush and stop the exporter; may block up to the exporter's timeout."""
        if self._provider is not None:
            self._provider.shutdown()


def trace_context(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """The trace context among record headers (``traceparent``, ``tracestate``) as text:
    what a stored row keeps so that later work (a send) continues the trace."""
    return {name: value.decode("latin-1") for name, value in headers if name in _CONTEXT_HEADERS}


def configure_tracing(runtime: RuntimeSettings, *, service: str) -> Tracing:
    """The process's tracing from ``MILEPOST_TRACING_*``: off, spans printed to stdout, or
    OTLP over HTTP to an OpenTelemetry Collector's ``/v1/traces``."""
    if runtime.tracing_exporter == "none":
        return Tracing.off()
    exporter: SpanExporter
    if runtime.tracing_exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=runtime.tracing_endpoint)
    return Tracing.exporting_to(
        exporter, service=service, sample_ratio=runtime.tracing_sample_ratio
    )
