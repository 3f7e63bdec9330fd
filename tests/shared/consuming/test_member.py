"""A member moves each partition past the records of a batch and tells a replay (below the
applied offset) from a record still to apply; it deletes the outbox rows the bus
acknowledged at most every second, and at once on a step with nothing to checkpoint."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.processing.models import OutboxRow
from shared.attribution.models import AttributionOutboxRow
from shared.bus import ConsumedRecord, OutgoingRecord, TopicPartition
from shared.bus.memory import InMemoryBus
from shared.consuming.member import FencedMember
from shared.consuming.origins import Position, with_origin
from shared.consuming.outbox import OutboxModel, outbox_of

EVENTS = TopicPartition("milepost.events", 0)
SCORES = TopicPartition("milepost.scores", 1)
ACCOUNTS = TopicPartition("milepost.accounts.events", 2)
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def record(tp: TopicPartition, offset: int) -> ConsumedRecord:
    return ConsumedRecord(tp.topic, tp.partition, offset, None, b"{}", (), 0)


def test_a_batch_moves_each_partition_from_where_it_was_past_its_last_record() -> None:
    member = FencedMember(bus=InMemoryBus(), sessions=async_sessionmaker(), group_id="g")
    member.applied = {EVENTS: 5}
    moves: dict[TopicPartition, tuple[int | None, int]] = {}
    admitted = [
        member.admit(record(tp, offset), moves)
        for tp, offset in [(EVENTS, 3), (EVENTS, 5), (EVENTS, 6), (SCORES, 0), (SCORES, 1)]
    ]
    assert admitted == [False, True, True, True, True]
    assert moves == {EVENTS: (5, 7), SCORES: (None, 2)}


def test_a_replayed_batch_leaves_the_applied_offset_where_it_is() -> None:
    member = FencedMember(bus=InMemoryBus(), sessions=async_sessionmaker(), group_id="g")
    member.applied = {EVENTS: 9}
    moves: dict[TopicPartition, tuple[int | None, int]] = {}
    assert not any(member.admit(record(EVENTS, offset), moves) for offset in range(3))
    assert moves == {EVENTS: (9, 9)}


def stamped(offset: int, origin: int, index: int = 0, source: int = 0) -> ConsumedRecord:
    """A record of ``ACCOUNTS`` at ``offset`` made from ``milepost.events[source]`` at
    ``origin`` (the ``index``-th made from it)."""
    made_from = ConsumedRecord("milepost.events", source, origin, None, b"{}", (), 0)
    headers = with_origin((), made_from, index)
    return ConsumedRecord(ACCOUNTS.topic, ACCOUNTS.partition, offset, None, b"{}", headers, 0)


def test_a_record_at_or_below_its_origins_mark_is_a_copy_and_the_others_move_it() -> None:
    member = FencedMember(bus=InMemoryBus(), sessions=async_sessionmaker(), group_id="g")
    member.marks = {ACCOUNTS: {"milepost.events:0": (10, 0)}}
    marks: dict[TopicPartition, dict[str, Position]] = {}
    arrivals = [
        member.first_arrival(r, marks)
        for r in [
            stamped(1, origin=10),  # the last one applied, published again
            stamped(2, origin=9),
            stamped(3, origin=10, index=1),  # the next made from the same record
            stamped(4, origin=12, source=1),  # another origin partition: its own mark
            stamped(5, origin=10, index=1),  # a copy within the batch
            stamped(6, origin=11, source=1),
            record(ACCOUNTS, 7),  # no origin: deduplicated on its event id
        ]
    ]
    assert arrivals == [False, False, True, True, False, False, None]
    assert marks == {ACCOUNTS: {"milepost.events:0": (10, 1), "milepost.events:1": (12, 0)}}
    assert member.marks == {ACCOUNTS: {"milepost.events:0": (10, 0)}}  # moved at hand-off


@pytest.mark.parametrize("model", [AttributionOutboxRow, OutboxRow], ids=["rows", "packed"])
async def test_acknowledged_outbox_rows_are_deleted_every_second_and_when_idle(
    sessions: async_sessionmaker[AsyncSession], model: OutboxModel
) -> None:
    bus = InMemoryBus()
    m = FencedMember(bus=bus, sessions=sessions, group_id="g", outbox=model)
    consumer = await bus.subscribe([EVENTS.topic], group_id="g")
    partition = 90 + uuid.uuid4().int % 1_000_000  # a partition of this test's own

    async def checkpoint(name: str, at: datetime) -> list[str]:
        """One batch with one outbox record; the ids left in the outbox after it."""
        entry = (f"{name}-{partition}", partition, OutgoingRecord(EVENTS.topic, b"k", b"v"))
        async with sessions() as session:
            held = await m.hold(session, {}, [entry], now=at)
            await session.commit()
        m.committed()
        await m.release(consumer, {}, [entry], held, now=at)
        async with sessions() as session:
            left = await outbox_of(session, model, [partition])
            return [rid.split("-")[0] for rid, _ in left.records]

    assert await checkpoint("a", NOW) == ["a"]  # published, deleted with a later transaction
    assert await checkpoint("b", NOW) == ["b"]  # the first deletion is due at once
    assert await checkpoint("c", NOW + timedelta(milliseconds=500)) == ["b", "c"]
    assert await checkpoint("d", NOW + timedelta(seconds=1)) == ["d"]
    await m.forget_acknowledged()  # a step with nothing to checkpoint
    async with sessions() as session:
        assert (await outbox_of(session, model, [partition])).records == []
    await consumer.close()
