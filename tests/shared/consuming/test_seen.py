"""Deduplication on event_id: a member applies an event once per stage whatever its
offset, within the window; a copy applied by another member meanwhile fails the batch;
expired ids are pruned per owned partition."""

from __future__ import annotations

import asyncio
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
from shared.db import create_engine, create_session_factory

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
    sifted = await m.first_sightings(first, sighting, now=NOW)
    assert sifted.fresh == [first[0], first[2], first[3]]
    assert sifted.duplicates == [first[1]]
    await hold(m, sifted.sightings)

    later = [(EVENTS, "e2", 7), (REKEYED, "e1", 8), (EVENTS, "e3", 9)]
    again = await member(sessions, group).first_sightings(later, sighting, now=NOW)
    assert again.fresh == [later[2]]
    assert [s.key for s in again.sightings] == [(EVENTS, "e3")]
    other = await member(sessions, f"{group}-other").first_sightings(later, sighting, now=NOW)
    assert other.fresh == later


async def test_a_copy_applied_meanwhile_by_another_member_fails_the_batch(
    sessions: async_sessionmaker[AsyncSession], group: str
) -> None:
    one, two = member(sessions, group), member(sessions, group)
    items = [(EVENTS, "e1", 4)]
    first, second = (
        await one.first_sightings(items, sighting, now=NOW),
        await two.first_sightings(items, sighting, now=NOW),
    )
    await hold(one, first.sightings)
    with pytest.raises(IntegrityError):
        await hold(two, second.sightings)


async def sift_in_batch(
    m: FencedMember, items: list[tuple[str, str, int]], *, commit: bool
) -> None:
    """Sift ``items`` in a batch's session and hold what it returns; commit or roll back."""
    async with m.sessions() as session:
        sifted = await m.first_sightings(items, sighting, now=NOW, session=session)
        await m.hold(session, {}, sightings=sifted.sightings, now=NOW)
        await (session.commit() if commit else session.rollback())


async def test_in_the_batch_session_the_ids_are_recorded_with_the_batch(
    sessions: async_sessionmaker[AsyncSession], group: str
) -> None:
    items = [(EVENTS, "e1", 0), (EVENTS, "e1", 1), (EVENTS, "e2", 2)]
    await sift_in_batch(member(sessions, group), items, commit=False)
    assert (await member(sessions, group).first_sightings(items, sighting, now=NOW)).fresh == [
        items[0],
        items[2],
    ]
    await sift_in_batch(member(sessions, group), items, commit=True)
    again = await member(sessions, group).first_sightings(items, sighting, now=NOW)
    assert (again.fresh, again.duplicates) == ([], items)


async def test_on_postgresql_a_copy_being_applied_elsewhere_is_a_duplicate_once_committed(
    postgres_url: str, group: str
) -> None:
    """SQLite records the ids with the effects: a copy applied meanwhile fails (above)."""
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    one, two = member(sessions, group), member(sessions, group)
    items, other = [(EVENTS, "e1", 4), (EVENTS, "e2", 5)], [(EVENTS, "e2", 5), (EVENTS, "e3", 6)]
    try:
        async with sessions() as first, sessions() as second:
            sifted = await one.first_sightings(items, sighting, now=NOW, session=first)
            assert (sifted.fresh, sifted.sightings) == (items, [])  # recorded in ``first``
            waiting = asyncio.create_task(
                two.first_sightings(other, sighting, now=NOW, session=second)
            )
            await asyncio.sleep(0.2)
            assert not waiting.done()  # its insert waits for the first batch's transaction
            await first.commit()
            sifted = await waiting
            assert (sifted.fresh, sifted.duplicates) == (other[1:], other[:1])
    finally:
        await engine.dispose()


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
    replayed = [(EVENTS, "e0", 3)]
    assert (await m.first_sightings(replayed, sighting, now=NOW)).fresh == replayed
