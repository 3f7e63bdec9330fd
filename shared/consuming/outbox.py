"""The outbox: outgoing records stored in the transaction that produced them, kept until
the bus acknowledges them. Each service has its own outbox table; these functions take its
model. Flushes, never commits.

An outbox model has the columns of :class:`~shared.consuming.models.OutboxColumns`: its
``sequence`` publishes each checkpoint's records again in the order they were added."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from shared.bus import OutgoingRecord
from shared.consuming.models import OutboxColumns
from shared.db.copying import copy_rows
from shared.db.statements import delete_by_ids, insert_ignoring_duplicates, table_of

OutboxEntry = tuple[str, int, OutgoingRecord]
"""A record id (the same on every replay), the owning input partition and the record."""

OutboxModel = type[DeclarativeBase]


async def add_to_outbox(
    session: AsyncSession, model: OutboxModel, entries: Sequence[OutboxEntry], *, now: datetime
) -> None:
    """Store ``entries`` until the bus acknowledges them; an id already stored is kept,
    unless the model's ids are unique (``unique_record_ids``: appended with ``COPY``)."""
    unique = issubclass(model, OutboxColumns) and model.unique_record_ids
    await (copy_rows if unique else insert_ignoring_duplicates)(
        session,
        model,
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
    session: AsyncSession, model: OutboxModel, partitions: Collection[int]
) -> list[tuple[str, OutgoingRecord]]:
    """Records left unacknowledged by a previous owner of ``partitions``, oldest first."""
    if not partitions:
        return []
    table = table_of(model)
    rows = await session.execute(
        select(table.c.record_id, table.c.topic, table.c.key, table.c.value, table.c.headers)
        .where(table.c.partition.in_(sorted(partitions)))
        .order_by(table.c.created_at, table.c.sequence)
    )
    return [
        (
            record_id,
            OutgoingRecord(
                topic, key, value, tuple((name, text.encode("latin-1")) for name, text in headers)
            ),
        )
        for record_id, topic, key, value, headers in rows
    ]


async def remove_from_outbox(
    session: AsyncSession, model: OutboxModel, record_ids: Sequence[str]
) -> None:
    """Delete the acknowledged ``record_ids`` (one array parameter on PostgreSQL: one
    prepared statement whatever their number)."""
    await delete_by_ids(session, model, "record_id", record_ids)
