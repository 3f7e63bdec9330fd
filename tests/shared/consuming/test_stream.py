"""The stream runtime: a batch is decoded, admitted, sifted, loaded, applied and
checkpointed once; a poison record goes to the dead-letter topic with its reason; a
failure another member caused rolls the batch back at once and the batch applies again;
the database's errors become consumer errors at the edge."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import slicing
from shared.bus import ConsumedRecord, Consumer, OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.consuming.metrics import lag_gauge, retries_counter
from shared.consuming.seen import Sighting
from shared.consuming.stream import (
    Batch,
    Handler,
    Stream,
    StreamMetrics,
    consumer_errors,
    uncached,
)
from shared.contracts import Topic
from shared.contracts.topics import DeadLetter
from shared.errors import CommitFailed, InvalidMessage, PartitionMoved, StoreUnavailable
from tests.shared.bus.support import read_to_end

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


class Counting(Handler[str, list[str]]):
    """Applies ``event_id:word`` records by noting the words; ``fail`` raises once in the
    checkpoint's transaction."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.resets = 0
        self.fail: Exception | None = None

    def decode(self, record: ConsumedRecord) -> str:
        if b":" not in record.value:
            raise InvalidMessage("not a counted word: no event id")
        return record.value.decode()

    def sighting(self, record: ConsumedRecord, item: str) -> Sighting:
        return Sighting.of(record, item.partition(":")[0])

    def effects(self) -> list[str]:
        return []

    async def handle(self, items: Sequence[str], batch: Batch[list[str]]) -> None:
        batch.effects.extend(item.partition(":")[2] for item in items)

    async def write(self, session: AsyncSession, batch: Batch[list[str]]) -> None:
        if self.fail is not None:
            failure, self.fail = self.fail, None
            raise failure

    def committed(self, batch: Batch[list[str]]) -> None:
        self.words.extend(batch.effects)

    def reset(self) -> None:
        self.resets += 1

    def count(self, record: ConsumedRecord, outcome: str, n: int = 1) -> None:
        pass


async def stream_of(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[Counting, Consumer, CollectorRegistry]:
    bus = InMemoryBus()
    registry = CollectorRegistry()
    handler = Counting()
    group = f"stream-{uuid.uuid4().hex[:8]}"
    Stream(
        handler,
        bus=bus,
        sessions=sessions,
        clock=FrozenClock(NOW),
        group_id=group,
        topics=(Topic.EVENTS,),
        metrics=StreamMetrics(
            lag_gauge("test_consumer_lag", registry), retries_counter("test_retries", registry)
        ),
    )
    await bus.publish(
        [
            OutgoingRecord(Topic.EVENTS, b"k", value)
            for value in (b"e1:one", b"poison", b"e2:two", b"e1:one")
        ]
    )
    return handler, await bus.subscribe([Topic.EVENTS], group_id=group), registry


async def test_a_batch_applies_each_event_once_and_dead_letters_the_poison(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer, _ = await stream_of(sessions)
    assert await handler.step(consumer) == 4
    assert handler.words == ["one", "two"]
    [(_, _, letter)] = await read_to_end(handler.stream.bus, Topic.EVENTS_DLQ, DeadLetter)
    assert (letter.offset, letter.reason) == (1, "not a counted word: no event id")
    assert await handler.step(consumer) == 0
    assert handler.words == ["one", "two"]
    await consumer.close()


async def test_a_partition_moved_rolls_back_at_once_and_the_batch_applies_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer, registry = await stream_of(sessions)
    handler.fail = PartitionMoved("another member was first")
    assert await handler.step(consumer) == 0
    assert handler.words == []
    assert registry.get_sample_value("test_retries_total", {"reason": "partition_moved"}) == 1
    assert await handler.step(consumer) == 4
    assert handler.words == ["one", "two"]
    assert handler.resets == 3  # two assignments learned, one roll-back
    await consumer.close()


def test_the_database_errors_become_consumer_errors() -> None:
    duplicate = IntegrityError("INSERT", {}, Exception("duplicate key"))
    with pytest.raises(PartitionMoved) as moved, consumer_errors():
        raise duplicate
    assert (moved.value.reason, moved.value.retry_after) == ("partition_moved", 0.0)
    lost = OperationalError("SELECT", {}, Exception("connection lost"))
    with pytest.raises(StoreUnavailable) as down, consumer_errors():
        raise lost
    assert (down.value.reason, down.value.retry_after) == ("OperationalError", 0.5)


async def test_decoding_a_batch_lets_the_loop_run_between_records(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)  # every record ends a slice
    handler, consumer, _ = await stream_of(sessions)
    seen: list[str] = []
    decode = handler.decode

    def noting(record: ConsumedRecord) -> str:
        seen.append(record.value.decode())
        return decode(record)

    handler.decode = noting  # type: ignore[method-assign]
    records = await consumer.poll(max_records=10, timeout_ms=100)
    asyncio.get_running_loop().call_soon(seen.append, "other work")

    await handler.stream.decode(records, Batch(NOW, []))

    assert seen.index("other work") < len(records)


class _UnwalkableCache(dict[str, int]):
    """A cache that fails when walked: only lookups by key are allowed."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the cache was walked")

    def keys(self) -> Any:
        raise AssertionError("the cache was walked")


def test_uncached_keys_are_found_by_lookup_without_walking_the_cache() -> None:
    cache = _UnwalkableCache({"acme": 1, "globex": 2})

    assert uncached(["acme", "initech", "initech", "umbrella"], cache) == {"initech", "umbrella"}


class HeldCommits:
    """Wraps a consumer: each offset commit waits until ``opened`` is set, then fails
    while ``failing``; the offsets it was asked to commit are noted."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.opened = asyncio.Event()
        self.failing = False
        self.asked: list[dict[Any, int]] = []

    async def commit(self, offsets: Any) -> None:
        self.asked.append(dict(offsets))
        await self.opened.wait()
        if self.failing:
            raise CommitFailed("the partitions moved")
        await self.consumer.commit(offsets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.consumer, name)


async def test_the_next_batch_applies_while_the_last_consumer_commit_is_in_flight(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, consumer, _ = await stream_of(sessions)
    held = HeldCommits(consumer)
    assert await handler.step(held) == 4
    assert handler.words == ["one", "two"]
    assert len(held.asked) == 1
    applied = asyncio.Event()
    monkeypatch.setattr(handler, "committed", lambda batch: applied.set())
    await handler.stream.bus.publish([OutgoingRecord(Topic.EVENTS, b"k", b"e3:three")])

    second = asyncio.create_task(handler.step(held))
    await applied.wait()
    assert not second.done()  # its checkpoint waits for the first commit
    assert len(held.asked) == 1

    held.opened.set()
    assert await second == 1
    await handler.stream.member.settle()
    assert [set(offsets.values()) for offsets in held.asked] == [{4}, {5}]
    await consumer.close()


async def test_a_failed_consumer_commit_is_dropped_and_nothing_applies_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer, registry = await stream_of(sessions)
    held = HeldCommits(consumer)
    held.opened.set()
    held.failing = True
    assert await handler.step(held) == 4
    await handler.stream.member.settle()
    assert registry.get_sample_value("test_retries_total", {"reason": "commit_failed"}) is None

    await handler.member.rewind(consumer)  # back to the committed offsets: none
    assert await handler.step(consumer) == 4
    assert handler.words == ["one", "two"]
    await consumer.close()
