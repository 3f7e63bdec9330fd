"""What a standalone service needs to run: its resources, and uvicorn inside the running
event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.migrations import upgrade_to_head
from shared.bus.factory import create_bus
from shared.clock import SystemClock
from shared.db import create_engine
from shared.observability.http import add_readiness_check
from shared.observability.stalls import tuned_gc, watch_stalls
from shared.observability.tracing import configure_tracing
from shared.runtime import Resources, open_resources
from shared.settings import RuntimeSettings
from shared.supervision import Backoff, Supervisor, Worker


@asynccontextmanager
async def service_resources(
    runtime: RuntimeSettings, *, service: str = "milepost"
) -> AsyncIterator[Resources]:
    """The bus, database, clock and tracing of one standalone service (``milepost ingest``,
    ``milepost engine``...), its spans named ``service``. An embedded SQLite schema is
    migrated here; a PostgreSQL schema is migrated by the deployment (``milepost db upgrade``).
    """
    engine = create_engine(runtime.resolved_database_url())
    tracing = configure_tracing(runtime, service=service)
    async with open_resources(create_bus(runtime), engine, SystemClock(), tracing=tracing) as (
        resources
    ):
        if engine.dialect.name == "sqlite":
            runtime.private_data_dir()
            await upgrade_to_head(engine)
        yield resources


async def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    background: Sequence[Worker] = (),
    backoff: Backoff | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, with the ``background`` workers supervised beside it (a
    failed one is logged, named not ready in ``/readyz`` as ``worker:NAME``, and restarted
    after ``backoff``) and cancelled on the way out.

    In-flight requests finish before it returns. What start-up allocated is frozen out of
    the collector's reach and young collections made rarer (:func:`tuned_gc`); event-loop
    stalls and collection pauses are recorded into the app's metrics.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, server_header=False
    )
    supervisor = Supervisor(background, backoff)
    for worker in background:
        add_readiness_check(app, f"worker:{worker.name}", supervisor.readiness(worker.name))
    registry: CollectorRegistry = app.state.registry
    with tuned_gc():
        watching = asyncio.create_task(watch_stalls(registry))
        supervising = asyncio.create_task(supervisor.run())
        try:
            await uvicorn.Server(config).serve()
        finally:
            supervising.cancel()
            watching.cancel()
            await asyncio.gather(supervising, watching, return_exceptions=True)
