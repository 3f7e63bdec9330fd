"""What a standalone service needs to run: its resources, and uvicorn inside the running
event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

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

logger = logging.getLogger(__name__)


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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server with the stop signals left to :func:`serve`: uvicorn's own
    handlers raise a signal again once it has stopped, which would cancel the background
    workers' graceful leave (SIGINT) or end the process in the middle of it (SIGTERM)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Stopping:
    """What a stop signal does: the first asks ``server`` to stop (requests in flight
    finish, then the workers leave); another forces it: uvicorn stops waiting for open
    connections, and once the workers are :attr:`leaving`, ``task`` (waiting for them) is
    cancelled, which cuts their leave short."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[object]) -> None:
        self.server = server
        self.task = task
        self.leaving = False
        self.cancelled = 0
        """Cancellations of ``task`` asked for here."""

    def __call__(self) -> None:
        if not self.server.should_exit:
            logger.info("stopping: requests and workers finish first; signal again to force")
            self.server.should_exit = True
            return
        logger.warning("stopping now: another stop signal")
        self.server.force_exit = True
        if self.leaving:
            self.cancelled += 1
            self.task.cancel()


@contextmanager
def _stop_signals(server: uvicorn.Server) -> Iterator[_Stopping]:
    """SIGINT and SIGTERM handled by a :class:`_Stopping` while inside; the current task's
    cancellation it asked for ends the block quietly. Only the main thread can handle
    signals; elsewhere the signals are left as they are."""
    task = asyncio.current_task()
    assert task is not None
    stopping = _Stopping(server, task)
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return
    loop = asyncio.get_running_loop()
    for number in STOP_SIGNALS:
        loop.add_signal_handler(number, stopping)
    try:
        yield stopping
    except asyncio.CancelledError:
        if not stopping.cancelled or task.cancelling() > stopping.cancelled:
            raise  # someone else's cancellation
        while task.uncancel():
            pass
    finally:
        for number in STOP_SIGNALS:
            loop.remove_signal_handler(number)


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

    In-flight requests finish before it returns, and so do the workers' leaves (a stream
    finishes its checkpoint and commits its positions); a second signal cuts both short.
    What start-up allocated is frozen out of the collector's reach and young collections
    made rarer (:func:`tuned_gc`); event-loop stalls and collection pauses are recorded
    into the app's metrics.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, server_header=False
    )
    server = _Server(config)
    supervisor = Supervisor(background, backoff)
    for worker in background:
        add_readiness_check(app, f"worker:{worker.name}", supervisor.readiness(worker.name))
    registry: CollectorRegistry = app.state.registry
    with tuned_gc(), _stop_signals(server) as stopping:
        watching = asyncio.create_task(watch_stalls(registry))
        supervising = asyncio.create_task(supervisor.run())
        try:
            await server.serve()
        finally:
            stopping.leaving = True
            supervising.cancel()
            watching.cancel()
            await asyncio.gather(supervising, watching, return_exceptions=True)
