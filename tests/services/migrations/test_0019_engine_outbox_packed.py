"""Migration 0019: the engine's outbox rows become packs of one record, read back whole by
the outbox, and come back as rows of their own on the way down."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.node_engine.processing.models import OutboxRow
from shared.bus import OutgoingRecord
from shared.consuming.outbox import outbox_of
from shared.db import create_engine
from tests.services.migrations.support import migrate, on_a_fresh_postgres

STORE = text(
    "INSERT INTO engine_outbox (record_id, partition, sequence, topic, key, value, headers, "
    "created_at) VALUES (:record_id, 3, :sequence, 'milepost.triggers', :key, :value, "
    ":headers, '2026-03-02 09:00:00+00:00')"
)
ROWS = [
    {
        "record_id": "t1",
        "sequence": 0,
        "key": b"w/a/acme",
        "value": b'{"n": 1}',
        "headers": '[["traceparent", "00-ab-cd-01"], ["raw", "\\u00ff"]]',
    },
    {"record_id": "t2", "sequence": 1, "key": b"w/a/acme", "value": b'{"n": 2}', "headers": "[]"},
]
RECORDS = [
    (
        "t1",
        OutgoingRecord(
            "milepost.triggers",
            b"w/a/acme",
            b'{"n": 1}',
            (("traceparent", b"00-ab-cd-01"), ("raw", b"\xff")),
        ),
    ),
    ("t2", OutgoingRecord("milepost.triggers", b"w/a/acme", b'{"n": 2}')),
]


async def _rows(engine: AsyncEngine) -> list[tuple[object, ...]]:
    """The rows, their headers as the JSON they hold (not its spelling)."""
    async with engine.begin() as connection:
        found = await connection.execute(
            text("SELECT record_id, sequence, key, value, CAST(headers AS TEXT) FROM engine_outbox")
        )
        return sorted((*row[:4], json.loads(row[4])) for row in found)


async def _packed_and_back(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0018")
        async with engine.begin() as connection:
            await connection.execute(STORE, ROWS)
        before = await _rows(engine)
        await migrate(engine, "0019")
        async with AsyncSession(engine) as session:
            left = await outbox_of(session, OutboxRow, [3])
        assert left.records == RECORDS
        assert sorted(left.row_ids) == ["t1", "t2"]
        await migrate(engine, "0018", down=True)
        assert await _rows(engine) == before
    finally:
        await engine.dispose()


async def test_sqlite_packs_the_engine_outbox(sqlite_url: str) -> None:
    await _packed_and_back(sqlite_url)


@pytest.mark.postgres
def test_postgres_packs_the_engine_outbox(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, _packed_and_back)
