"""Migration 0014 on a database with data: the attribution stage starts on milepost.events
where the engine left off, with the engine's memberships; the re-keyed topic's offsets go."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import create_engine
from tests.services.migrations.support import migrate, on_a_fresh_postgres

ROWS = [
    ("milepost-engine", "milepost.events", 3, 57),
    ("milepost-engine", "milepost.engine.rekeyed", 3, 12),
    ("milepost-engine", "milepost.engine.rekeyed<-milepost.events", 3, 40),
    ("milepost-scoring", "milepost.events", 3, 55),
]


async def _carried(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0013")
        async with engine.begin() as connection:
            for group, topic, partition, offset in ROWS:
                await connection.execute(
                    text("INSERT INTO engine_applied_offsets VALUES (:g, :t, :p, :o)"),
                    {"g": group, "t": topic, "p": partition, "o": offset},
                )
            await connection.execute(
                text(
                    "INSERT INTO engine_memberships VALUES "
                    "('ws', 'ada', 'acme', '[\"admin\"]', '2026-03-02 09:00:00+00:00')"
                )
            )
        await migrate(engine, "0014")
        async with engine.connect() as connection:
            offsets = (
                await connection.execute(
                    text(
                        "SELECT consumer_group, topic, partition, next_offset "
                        "FROM engine_applied_offsets ORDER BY consumer_group, topic"
                    )
                )
            ).all()
            members = (
                await connection.execute(
                    text("SELECT workspace_id, user_id, account_id FROM attribution_memberships")
                )
            ).all()
        assert [tuple(row) for row in offsets] == [
            ("milepost-attribution", "milepost.events", 3, 57),
            ("milepost-engine", "milepost.events", 3, 57),
            ("milepost-scoring", "milepost.events", 3, 55),
        ]
        assert [tuple(row) for row in members] == [("ws", "ada", "acme")]
    finally:
        await engine.dispose()


async def test_sqlite_carries_the_engines_place_and_memberships(sqlite_url: str) -> None:
    await _carried(sqlite_url)


@pytest.mark.postgres
def test_postgres_carries_the_engines_place_and_memberships(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, _carried)
