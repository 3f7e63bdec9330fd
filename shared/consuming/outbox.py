"""The outbox: outgoing records stored in the transaction that produced them, kept until
the bus acknowledges them. Each service has its own outbox table; these functions take its
model. Flushes, never commits.

An outbox model has the columns of :class:`~shared.consuming.models.OutboxColumns` (a row
per record) or :class:`~shared.consuming.models.PackedOutboxColumns` (a row per checkpoint
and input partition). A packed row holds its records as one MessagePack value, which
PostgreSQL stores compressed out of line: per record, about a fifth of the database's CPU
of a row of its own with its two index entries, written and deleted (1.5 against 7.8 µs
measured on this project's machine). Rows are published again in their checkpoint's order
(``sequence``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from shared.bus import OutgoingRecord
from shared.consuming.models import PackedOutboxColumns
from shared.db.copying import copy_rows
from shared.db.statements import delete_by_ids, insert_ignoring_duplicates, table_of
from shared.slicing import Slicer

OutboxEntry = tuple[str, int, OutgoingRecord]
"""A record id (the same on every replay), the owning input partition and the record."""

OutboxModel = type[DeclarativeBase]

_Packed = tuple[str, str, bytes, bytes, tuple[tuple[str, bytes], ...]]
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(list[_Packed]).decode


@dataclass(frozen=True, slots=True)
class Left:
    """What a previous owner left in the outbox: its rows' ids (to delete once published)
    and their records, oldest first."""

    row_ids: list[str]
    records: list[tuple[str, OutgoingRecord]]
    """Each record with its id."""


async def add_to_outbox(
    session: AsyncSession, model: OutboxModel, entries: Sequence[OutboxEntry], *, now: datetime
) -> list[str]:
    """Store ``entries`` until the bus acknowledges them; the ids of the rows stored, for
    :func:`remove_from_outbox`. In a packed outbox an id already stored fails the
    transaction; in the other, the row already stored is kept."""
    if issubclass(model, PackedOutboxColumns):
        packs = await _packs(entries, now)
        await copy_rows(session, model, PACK_COLUMNS, packs)
        return [pack[0] for pack in packs]
    await insert_ignoring_duplicates(
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
    return [rid for rid, _, _ in entries]


PACK_COLUMNS = ("record_id", "partition", "sequence", "records", "created_at")


async def _packs(entries: Sequence[OutboxEntry], now: datetime) -> list[tuple[Any, ...]]:
    """One row per partition of ``entries`` (:data:`PACK_COLUMNS`), each keyed by its
    first record's id; the event loop runs while they are gathered
    (:class:`~shared.slicing.Slicer`)."""
    by_partition: dict[int, list[_Packed]] = {}
    slicer = Slicer()
    for rid, partition, r in entries:
        await slicer.pause()
        by_partition.setdefault(partition, []).append((rid, r.topic, r.key, r.value, r.headers))
    return [
        (packed[0][0], partition, sequence, _pack(packed), now)
        for sequence, (partition, packed) in enumerate(by_partition.items())
    ]


async def outbox_of(session: AsyncSession, model: OutboxModel, partitions: Collection[int]) -> Left:
    """Records left unacknowledged by a previous owner of ``partitions``, oldest first."""
    if not partitions:
        return Left([], [])
    table = table_of(model)
    packed = issubclass(model, PackedOutboxColumns)
    columns = ("records",) if packed else ("topic", "key", "value", "headers")
    rows = await session.execute(
        select(table.c.record_id, *(table.c[name] for name in columns))
        .where(table.c.partition.in_(sorted(partitions)))
        .order_by(table.c.created_at, table.c.sequence)
    )
    left = Left([], [])
    for row_id, *values in rows:
        left.row_ids.append(row_id)
        if packed:
            left.records.extend(
                (rid, OutgoingRecord(topic, key, value, headers))
                for rid, topic, key, value, headers in _unpack(values[0])
            )
        else:
            topic, key, value, headers = values
            latin = tuple((name, text.encode("latin-1")) for name, text in headers)
            left.records.append((row_id, OutgoingRecord(topic, key, value, latin)))
    return left


async def remove_from_outbox(
    session: AsyncSession, model: OutboxModel, row_ids: Sequence[str]
) -> None:
    """Delete the acknowledged rows ``row_ids`` (one array parameter on PostgreSQL: one
    prepared statement whatever their number)."""
    await delete_by_ids(session, model, "record_id", row_ids)
