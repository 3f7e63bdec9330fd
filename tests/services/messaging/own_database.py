"""Fixtures: a database of its own per test (SQLite, or a new PostgreSQL database): the dispatcher
claims every due delivery, so tests must not share one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.migrations import upgrade_to_head
from shared.db import create_engine, create_session_factory
from tests.conftest import fresh_postgres_database


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'messaging.db'}"
        asyncio.run(_migrate(url))
        yield url
        return
    yield from _own_postgres(request.getfixturevalue("postgres_server_url"))


@pytest.fixture
def own_postgres_url(postgres_server_url: str) -> Iterator[str]:
    """PostgreSQL only: for what SQLite does not do (several dispatchers at once)."""
    yield from _own_postgres(postgres_server_url)


def _own_postgres(server: str) -> Iterator[str]:
    for url in fresh_postgres_database(server):
        asyncio.run(_migrate(url))
        yield url


@pytest.fixture
async def own_sessions(own_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(own_database_url)
    yield create_session_factory(engine)
    await engine.dispose()
