"""Assemble the ingest service: its routers, error answers and maintenance task."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from services.console.endpoints import mount_console
from services.ingest.crm.endpoints import crm_router
from services.ingest.crm.schemas import CloudEvent
from services.ingest.deduplication.repository import PublishedMessageLedger
from services.ingest.errors import RequestRejected
from services.ingest.publishing import EventPublisher, IngestMetrics
from services.ingest.schemas import ErrorResponse, ProblemOut
from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from services.ingest.tracking.endpoints import tracking_router
from services.ingest.tracking.schemas import CALL_MODELS, BatchRequest
from services.serving import serve, service_resources
from shared.errors import BusUnavailable
from shared.observability.http import create_http_app
from shared.openapi import register_body_models
from shared.runtime import Resources
from shared.settings import RuntimeSettings
from shared.supervision import Worker
from shared.tenancy.service import WriteKeyAuthenticator

logger = logging.getLogger(__name__)

LEDGER_PRUNE_INTERVAL_SECONDS = 600


def mount_ingest(app: FastAPI, settings: IngestSettings, resources: Resources) -> IngestService:
    """Add ingest's routes and error answers to ``app``; returns the service."""
    metrics = IngestMetrics(resources.registry)
    publisher = EventPublisher(
        resources.bus,
        PublishedMessageLedger(resources.engine),
        clock=resources.clock,
        metrics=metrics,
        tracing=resources.tracing,
    )
    service = IngestService(
        settings=settings,
        publisher=publisher,
        authenticator=WriteKeyAuthenticator(
            resources.sessions,
            clock=resources.clock,
            cache_ttl_seconds=settings.write_key_cache_ttl.total_seconds(),
        ),
        metrics=metrics,
        clock=resources.clock,
    )
    app.include_router(tracking_router(service))
    app.include_router(crm_router(service))
    register_body_models(app, [*CALL_MODELS.values(), BatchRequest, CloudEvent])

    @app.exception_handler(RequestRejected)
    async def _rejected(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestRejected)
        body = ErrorResponse.of([ProblemOut.from_problem(p) for p in exc.problems])
        return JSONResponse(body.model_dump(mode="json"), status_code=exc.status)

    @app.exception_handler(BusUnavailable)
    async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
        metrics.bus_unavailable.inc()
        logger.warning("bus unavailable, answering 503", extra={"error": str(exc)})
        body = ErrorResponse.of(
            [
                ProblemOut(
                    field="bus",
                    code="unavailable",
                    message="events were not acknowledged by the bus; retry later",
                )
            ]
        )
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=503,
            headers={"Retry-After": str(settings.retry_after_seconds)},
        )

    return service


async def run_ingest(runtime: RuntimeSettings) -> None:
    """``milepost ingest``: serve the ingest API until stopped. Migrates only SQLite; a
    PostgreSQL schema is migrated by the deployment (``milepost db upgrade``)."""
    async with service_resources(runtime, service="milepost-ingest") as resources:
        app = create_http_app(
            "Milepost ingest",
            "Segment-compatible tracking API and CRM CloudEvents, published to Kafka; the "
            "operator console at `/`.",
            resources,
            max_body_bytes=runtime.max_request_bytes,
        )
        service = mount_ingest(app, IngestSettings(), resources)
        mount_console(app, resources.sessions)
        await serve(app, host=runtime.host, port=runtime.port, background=[ledger_pruning(service)])


def ledger_pruning(service: IngestService) -> Worker:
    """The background worker of :func:`prune_ledger_forever`."""
    return Worker("ingest-ledger-pruning", partial(prune_ledger_forever, service))


async def prune_ledger_forever(service: IngestService) -> None:
    """Forget published message ids past the deduplication window, every few minutes."""
    while True:
        try:
            removed = await service.forget_expired()
        except SQLAlchemyError:
            logger.warning("dedup ledger pruning failed; will retry", exc_info=True)
        else:
            if removed:
                logger.info("dedup ledger pruned", extra={"removed": removed})
        await asyncio.sleep(LEDGER_PRUNE_INTERVAL_SECONDS)
