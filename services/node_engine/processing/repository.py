"""Queries on applied offsets and the outbox. Repositories flush, never commit."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.node_engine.processing.models import AppliedOffsetRow, OutboxRow
from shared.bus import OutgoingRecord, TopicPartition
from shared.db.statements import insert_ignoring_duplicates


class OffsetConflict(Exception):
    """Another group member moved a partition's applied offset: this member lost it."""


async def applied_offsets(
    session: AsyncSession, group: str, partitions: Collection[TopicPartition]
) -> dict[TopicPartition, int]:
    """The next offset to apply for each of ``partitions`` that has one, and the marks of
    pseudo topics (``<topic><-<source>``) on those partitions."""
    if not partitions:
        return {}
    rows = await session.execute(
        select(AppliedOffsetRow).where(
            AppliedOffsetRow.consumer_group == group,
            AppliedOffsetRow.partition.in_({tp.partition for tp in partitions}),
        )
    )
    owned = set(partitions)
    found: dict[TopicPartition, int] = {}
    for row in rows.scalars():
        tp = TopicPartition(row.topic, row.partition)
        base = TopicPartition(row.topic.partition("<-")[0], row.partition)
        if tp in owned or base in owned:
            found[tp] = row.next_offset
    return found


_OFFSETS = cast(Table, AppliedOffsetRow.__table__)


async def advance_offsets(
    session: AsyncSession,
    group: str,
    moves: Mapping[TopicPartition, tuple[int | None, int]],
) -> None:
    """Move each partition's applied offset from ``old`` to ``new``, fenced: when another
    member moved it first (or recorded it first, for an ``old`` of ``None``), raise
    :class:`OffsetConflict` or ``IntegrityError`` (the caller rolls back). Core
    statements: one insert for the new partitions, one update per moved one."""
    first = [
        {"consumer_group": group, "topic": tp.topic, "partition": tp.partition, "next_offset": new}
        for tp, (old, new) in moves.items()
        if old is None
    ]
    if first:
        await session.execute(insert(_OFFSETS), first)
    for tp, (old, new) in moves.items():
        if old is None:
            continue
        result = await session.execute(
            update(_OFFSETS)
            .where(
                _OFFSETS.c.consumer_group == group,
                _OFFSETS.c.topic == tp.topic,
                _OFFSETS.c.partition == tp.partition,
                _OFFSETS.c.next_offset == old,
            )
            .values(next_offset=new)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise OffsetConflict(f"{tp.topic}[{tp.partition}] moved past {old} elsewhere")


async def add_to_outbox(
    session: AsyncSession, entries: Sequence[tuple[str, int, OutgoingRecord]], *, now: datetime
) -> None:
    """Store ``(record id, owning partition, record)`` until the bus acknowledges it."""
    await insert_ignoring_duplicates(
        session,
        OutboxRow,
        [
            {
                "record_id": rid,
                "partition": p,
                "topic": r.topic,
                "key": r.key,
                "value": r.value,
                "headers": [[name, value.decode("latin-1")] for name, value in r.headers],
                "created_at": now,
            }
            for rid, p, r in entries
        ],
    )


async def outbox_of(
    session: AsyncSession, partitions: Collection[int]
) -> list[tuple[str, OutgoingRecord]]:
    """Records left unacknowledged by a previous owner of ``partitions``, oldest first."""
    if not partitions:
        return []
    rows = await session.execute(
        select(OutboxRow)
        .where(OutboxRow.partition.in_(sorted(partitions)))
        .order_by(OutboxRow.created_at)
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
        for r in rows.scalars()
    ]


async def remove_from_outbox(session: AsyncSession, record_ids: Sequence[str]) -> None:
    if record_ids:
        await session.execute(delete(OutboxRow).where(OutboxRow.record_id.in_(record_ids)))
