"""Migration 0023: the applied offsets keep each partition's origin marks in ``origins``
(none for the rows from before); the way down drops the column and keeps the offsets."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import create_engine
from tests.services.migrations.support import migrate, on_a_fresh_postgres


async def _marks_kept(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0022")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO engine_applied_offsets (consumer_group, topic, partition, "
                    "next_offset) VALUES ('milepost-engine', 'milepost.accounts.events', 3, 41)"
                )
            )
        await migrate(engine, "0023")
        async with engine.begin() as connection:
            before = (
                await connection.execute(text("SELECT origins FROM engine_applied_offsets"))
            ).one()
            await connection.execute(
                text(
                    "UPDATE engine_applied_offsets SET next_offset = 42, "
                    "origins = '{\"milepost.events:1\": [7, 0]}'"
                )
            )
        assert before == (None,)
        await migrate(engine, "0022", down=True)
        async with engine.begin() as connection:
            columns = (
                await connection.execute(text("SELECT * FROM engine_applied_offsets"))
            ).keys()
            offset = await connection.scalar(text("SELECT next_offset FROM engine_applied_offsets"))
        assert "origins" not in columns
        assert offset == 42
    finally:
        await engine.dispose()


async def test_sqlite_keeps_origin_marks_with_the_applied_offsets(sqlite_url: str) -> None:
    await _marks_kept(sqlite_url)


@pytest.mark.postgres
def test_postgres_keeps_origin_marks_with_the_applied_offsets(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, _marks_kept)
