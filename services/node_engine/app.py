"""Assemble the node engine: its consumer, its admin API, and the standalone service (which
runs the attribution stage that feeds it, too)."""

from __future__ import annotations

from fastapi import FastAPI

from services.node_engine.accounts.endpoints import accounts_router
from services.node_engine.accounts.insights import insights_router
from services.node_engine.paths.endpoints import admin_dependencies, paths_router
from services.node_engine.paths.service import load_catalog
from services.node_engine.processing.worker import EngineMetrics, EngineWorker
from services.node_engine.settings import EngineSettings
from services.serving import serve, service_resources
from shared.attribution.stage import attribution_stage
from shared.observability.http import create_http_app
from shared.published_secrets import warn_of_published_secrets
from shared.runtime import Resources
from shared.settings import RuntimeSettings
from shared.supervision import Worker


def mount_engine(app: FastAPI, settings: EngineSettings, resources: Resources) -> EngineWorker:
    """Add the engine's admin API to ``app``; returns the consumer to run beside it."""
    dependencies = admin_dependencies(settings, resources)
    app.include_router(paths_router(settings, resources))
    warn_of_published_secrets(settings)
    app.include_router(accounts_router(resources.clock, dependencies=dependencies))
    app.include_router(insights_router(dependencies=dependencies))
    return EngineWorker(
        bus=resources.bus,
        sessions=resources.sessions,
        clock=resources.clock,
        settings=settings,
        load_catalog=load_catalog,
        metrics=EngineMetrics(resources.registry),
        tracing=resources.tracing,
    )


async def run_engine(runtime: RuntimeSettings) -> None:
    """``milepost engine``: attribute events to their accounts (the attribution stage), consume
    them and the scores, emit triggers, serve the admin API, health and metrics. Migrates
    only SQLite; PostgreSQL is migrated by the deployment."""
    async with service_resources(runtime, service="milepost-engine") as resources:
        app = create_http_app(
            "Milepost node engine",
            "Growth paths, account states and timelines, funnels and manual moves.",
            resources,
            max_body_bytes=runtime.max_request_bytes,
        )
        worker = mount_engine(app, EngineSettings(), resources)
        stage = attribution_stage(resources)
        background = [Worker("attribution", stage.run), Worker("engine", worker.run)]
        await serve(app, host=runtime.host, port=runtime.port, background=background)
