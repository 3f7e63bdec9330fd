"""HTTP plumbing every service mounts: request metrics and spans, /healthz, /readyz,
/metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from opentelemetry import trace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import __version__
from shared.observability.tracing import Tracing
from shared.runtime import Resources

ReadinessCheck = Callable[[], Awaitable[bool]]


def create_http_app(title: str, description: str, resources: Resources) -> FastAPI:
    """An app with OpenAPI at ``/docs``, request metrics and health endpoints wired to
    the process's bus and database."""
    app = FastAPI(title=title, description=description, version=__version__, docs_url="/docs")
    instrument_http(app, resources.registry, resources.tracing)
    checks: dict[str, ReadinessCheck] = {
        "bus": resources.bus.is_ready,
        "database": resources.database_ready,
    }
    app.state.readiness_checks = checks
    app.include_router(health_router(resources.registry, checks))
    return app


def add_readiness_check(app: FastAPI, name: str, check: ReadinessCheck) -> None:
    """Make ``/readyz`` of an app from :func:`create_http_app` depend on ``check`` too (a
    background worker's), reported as ``name``."""
    checks: dict[str, ReadinessCheck] = app.state.readiness_checks
    checks[name] = check


def instrument_http(app: FastAPI, registry: CollectorRegistry, tracing: Tracing) -> None:
    """Count requests and time them per route template (never per raw path); with tracing
    on, one server span per request, continuing the caller's ``traceparent``."""
    requests = Counter(
        "milepost_http_requests_total",
        "HTTP requests by route, method and status.",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "milepost_http_request_duration_seconds",
        "HTTP request latency by route.",
        ["route", "method"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )

    app.add_middleware(_RequestMetrics, requests=requests, latency=latency, tracing=tracing)


class _RequestMetrics:
    """Plain ASGI middleware (no response buffering, no extra task per request), so the
    request's span is current in the endpoint."""

    def __init__(
        self, app: ASGIApp, *, requests: Counter, latency: Histogram, tracing: Tracing
    ) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        caller = _trace_context_of(scope) if self.tracing.enabled else ()
        with self.tracing.span(f"HTTP {method}", parent=caller, kind=trace.SpanKind.SERVER):
            try:
                await self.app(scope, receive, send_and_note_status)
            finally:
                # The router records the matched route in the shared scope.
                route = getattr(scope.get("route"), "path", "unmatched")
                self.latency.labels(route, method).observe(time.perf_counter() - started)
                self.requests.labels(route, method, str(status)).inc()
                if self.tracing.enabled:
                    span = trace.get_current_span()
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)


def _trace_context_of(scope: Scope) -> tuple[tuple[str, bytes], ...]:
    return tuple(
        (name.decode("latin-1"), value)
        for name, value in scope["headers"]
        if name in (b"traceparent", b"tracestate")
    )


def health_router(registry: CollectorRegistry, checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    """``/healthz`` (the process answers), ``/readyz`` (every check of ``checks``, as it is
    when asked, answers true: dependencies, background workers), ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: every dependency (bus, database) answers and every background "
        "worker runs",
        responses={503: {"description": "A dependency or worker is not ready (named false)"}},
    )
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
