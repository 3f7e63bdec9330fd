"""Migration 0015 on a database with an unpublished trigger: the engine's outbox row stays,
with sequence 0, and takes the shared outbox's longer record ids."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import create_engine
from tests.services.migrations.support import migrate, on_a_fresh_postgres

LONG_ID = "t" * 80


async def _carried(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0014")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO engine_outbox (record_id, partition, topic, key, value, "
                    "headers, created_at) VALUES ('t1', 3, 'milepost.triggers', :k, :v, '[]', "
                    "'2026-03-02 09:00:00+00:00')"
                ),
                {"k": b"ws/a/acme", "v": b"{}"},
            )
        await migrate(engine, "0015")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO engine_outbox (record_id, partition, sequence, topic, key, "
                    "value, headers, created_at) VALUES (:id, 3, 1, 'milepost.triggers', :k, "
                    ":v, '[]', '2026-03-02 09:00:00+00:00')"
                ),
                {"id": LONG_ID, "k": b"ws/a/acme", "v": b"{}"},
            )
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT record_id, sequence FROM engine_outbox ORDER BY sequence")
                )
            ).all()
        assert [tuple(row) for row in rows] == [("t1", 0), (LONG_ID, 1)]
    finally:
        await engine.dispose()


async def test_sqlite_keeps_the_unpublished_trigger(sqlite_url: str) -> None:
    await _carried(sqlite_url)


@pytest.mark.postgres
def test_postgres_keeps_the_unpublished_trigger(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, _carried)
