"""Deduplication on ``event_id``: the event ids a consumer group applied, per stage.

Ingest may publish one event twice (a retried request after a publish it answered 503 to
reached the topic anyway), at different offsets, so the applied offset alone cannot tell
the copy. A group records each event id it applies, with the stage (the topic it came in
on) and the partition, in the batch's transaction; a copy at that stage is
skipped whatever its offset. The primary key makes it exact between members.

On PostgreSQL a batch records its ids before it applies them, and learns which are copies
from the same statement (:func:`record_new`): an id another member is applying meanwhile
waits for that member's transaction, then counts as seen if it committed. On SQLite a batch
looks its ids up (:func:`seen_before`) and records them with its effects (:func:`remember`):
a copy applied meanwhile by another member fails that insert, the batch rolls back and,
retried, finds it seen. Rows are kept for at least the window, then pruned per owned
partition. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import ConsumedRecord
from shared.consuming.models import SeenEventRow
from shared.db.statements import insert_new, insert_rows, rows_by_keys, table_of

DEDUP_WINDOW = timedelta(days=7)
"""How long an applied event id is remembered (at least): a copy later than that applies."""
PRUNE_EVERY = timedelta(hours=1)
"""How often a member deletes the expired ids of its partitions (in a batch transaction)."""

_SEEN = table_of(SeenEventRow)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One event at one stage: the deduplication key, and the partition it came in on."""

    stage: str
    event_id: str
    partition: int

    @classmethod
    def of(cls, record: ConsumedRecord, event_id: str) -> Sighting:
        return cls(record.topic, event_id, record.partition)

    @property
    def key(self) -> tuple[str, str]:
        return self.stage, self.event_id


async def seen_before(
    session: AsyncSession, group: str, sightings: Collection[Sighting]
) -> set[tuple[str, str]]:
    """The (stage, event id) keys of ``sightings`` the group already applied; one query."""
    rows = await rows_by_keys(
        session,
        SeenEventRow,
        ("consumer_group", "event_id", "stage"),
        ((group, s.event_id, s.stage) for s in sightings),
        ("stage", "event_id"),
    )
    return {(stage, event_id) for stage, event_id in rows}


async def remember(
    session: AsyncSession, group: str, sightings: Sequence[Sighting], *, now: datetime
) -> None:
    """Record ``sightings`` as applied (one statement); a key already there raises
    ``IntegrityError``: another member applied it first (the caller rolls back)."""
    await insert_rows(session, SeenEventRow, _rows(group, sightings, now))


def _rows(group: str, sightings: Sequence[Sighting], now: datetime) -> list[dict[str, object]]:
    return [
        {
            "consumer_group": group,
            "stage": s.stage,
            "event_id": s.event_id,
            "partition": s.partition,
            "seen_at": now,
        }
        for s in sightings
    ]


async def record_new(
    session: AsyncSession, group: str, sightings: Sequence[Sighting], *, now: datetime
) -> set[tuple[str, str]]:
    """Record those of ``sightings`` the group has not applied yet, in one statement; their
    (stage, event id) keys. ``sightings`` hold distinct keys."""
    recorded = await insert_new(
        session, SeenEventRow, _rows(group, sightings, now), ("stage", "event_id")
    )
    return {(stage, event_id) for stage, event_id in recorded}


async def forget_before(
    session: AsyncSession, group: str, partitions: Collection[int], cutoff: datetime
) -> int:
    """Delete the ids seen on ``partitions`` before ``cutoff``; how many."""
    if not partitions:
        return 0
    result = await session.execute(
        delete(_SEEN).where(
            _SEEN.c.consumer_group == group,
            _SEEN.c.partition.in_(sorted(partitions)),
            _SEEN.c.seen_at < cutoff,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
