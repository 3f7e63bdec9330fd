"""Migrations build the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect

from services.migrations import alembic_config, check_models_match, upgrade_to_head
from shared.db import create_engine
from tests.services.migrations.support import on_a_fresh_postgres


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
        await upgrade_to_head(engine)  # idempotent
        await check_models_match(engine)  # alembic check: nothing left to autogenerate
        async with engine.begin() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            assert {"workspaces", "write_keys", "ingest_published_messages"} <= tables
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            assert tables <= {"alembic_version"}
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def test_sqlite_upgrade_check_downgrade(sqlite_url: str) -> None:
    await _round_trip(sqlite_url)


@pytest.mark.postgres
def test_postgres_upgrade_check_downgrade(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, _round_trip)
