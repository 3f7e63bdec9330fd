"""Migration 0018: the history's ``transition_id`` loses its unique key, and gets it back
on the way down."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine
from tests.services.migrations.support import migrate, on_a_fresh_postgres

APPEND = text(
    "INSERT INTO engine_transitions (transition_id, workspace_id, account_id, path_id, "
    "path_version, kind, stage, node, reason, cause_id, target_roles, payload, occurred_at) "
    "VALUES ('t1', 'w', 'a', 'p', 1, 'node_entered', 's', NULL, '', 'e', '[]', '{}', "
    "'2026-03-02 09:00:00+00:00')"
)


async def _append_twice(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(APPEND)
        await connection.execute(APPEND)


async def _unkeyed(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0017")
        with pytest.raises(IntegrityError):
            await _append_twice(engine)
        await migrate(engine, "0018")
        await _append_twice(engine)
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM engine_transitions"))
        await migrate(engine, "0017", down=True)
        with pytest.raises(IntegrityError):
            await _append_twice(engine)
    finally:
        await engine.dispose()


async def test_sqlite_drops_the_transition_id_key(sqlite_url: str) -> None:
    await _unkeyed(sqlite_url)


@pytest.mark.postgres
def test_postgres_drops_the_transition_id_key(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, _unkeyed)
