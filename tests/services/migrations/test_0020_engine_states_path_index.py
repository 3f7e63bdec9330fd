"""Migration 0020: the engine's states trade the funnel index for one on a path's accounts
and keep a fifth of each page free on PostgreSQL; the way down restores both."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine
from tests.services.migrations.support import indexes, migrate, on_a_fresh_postgres


async def _fill_factor(engine: AsyncEngine) -> object:
    async with engine.begin() as connection:
        return await connection.scalar(
            text("SELECT reloptions FROM pg_class WHERE relname = 'engine_account_states'")
        )


async def _moved(url: str, *, postgres: bool) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0020")
        assert await indexes(engine, "engine_account_states") == {
            "ix_engine_account_states_path": ["workspace_id", "path_id", "account_id"]
        }
        if postgres:
            assert await _fill_factor(engine) == ["fillfactor=80"]
        await migrate(engine, "0019", down=True)
        assert await indexes(engine, "engine_account_states") == {
            "ix_engine_account_states_funnel": ["workspace_id", "path_id", "stage", "node"]
        }
        if postgres:
            assert await _fill_factor(engine) is None
    finally:
        await engine.dispose()


async def test_sqlite_indexes_a_paths_accounts(sqlite_url: str) -> None:
    await _moved(sqlite_url, postgres=False)


@pytest.mark.postgres
def test_postgres_indexes_a_paths_accounts_and_keeps_room_for_updates(
    postgres_server_url: str,
) -> None:
    on_a_fresh_postgres(postgres_server_url, lambda url: _moved(url, postgres=True))
