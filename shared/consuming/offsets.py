"""Applied offsets, fenced: a member moves a partition's offset only from where it last
left it, so a member that lost the partition cannot write over its new owner. A
partition's origin marks (:mod:`.origins`) move with its offset, in the same statement.
Flushes, never commits."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import TopicPartition
from shared.consuming.models import AppliedOffsetRow
from shared.consuming.origins import Marks, Position
from shared.db import driver
from shared.db.statements import on_postgresql, table_of
from shared.errors import PartitionMoved

Moves = Mapping[TopicPartition, tuple[int | None, int]]
"""Per partition: its applied offset before a batch (``None``: none yet) and after it."""


class OffsetConflict(PartitionMoved):
    """Another group member moved a partition's applied offset: this member lost it."""


PartitionMarks = Mapping[TopicPartition, Marks]
"""Per input partition: its origin marks."""


async def applied_offsets(
    session: AsyncSession, group: str, partitions: Collection[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, dict[str, Position]]]:
    """The next offset to apply for each of ``partitions`` that has one, and the origin
    marks of those that have some."""
    if not partitions:
        return {}, {}
    rows = await session.execute(
        select(AppliedOffsetRow).where(
            AppliedOffsetRow.consumer_group == group,
            AppliedOffsetRow.partition.in_({tp.partition for tp in partitions}),
        )
    )
    owned = set(partitions)
    offsets: dict[TopicPartition, int] = {}
    marks: dict[TopicPartition, dict[str, Position]] = {}
    for row in rows.scalars():
        tp = TopicPartition(row.topic, row.partition)
        if tp in owned:
            offsets[tp] = row.next_offset
            if row.origins:
                marks[tp] = {source: (at[0], at[1]) for source, at in row.origins.items()}
    return offsets, marks


async def every_applied_offset(session: AsyncSession) -> dict[tuple[str, TopicPartition], int]:
    """Every group's next offset to apply, by group and input partition."""
    rows = await session.execute(select(AppliedOffsetRow))
    return {
        (row.consumer_group, TopicPartition(row.topic, row.partition)): row.next_offset
        for row in rows.scalars()
    }


_OFFSETS = table_of(AppliedOffsetRow)


async def advance_offsets(
    session: AsyncSession,
    group: str,
    moves: Moves,
    marks: PartitionMarks | None = None,
) -> None:
    """Move each partition's applied offset from ``old`` to ``new``, fenced: when another
    member moved it first (or recorded it first, for an ``old`` of ``None``), raise
    :class:`OffsetConflict` or ``IntegrityError`` (the caller rolls back).

    One insert for the partitions seen for the first time; the moved ones in one
    ``UPDATE ... FROM unnest(...) RETURNING`` on PostgreSQL (each row moves only from its
    own ``old``; a row that did not is a lost fence), one update each on SQLite. A partition
    in ``marks`` stores those as its origin marks; the others keep theirs."""
    marks = marks or {}
    first = [
        {
            "consumer_group": group,
            "topic": tp.topic,
            "partition": tp.partition,
            "next_offset": new,
            "origins": _stored(marks.get(tp)),
        }
        for tp, (old, new) in moves.items()
        if old is None
    ]
    if first:
        await session.execute(insert(_OFFSETS), first)
    moved = {
        (tp.topic, tp.partition): (old, new) for tp, (old, new) in moves.items() if old is not None
    }
    if not moved:
        return
    origins = {(tp.topic, tp.partition): _stored(at) for tp, at in marks.items()}
    if on_postgresql(session):
        fenced = await _move_together(session, group, moved, origins)
    else:
        fenced = {
            key
            for key in moved
            if await _move_one(session, group, key, *moved[key], origins.get(key))
        }
    lost = sorted(set(moved) - fenced)
    if lost:
        topic, partition = lost[0]
        raise OffsetConflict(f"{topic}[{partition}] moved past {moved[lost[0]][0]} elsewhere")


_MOVES = (
    func.unnest(
        bindparam("topics", type_=ARRAY(String)),
        bindparam("partitions", type_=ARRAY(Integer)),
        bindparam("olds", type_=ARRAY(BigInteger)),
        bindparam("news", type_=ARRAY(BigInteger)),
        bindparam("origins", type_=ARRAY(Text)),
    )
    .table_valued("topic", "partition", "old", "new", "origins")
    .render_derived("moves")
)
_MOVE_TOGETHER = (
    update(_OFFSETS)
    .where(
        _OFFSETS.c.consumer_group == bindparam("group"),
        _OFFSETS.c.topic == _MOVES.c.topic,
        _OFFSETS.c.partition == _MOVES.c.partition,
        _OFFSETS.c.next_offset == _MOVES.c.old,
    )
    .values(
        next_offset=_MOVES.c.new,
        origins=func.coalesce(cast(_MOVES.c.origins, JSON), _OFFSETS.c.origins),
    )
    .returning(_OFFSETS.c.topic, _OFFSETS.c.partition)
)
"""One statement whatever the number of partitions (arrays, not a VALUES list), compiled
once and prepared once per connection (:mod:`shared.db.driver`)."""


def _stored(marks: Marks | None) -> dict[str, list[int]] | None:
    return None if marks is None else {source: list(at) for source, at in marks.items()}


async def _move_together(
    session: AsyncSession,
    group: str,
    moved: Mapping[tuple[str, int], tuple[int, int]],
    origins: Mapping[tuple[str, int], dict[str, list[int]] | None],
) -> set[tuple[str, int]]:
    """The partitions the statement moved (all of ``moved`` unless a fence was lost)."""
    keys = list(moved)
    stored = [origins.get(key) for key in keys]
    result = await driver.fetch(
        session,
        _MOVE_TOGETHER,
        {
            "group": group,
            "topics": [topic for topic, _ in keys],
            "partitions": [partition for _, partition in keys],
            "olds": [moved[key][0] for key in keys],
            "news": [moved[key][1] for key in keys],
            "origins": [None if at is None else orjson.dumps(at).decode() for at in stored],
        },
    )
    return {(topic, partition) for topic, partition in result}


async def _move_one(
    session: AsyncSession,
    group: str,
    key: tuple[str, int],
    old: int,
    new: int,
    origins: dict[str, list[int]] | None,
) -> bool:
    """Whether the partition moved from ``old`` (``False``: a lost fence)."""
    topic, partition = key
    kept = {} if origins is None else {"origins": origins}
    result = await session.execute(
        update(_OFFSETS)
        .where(
            _OFFSETS.c.consumer_group == group,
            _OFFSETS.c.topic == topic,
            _OFFSETS.c.partition == partition,
            _OFFSETS.c.next_offset == old,
        )
        .values(next_offset=new, **kept)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
