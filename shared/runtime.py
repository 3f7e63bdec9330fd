"""The resources a process holds while it runs: bus, database engine, clock, metrics registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus import Bus
from shared.clock import Clock
from shared.db import create_session_factory
from shared.observability.tracing import Tracing


@dataclass(frozen=True, slots=True)
class Resources:
    bus: Bus
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    registry: CollectorRegistry
    tracing: Tracing = field(default_factory=Tracing.off)

    async def database_ready(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True


@asynccontextmanager
async def open_resources(
    bus: Bus, engine: AsyncEngine, clock: Clock, *, tracing: Tracing | None = None
) -> AsyncIterator[Resources]:
    """Start the bus, yield the resources, and close the bus, the engine and the tracing
    (flushing its spans) on the way out."""
    tracing = tracing or Tracing.off()
    await bus.start()
    try:
        yield Resources(
            bus, engine, create_session_factory(engine), clock, CollectorRegistry(), tracing
        )
    finally:
        await bus.close()
        await engine.dispose()
        tracing.shutdown()
