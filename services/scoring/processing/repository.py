"""Queries on the scoring outbox. Repositories flush, never commit.

Applied offsets are kept with the engine's (``engine_applied_offsets``, keyed by consumer
group): :func:`services.node_engine.processing.repository.advance_offsets` fences them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.processing.models import ScoringOutboxRow
from shared.bus import OutgoingRecord
from shared.db.statements import insert_ignoring_duplicates


async def add_to_outbox(
    session: AsyncSession, entries: Sequence[tuple[str, int, OutgoingRecord]], *, now: datetime
) -> None:
    """Store ``(record id, owning partition, record)`` until the bus acknowledges it; a
    previous owner's records are published again in this order."""
    await insert_ignoring_duplicates(
        session,
        ScoringOutboxRow,
        [
            {
                "record_id": rid,
                "partition": p,
                "sequence": sequence,
                "topic": r.topic,
                "key": r.key,
                "value": r.value,
                "headers": [[name, value.decode("latin-1")] for name, value in r.headers],
                "created_at": now,
            }
            for sequence, (rid, p, r) in enumerate(entries)
        ],
    )


async def outbox_of(
    session: AsyncSession, partitions: Collection[int]
) -> list[tuple[str, OutgoingRecord]]:
    """Records left unacknowledged by a previous owner of ``partitions``, oldest first."""
    if not partitions:
        return []
    rows = await session.scalars(
        select(ScoringOutboxRow)
        .where(ScoringOutboxRow.partition.in_(sorted(partitions)))
        .order_by(ScoringOutboxRow.created_at, ScoringOutboxRow.sequence)
    )
    return [
        (
            r.record_id,
            OutgoingRecord(
                r.topic,
                r.key,
                r.value,
                tuple((name, value.encode("latin-1")) for name, value in r.headers),
            ),
        )
        for r in rows
    ]


async def remove_from_outbox(session: AsyncSession, record_ids: Sequence[str]) -> None:
    if record_ids:
        await session.execute(
            delete(ScoringOutboxRow).where(ScoringOutboxRow.record_id.in_(record_ids))
        )
