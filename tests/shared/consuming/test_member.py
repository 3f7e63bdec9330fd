"""A member moves each partition past the records of a batch and tells a replay (below the
applied offset) from a record still to apply."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.bus import ConsumedRecord, TopicPartition
from shared.bus.memory import InMemoryBus
from shared.consuming.member import FencedMember

EVENTS = TopicPartition("milepost.events", 0)
SCORES = TopicPartition("milepost.scores", 1)


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
