"""Deduplication on event_id: a member applies an event once per stage whatever its
offset, within the window; a copy applied by another member meanwhile fails the batch;
expired ids are pruned per owned partition."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus import ConsumedRecord, TopicPartition
from shared.bus.memory import InMemoryBus
from shared.consuming.member import FencedMember
from shared.consuming.models import SeenEventRow
from shared.consuming.seen import Sighting

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
EVENTS, REKEYED = "milepost.events", "milepost.engine.rekeyed"


def member(sessions: async_sessionmaker[AsyncSession], group: str) -> FencedMember:
    return FencedMember(bus=InMemoryBus(), sessions=sessions, group_id=group)


def sighting(item: tuple[str, str, int]) -> Sighting:
    stage, event_id, offset = item
    return Sighting.of(ConsumedRecord(stage, offset % 3, offset, None, b"", (), 0), event_id)


async def hold(m: FencedMember, sightings: list[Sighting], now: datetime = NOW) -> None:
    async with m.sessions() as session:
        await m.hold(session, {}, sightings=sightings, now=now)
        await session.commit()


@pytest.fixture
def group() -> str:
    return f"seen-{uuid.uuid4().hex[:8]}"


async def test_an_event_is_applied_once_per_stage_whatever_its_offset(
    sessions: async_sessionmaker[AsyncSession], group: str
) -> None:
    m = member(sessions, group)
    first = [(EVENTS, "e1", 0), (EVENTS, "e1", 1), (REKEYED, "e1", 2), (EVENTS, "e2", 3)]
    sifted = await m.first_sightings(first, sighting)
    assert sifted.fresh == [first[0], first[2], first[3]]
    assert sifted.duplicates == [first[1]]
    await hold(m, sifted.sightings)

    later = [(EVENTS, "e2", 7), (REKEYED, "e1", 8), (EVENTS, "e3", 9)]
    again = await member(sessions, group).first_sightings(later, sighting)
    assert again.fresh == [later[2]]
    assert [s.key for s in again.sightings] == [(EVENTS, "e3")]
    other = await member(sessions, f"{group}-other").first_sightings(later, sighting)
    assert other.fresh == later


async def test_a_copy_applied_meanwhile_by_another_member_fails_the_batch(
    sessions: async_sessionmaker[AsyncSession], group: str
) -> None:
    one, two = member(sessions, group), member(sessions, group)
    items = [(EVENTS, "e1", 4)]
    first, second = (
        await one.first_sightings(items, sighting),
        await two.first_sightings(items, sighting),
    )
    await hold(one, first.sightings)
    with pytest.raises(IntegrityError):
        await hold(two, second.sightings)


async def test_ids_past_the_window_are_pruned_on_the_owned_partitions(
    sessions: async_sessionmaker[AsyncSession], group: str
) -> None:
    m = member(sessions, group)
    old = [sighting((EVENTS, "e0", 0)), sighting((EVENTS, "e1", 1))]
    await hold(m, old, now=NOW - timedelta(days=8))
    m.assignment = frozenset({TopicPartition(EVENTS, 0)})
    await hold(m, [sighting((EVENTS, "e2", 0))])
    async with sessions() as session:
        kept = await session.scalars(
            select(SeenEventRow.event_id).where(SeenEventRow.consumer_group == group)
        )
        assert sorted(kept) == ["e1", "e2"]
    assert (await m.first_sightings([(EVENTS, "e0", 3)], sighting)).fresh == [(EVENTS, "e0", 3)]
