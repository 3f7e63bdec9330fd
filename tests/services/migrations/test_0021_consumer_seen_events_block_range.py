"""Migration 0021: the seen event ids are pruned through an index on ``seen_at`` (a
block-range index on PostgreSQL) instead of a B-tree on ``(consumer_group, partition,
seen_at)``; the way down restores the B-tree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from shared.db import create_engine
from tests.services.migrations.support import indexes, migrate, on_a_fresh_postgres

START = datetime(2026, 11, 1, tzinfo=UTC)
ROWS = 60_000


async def _moved(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0021")
        assert await indexes(engine, "consumer_seen_events") == {
            "ix_consumer_seen_events_seen_at": ["seen_at"]
        }
        await migrate(engine, "0020", down=True)
        assert await indexes(engine, "consumer_seen_events") == {
            "ix_consumer_seen_events_expiry": ["consumer_group", "partition", "seen_at"]
        }
    finally:
        await engine.dispose()


async def test_sqlite_prunes_through_an_index_on_the_time_seen(sqlite_url: str) -> None:
    await _moved(sqlite_url)


async def _pruned_by_block_range(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0021")
        async with engine.begin() as connection:
            definition = await connection.scalar(
                text(
                    "SELECT indexdef FROM pg_indexes "
                    "WHERE indexname = 'ix_consumer_seen_events_seen_at'"
                )
            )
            assert "USING brin (seen_at)" in str(definition)
            await connection.execute(
                text(
                    "INSERT INTO consumer_seen_events "
                    "(consumer_group, event_id, stage, partition, seen_at) "
                    "SELECT 'milepost-engine', md5(n::text), 'milepost.accounts.events', "
                    "n % 12, CAST(:start AS timestamptz) + n * interval '10 seconds' "
                    "FROM generate_series(1, :rows) AS n"
                ),
                {"start": START, "rows": ROWS},
            )
            await connection.execute(text("ANALYZE consumer_seen_events"))
            plan = await connection.scalar(
                text(
                    "EXPLAIN (FORMAT JSON) DELETE FROM consumer_seen_events "
                    "WHERE consumer_group = 'milepost-engine' AND partition IN (0, 1, 2) "
                    "AND seen_at < :cutoff"
                ),
                {"cutoff": START + timedelta(seconds=10 * ROWS // 20)},
            )
        assert "ix_consumer_seen_events_seen_at" in str(plan), plan
        assert "Seq Scan" not in str(plan), plan
        await migrate(engine, "0020", down=True)
        assert "ix_consumer_seen_events_expiry" in await indexes(engine, "consumer_seen_events")
    finally:
        await engine.dispose()


@pytest.mark.postgres
def test_postgres_prunes_the_oldest_ids_through_a_block_range_index(
    postgres_server_url: str,
) -> None:
    on_a_fresh_postgres(postgres_server_url, _pruned_by_block_range)
