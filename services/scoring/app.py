"""Assemble the scoring service: its consumer, its API, and the standalone service."""

from __future__ import annotations

from fastapi import FastAPI

from services.scoring.accounts.insights import insights_router
from services.scoring.catalog.repository import metric_set
from services.scoring.catalog.service import REFERENCE_METRICS, load_catalog, publish
from services.scoring.endpoints import scoring_dependencies, scoring_router
from services.scoring.evaluation.evaluate import ScoringConfig
from services.scoring.processing.worker import PathLoader, ScoringMetrics, ScoringWorker
from services.scoring.settings import ScoringSettings
from services.serving import serve, service_resources
from shared.observability.http import create_http_app
from shared.published_secrets import warn_of_published_secrets
from shared.runtime import Resources
from shared.settings import RuntimeSettings
from shared.supervision import Worker
from shared.tenancy.service import find_workspace


def mount_scoring(
    app: FastAPI, settings: ScoringSettings, resources: Resources, *, load_paths: PathLoader
) -> ScoringWorker:
    """Add the scoring API to ``app``; returns the consumer to run beside it, which reads
    the growth paths (their tier ladders) with ``load_paths`` (the engine's catalog, given
    by whoever assembles the services: scoring does not import the engine)."""
    app.include_router(scoring_router(settings, resources))
    app.include_router(insights_router(dependencies=scoring_dependencies(settings, resources)))
    warn_of_published_secrets(settings)
    return ScoringWorker(
        bus=resources.bus,
        sessions=resources.sessions,
        clock=resources.clock,
        settings=settings,
        load_catalog=load_catalog,
        load_paths=load_paths,
        metrics=ScoringMetrics(resources.registry),
        config=ScoringConfig(risk_dwell_seconds=settings.risk_dwell_seconds),
    )


async def publish_reference_metrics(resources: Resources, workspace: str) -> bool:
    """Publish the reference metric definitions to ``workspace`` (embedded mode: the demo
    workspace, on first start) unless it has its own; whether it published."""
    async with resources.sessions() as session:
        found = await find_workspace(session, workspace)
        if found is None or await metric_set(session, found.id) is not None:
            return False
        await publish(
            session,
            found.id,
            REFERENCE_METRICS.name,
            REFERENCE_METRICS.read_text(),
            clock=resources.clock,
        )
        await session.commit()
    return True


async def run_scoring(runtime: RuntimeSettings, *, load_paths: PathLoader) -> None:
    """``milepost scoring``: consume events, publish score events, serve the scoring API,
    health and metrics. Migrates only SQLite; PostgreSQL is migrated by the deployment."""
    async with service_resources(runtime, service="milepost-scoring") as resources:
        app = create_http_app(
            "Milepost scoring",
            "Account health scores with their explanation, churn signals, score history, "
            "the portfolio and metric definitions.",
            resources,
            max_body_bytes=runtime.max_request_bytes,
        )
        worker = mount_scoring(app, ScoringSettings(), resources, load_paths=load_paths)
        await serve(
            app, host=runtime.host, port=runtime.port, background=[Worker("scoring", worker.run)]
        )
