"""The resources a process holds while it runs: bus, database engine, clock, metrics registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus import Bus
from shared.clock import Clock
from shared.db import create_session_factory


@dataclass(frozen=True, slots=True)
class Resources:
    bus: Bus
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    registry: CollectorRegistry

    async def database_ready(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True


@asynccontextmanager
async def open_resources(bus: Bus, engine: AsyncEngine, clock: Clock) -> AsyncIterator[Resources]:
    """Start the bus, yield the resources, and close both bus and engine on the way out."""
    await bus.start()
    try:
        yield Resources(bus, engine, create_session_factory(engine), clock, CollectorRegistry())
    finally:
        await bus.close()
        await engine.dispose()
