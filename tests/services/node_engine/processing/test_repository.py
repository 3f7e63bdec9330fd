"""The outbox keeps a record whole, headers included: a re-keyed copy republished after a
crash still names its source, so it is applied once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.processing import repository
from services.node_engine.processing.steps import SOURCE_HEADER
from shared.bus import OutgoingRecord

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


async def test_outbox_returns_records_with_their_headers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rekeyed = OutgoingRecord(
        "milepost.engine.rekeyed",
        b"w/a/acme",
        b"{}",
        (
            (SOURCE_HEADER, b"milepost.events:2:41"),
            ("traceparent", b"00-ab-cd-01"),
            ("raw", b"\xff"),
        ),
    )
    trigger = OutgoingRecord("milepost.triggers", b"w/a/acme", b"{}")
    # A partition no engine test owns: the PostgreSQL database is shared by the session.
    partition = 997
    async with sessions() as session:
        await repository.add_to_outbox(
            session, [("rekey:e1", partition, rekeyed), ("t1", partition, trigger)], now=NOW
        )
        await session.commit()
    try:
        async with sessions() as session:
            left = dict(await repository.outbox_of(session, [partition]))
        assert left == {"rekey:e1": rekeyed, "t1": trigger}
    finally:
        async with sessions() as session:
            await repository.remove_from_outbox(session, ["rekey:e1", "t1"])
            await session.commit()
