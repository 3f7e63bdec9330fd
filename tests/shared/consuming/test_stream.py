"""The stream runtime: a batch is decoded, admitted, sifted, loaded, applied and
checkpointed once; a poison record goes to the dead-letter topic with its reason; a
failure another member caused rolls the batch back at once and the batch applies again;
the database's errors become consumer errors at the edge."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import slicing
from shared.attribution.models import AttributionOutboxRow
from shared.bus import Bus, ConsumedRecord, Consumer, OutgoingRecord, TopicPartition
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.consuming import stream as stream_module
from shared.consuming.metrics import STEPS, lag_gauge, retries_counter, steps_histogram
from shared.consuming.models import SeenEventRow
from shared.consuming.offsets import applied_offsets
from shared.consuming.origins import with_origin
from shared.consuming.outbox import OutboxModel, outbox_of
from shared.consuming.seen import Sighting
from shared.consuming.stream import (
    Batch,
    Handler,
    Stream,
    StreamMetrics,
    consumer_errors,
    timed,
    uncached,
)
from shared.contracts import Topic
from shared.contracts.topics import DeadLetter
from shared.db import create_engine, create_session_factory
from shared.errors import InvalidMessage, PartitionMoved, StoreUnavailable
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

    def sighting(self, record: ConsumedRecord, item: str) -> Sighting | None:
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


def counting_stream(
    sessions: async_sessionmaker[AsyncSession], bus: Bus, group: str
) -> tuple[Counting, CollectorRegistry]:
    """A counting stream on ``bus`` in ``group``, and the registry of its metrics."""
    registry = CollectorRegistry()
    handler = Counting()
    Stream(
        handler,
        bus=bus,
        sessions=sessions,
        clock=FrozenClock(NOW),
        group_id=group,
        topics=(Topic.EVENTS,),
        metrics=StreamMetrics(
            lag_gauge("test_consumer_lag", registry),
            retries_counter("test_retries", registry),
            steps_histogram("test_step_seconds", registry),
        ),
    )
    return handler, registry


async def stream_of(
    sessions: async_sessionmaker[AsyncSession], bus: Bus | None = None
) -> tuple[Counting, Consumer, CollectorRegistry]:
    """A counting stream on ``bus`` (in memory by default) with four records waiting:
    two words, a poison record and a copy of the first word."""
    bus = bus or InMemoryBus()
    group = f"stream-{uuid.uuid4().hex[:8]}"
    handler, registry = counting_stream(sessions, bus, group)
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


async def test_once_published_a_batch_is_let_go_of_with_what_its_handler_says_is_spent(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, consumer, _ = await stream_of(sessions)
    batches: list[Batch[list[str]]] = []
    committed = handler.committed

    def keeping(batch: Batch[list[str]]) -> None:
        committed(batch)
        batches.append(batch)

    monkeypatch.setattr(handler, "committed", keeping)
    monkeypatch.setattr(handler, "spent", lambda effects: (effects,))
    assert await handler.step(consumer) == 4
    [batch] = batches
    assert handler.words == ["one", "two"]  # what the handler kept of it stays
    assert (batch.effects, batch.outbox, batch.sightings) == ([], [], [])
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


async def test_a_batch_rolled_back_before_any_consumer_commit_applies_again(
    sessions: async_sessionmaker[AsyncSession], bus: Bus
) -> None:
    handler, consumer, registry = await stream_of(sessions, bus)
    handler.fail = PartitionMoved("another member was first")
    for _ in range(50):  # the first polls of a Kafka consumer may find nothing yet
        await handler.step(consumer)
        if registry.get_sample_value("test_retries_total", {"reason": "partition_moved"}):
            break
    assert handler.words == []
    for _ in range(50):  # rewound to the partition's first record: nothing committed yet
        if len(handler.words) == 2:
            break
        await handler.step(consumer)
    assert handler.words == ["one", "two"]
    await handler.stream.leave(consumer)


def step_counts(registry: CollectorRegistry) -> dict[str, float | None]:
    return {
        step: registry.get_sample_value("test_step_seconds_count", {"step": step}) for step in STEPS
    }


async def test_each_step_of_a_batch_is_timed_once_and_an_idle_poll_not_at_all(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer, registry = await stream_of(sessions)
    assert await handler.step(consumer) == 4
    assert step_counts(registry) == dict.fromkeys(STEPS, 1.0)
    assert await handler.step(consumer) == 0
    assert step_counts(registry) == dict.fromkeys(STEPS, 1.0)
    await consumer.close()


async def test_a_batch_is_queued_from_its_records_timestamps_to_its_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus = InMemoryBus()
    await bus.publish([OutgoingRecord(Topic.EVENTS, b"k", b"e1:one")])
    handler, registry = counting_stream(sessions, bus, "queued")
    handler.stream.clock = FrozenClock(datetime.now(UTC) + timedelta(seconds=5))
    await bus.publish([OutgoingRecord(Topic.EVENTS, b"k", b"e2:two")])
    consumer = await bus.subscribe([Topic.EVENTS], group_id="queued")
    assert await handler.step(consumer) == 2
    queued = registry.get_sample_value("test_step_seconds_sum", {"step": "queued"})
    assert queued is not None
    assert 5.0 <= queued < 6.0
    await consumer.close()


def test_a_step_that_raises_is_not_timed() -> None:
    steps: dict[str, float] = {}
    with timed(steps, "load"):
        pass
    with pytest.raises(StoreUnavailable), timed(steps, "write"):
        raise StoreUnavailable("the database went away")
    assert list(steps) == ["load"]


def made_from(offset: int, value: bytes) -> OutgoingRecord:
    """A record of a stage made from ``milepost.events[0]`` at ``offset``."""
    source = ConsumedRecord("milepost.events", 0, offset, None, b"", (), 0)
    return OutgoingRecord(Topic.EVENTS, b"k", value, with_origin((), source))


async def test_a_record_published_again_is_dropped_by_its_origin_without_a_seen_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus, group = InMemoryBus(), f"stream-{uuid.uuid4().hex[:8]}"
    handler, registry = counting_stream(sessions, bus, group)
    await bus.publish([made_from(1, b"e1:one"), made_from(2, b"e2:two"), made_from(1, b"e1:one")])
    consumer = await bus.subscribe([Topic.EVENTS], group_id=group)
    assert await handler.step(consumer) == 3
    assert handler.words == ["one", "two"]
    assert registry.get_sample_value("test_retries_total", {"reason": "partition_moved"}) is None
    await handler.stream.leave(consumer)

    # the partition's next owner learns the marks with the offsets: a later copy is dropped
    successor, _ = counting_stream(sessions, bus, group)
    await bus.publish([made_from(2, b"e2:two"), made_from(3, b"e1:three")])
    consumer = await bus.subscribe([Topic.EVENTS], group_id=group)
    for _ in range(5):
        await successor.step(consumer)
    assert successor.words == ["three"]
    await successor.stream.leave(consumer)
    async with sessions() as session:
        seen = await session.scalar(
            select(func.count()).where(SeenEventRow.consumer_group == group)
        )
    assert seen == 0


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


class Waiting(Counting):
    """Batches of at most 10 records; waits ``wait_ms`` for more when a poll found fewer."""

    def __init__(self, wait_ms: int) -> None:
        super().__init__()
        self.wait_ms = wait_ms

    def batch_limit(self) -> int:
        return 10

    def batch_wait_ms(self) -> int:
        return self.wait_ms


async def waiting_stream(
    sessions: async_sessionmaker[AsyncSession], wait_ms: int
) -> tuple[Waiting, Consumer]:
    handler = Waiting(wait_ms)
    return handler, await attached(handler, sessions)


async def attached(
    handler: Waiting,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus | None = None,
    outbox: OutboxModel | None = None,
    group: str | None = None,
) -> Consumer:
    """``handler`` in a stream of its own on ``bus`` (in memory by default), with
    ``outbox``, in ``group`` (a new one by default), its assignment learned."""
    bus = bus or InMemoryBus()
    registry = CollectorRegistry()
    Stream(
        handler,
        bus=bus,
        sessions=sessions,
        clock=FrozenClock(NOW),
        group_id=group or f"stream-{uuid.uuid4().hex[:8]}",
        topics=(Topic.EVENTS,),
        metrics=StreamMetrics(
            lag_gauge("test_consumer_lag", registry),
            retries_counter("test_retries", registry),
            steps_histogram("test_step_seconds", registry),
        ),
        outbox=outbox,
    )
    consumer = await bus.subscribe([Topic.EVENTS], group_id=handler.stream.group_id)
    await handler.step(consumer)  # learns the assignment
    return consumer


async def publish_after(handler: Waiting, delay_s: float, *values: bytes) -> None:
    await asyncio.sleep(delay_s)
    await handler.stream.bus.publish([OutgoingRecord(Topic.EVENTS, b"k", v) for v in values])


@pytest.mark.parametrize(
    ("wait_ms", "batches"), [(0, [["one"], ["two"]]), (1_000, [["one", "two"]])]
)
async def test_a_short_poll_waits_the_handlers_batch_wait_for_more_records(
    sessions: async_sessionmaker[AsyncSession], wait_ms: int, batches: list[list[str]]
) -> None:
    handler, consumer = await waiting_stream(sessions, wait_ms)
    applied: list[list[str]] = []
    first = asyncio.create_task(publish_after(handler, 0, b"e1:one"))
    second = asyncio.create_task(publish_after(handler, 0.3, b"e2:two"))
    while sum(map(len, applied)) < 2:
        before = len(handler.words)
        await handler.step(consumer)
        if len(handler.words) > before:
            applied.append(handler.words[before:])
    await asyncio.gather(first, second)
    assert applied == batches
    await consumer.close()


async def test_a_full_poll_does_not_wait(sessions: async_sessionmaker[AsyncSession]) -> None:
    handler, consumer = await waiting_stream(sessions, 60_000)
    await publish_after(handler, 0, *(f"e{i}:w{i}".encode() for i in range(10)))
    assert await asyncio.wait_for(handler.step(consumer), timeout=5) == 10
    assert len(handler.words) == 10
    await consumer.close()


async def test_a_poll_that_waited_for_its_first_record_applies_it_at_once(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, consumer = await waiting_stream(sessions, 60_000)
    clock = handler.stream.clock
    assert isinstance(clock, FrozenClock)
    poll = consumer.poll

    async def waited(*, max_records: int, timeout_ms: int) -> list[ConsumedRecord]:
        records = await poll(max_records=max_records, timeout_ms=timeout_ms)
        if timeout_ms:  # the stage's own poll, which waited for the record to come
            clock.advance(stream_module.QUIET_AFTER)
        return records

    monkeypatch.setattr(consumer, "poll", waited)
    await publish_after(handler, 0, b"e1:one")
    assert await asyncio.wait_for(handler.step(consumer), timeout=5) == 1
    assert handler.words == ["one"]
    await consumer.close()


async def test_a_batch_is_read_a_slice_at_a_time_with_the_loop_let_run_between(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "READ_SLICE", 3)
    handler, consumer = await waiting_stream(sessions, 0)
    reads: list[int | str] = []
    poll = consumer.poll

    async def noted(*, max_records: int, timeout_ms: int) -> list[ConsumedRecord]:
        found = await poll(max_records=max_records, timeout_ms=timeout_ms)
        reads.append(len(found))
        asyncio.get_running_loop().call_soon(reads.append, "other work")
        return found

    monkeypatch.setattr(consumer, "poll", noted)
    await publish_after(handler, 0, *(f"e{i}:w{i}".encode() for i in range(8)))
    assert await handler.step(consumer) == 8
    assert reads[:6] == [3, "other work", 3, "other work", 2, "other work"]
    assert handler.words == [f"w{i}" for i in range(8)]
    await consumer.close()


async def test_the_consumer_offsets_are_committed_every_second_when_idle_and_on_leaving(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, consumer = await waiting_stream(sessions, 0)
    commits: list[list[int]] = []
    commit = consumer.commit

    async def noted(offsets: Mapping[TopicPartition, int]) -> None:
        commits.append(sorted(offsets.values()))
        await commit(offsets)

    monkeypatch.setattr(consumer, "commit", noted)

    async def apply(value: bytes) -> None:
        await publish_after(handler, 0, value)
        assert await handler.step(consumer) == 1

    clock = handler.stream.clock
    assert isinstance(clock, FrozenClock)
    await apply(b"e1:one")
    await apply(b"e2:two")
    assert commits == [[1]]  # the first checkpoint commits; the next, within a second, not
    clock.advance(timedelta(seconds=1))
    await apply(b"e3:three")
    await apply(b"e4:four")
    assert commits == [[1], [3]]
    assert await handler.step(consumer) == 0
    assert commits == [[1], [3], [4]]  # a step with nothing to apply commits at once
    await apply(b"e5:five")
    await handler.stream.leave(consumer)
    assert commits == [[1], [3], [4], [5]]
    assert handler.words == ["one", "two", "three", "four", "five"]


class Quiet(Waiting):
    """:class:`Waiting` with nothing to write for a ``quiet`` record (no event id either)
    or the word ``quiet``; notes each checkpoint's transaction."""

    def __init__(self) -> None:
        super().__init__(0)
        self.transactions = 0

    def decode(self, record: ConsumedRecord) -> str:
        return "quiet" if record.value == b"quiet" else super().decode(record)

    def sighting(self, record: ConsumedRecord, item: str) -> Sighting | None:
        return None if item == "quiet" else super().sighting(record, item)

    async def handle(self, items: Sequence[str], batch: Batch[list[str]]) -> None:
        await super().handle([item for item in items if not item.endswith("quiet")], batch)

    def writes_nothing(self, batch: Batch[list[str]]) -> bool:
        return not batch.effects

    async def write(self, session: AsyncSession, batch: Batch[list[str]]) -> None:
        self.transactions += 1
        await super().write(session, batch)


async def stored_offset(handler: Quiet) -> int | None:
    """The applied offset of partition 0 the database has for the handler's group."""
    tp = TopicPartition(Topic.EVENTS, 0)
    async with handler.stream.sessions() as session:
        applied, _ = await applied_offsets(session, handler.stream.group_id, [tp])
    return applied.get(tp)


async def quiet_stream(
    sessions: async_sessionmaker[AsyncSession], bus: Bus | None = None
) -> tuple[Quiet, Consumer]:
    handler = Quiet()
    consumer = await attached(handler, sessions, bus)
    await apply_one(handler, consumer, b"e0:zero")
    return handler, consumer


async def apply_one(handler: Quiet, consumer: Consumer, value: bytes) -> None:
    await publish_after(handler, 0, value)
    assert await handler.step(consumer) == 1


async def test_a_batch_with_nothing_to_write_opens_no_transaction_and_its_offsets_wait(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer = await quiet_stream(sessions)
    clock = handler.stream.clock
    assert isinstance(clock, FrozenClock)
    assert (handler.transactions, await stored_offset(handler)) == (1, 1)
    await apply_one(handler, consumer, b"quiet")
    await apply_one(handler, consumer, b"quiet")
    assert (handler.transactions, await stored_offset(handler)) == (1, 1)
    assert handler.applied == {TopicPartition(Topic.EVENTS, 0): 3}
    await apply_one(handler, consumer, b"e1:one")  # the next checkpoint stores them
    assert (handler.transactions, await stored_offset(handler)) == (2, 4)
    await apply_one(handler, consumer, b"quiet")
    clock.advance(stream_module.DEFER_AT_MOST)
    await apply_one(handler, consumer, b"quiet")  # waited long enough: checkpointed
    assert (handler.transactions, await stored_offset(handler)) == (3, 6)
    await apply_one(handler, consumer, b"quiet")
    assert await handler.step(consumer) == 0  # an idle poll stores them
    assert (handler.transactions, await stored_offset(handler)) == (4, 7)
    await apply_one(handler, consumer, b"e2:quiet")  # nothing to write but its event id
    assert (handler.transactions, await stored_offset(handler)) == (5, 8)
    await apply_one(handler, consumer, b"quiet")
    await handler.stream.leave(consumer)  # and a stop stores them
    assert (handler.transactions, await stored_offset(handler)) == (6, 9)
    assert handler.words == ["zero", "one"]


async def test_after_a_crash_the_records_whose_offsets_waited_are_read_again_and_applied_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus = InMemoryBus()
    handler, consumer = await quiet_stream(sessions, bus)
    await apply_one(handler, consumer, b"quiet")
    await apply_one(handler, consumer, b"e1:one")
    await apply_one(handler, consumer, b"quiet")  # deferred when the member dies
    await consumer.close()  # without leaving: nothing else stored
    next_owner = Quiet()
    # Its first step reads from the consumer offsets committed (the first checkpoint's):
    # two records skipped below the stored offset, the quiet one read again.
    replaying = await attached(next_owner, sessions, bus, group=handler.stream.group_id)
    assert (next_owner.words, await stored_offset(next_owner)) == ([], 3)
    await apply_one(next_owner, replaying, b"e2:two")
    assert (next_owner.words, await stored_offset(next_owner)) == (["two"], 5)
    await next_owner.stream.leave(replaying)


async def test_a_rolled_back_batch_drops_the_offsets_that_waited_and_applies_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer = await quiet_stream(sessions)
    await apply_one(handler, consumer, b"quiet")
    handler.fail = PartitionMoved("another member was first")
    await publish_after(handler, 0, b"e1:one")
    assert await handler.step(consumer) == 0
    assert await stored_offset(handler) == 1
    while len(handler.words) < 2:  # rewound to the stored offsets: read again from there
        await handler.step(consumer)
    assert handler.words == ["zero", "one"]
    assert await stored_offset(handler) == 3
    await handler.stream.leave(consumer)


@pytest.fixture
async def postgres_sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on PostgreSQL alone: a stream overlaps checkpoints only there."""
    engine = create_engine(postgres_url)
    yield create_session_factory(engine)
    await engine.dispose()


class Gated(Waiting):
    """:class:`Waiting` whose checkpoints wait for ``gate``, noting the order of applies
    and writes."""

    def __init__(self) -> None:
        super().__init__(0)
        self.gate = asyncio.Event()
        self.noted = asyncio.Event()
        self.log: list[str] = []

    async def handle(self, items: Sequence[str], batch: Batch[list[str]]) -> None:
        self.log.append(f"apply {','.join(items)}")
        self.noted.set()
        await super().handle(items, batch)

    async def applying(self, entry: str) -> None:
        """Until ``entry`` is in the log."""
        async with asyncio.timeout(10):
            while entry not in self.log:
                self.noted.clear()
                await self.noted.wait()

    async def write(self, session: AsyncSession, batch: Batch[list[str]]) -> None:
        await self.gate.wait()
        self.log.append(f"write {','.join(batch.effects)}")
        await super().write(session, batch)


async def gated_stream(sessions: async_sessionmaker[AsyncSession]) -> tuple[Gated, Consumer]:
    handler = Gated()
    handler.gate.set()
    consumer = await attached(handler, sessions)
    handler.gate.clear()
    handler.log.clear()
    return handler, consumer


async def test_with_overlap_the_next_batch_applies_while_the_checkpoint_is_in_flight(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer = await gated_stream(postgres_sessions)
    stream = handler.stream
    await publish_after(handler, 0, b"e1:one")
    assert await stream.step(consumer, overlap=True) == 1
    assert stream.in_flight is not None
    assert handler.words == []
    await publish_after(handler, 0, b"e2:two")
    second = asyncio.create_task(stream.step(consumer, overlap=True))
    await handler.applying("apply e2:two")
    assert handler.log == ["apply e1:one", "apply e2:two"]  # the first is not written yet
    handler.gate.set()
    assert await second == 1
    await stream.settle()
    assert handler.log == ["apply e1:one", "apply e2:two", "write one", "write two"]
    assert handler.words == ["one", "two"]
    assert stream.member.applied == {TopicPartition(Topic.EVENTS, 0): 2}
    await stream.leave(consumer)


async def test_an_event_in_a_batch_and_in_the_checkpoint_in_flight_applies_once(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer = await gated_stream(postgres_sessions)
    stream = handler.stream
    await publish_after(handler, 0, b"e1:one")
    await stream.step(consumer, overlap=True)
    await publish_after(handler, 0, b"e1:one", b"e2:two")
    second = asyncio.create_task(stream.step(consumer, overlap=True))
    await asyncio.sleep(0.3)
    assert handler.log == ["apply e1:one"]  # its sift waits for the first checkpoint
    handler.gate.set()
    assert await second == 2
    await stream.settle()
    assert handler.words == ["one", "two"]
    await stream.leave(consumer)


async def test_a_failed_checkpoint_in_flight_rolls_back_the_next_batch_too(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    handler, consumer = await gated_stream(postgres_sessions)
    stream = handler.stream
    handler.gate.set()
    handler.fail = PartitionMoved("another member was first")
    await publish_after(handler, 0, b"e1:one")
    assert await stream.step(consumer, overlap=True) == 1  # its checkpoint fails meanwhile
    await publish_after(handler, 0, b"e2:two")
    assert await stream.step(consumer, overlap=True) == 0  # rolled back with the first
    assert handler.words == []
    assert stream.in_flight is None
    while len(handler.words) < 2:
        await stream.step(consumer, overlap=True)
        await stream.settle()
    assert handler.words == ["one", "two"]
    assert stream.member.applied == {TopicPartition(Topic.EVENTS, 0): 2}
    await stream.leave(consumer)


class HeldBus(InMemoryBus):
    """An in-memory bus whose publishing of trigger records waits for ``gate``; notes the
    values of those it published, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.triggers: list[bytes] = []

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if any(r.topic == Topic.TRIGGERS for r in records):
            await self.gate.wait()
            self.triggers.extend(r.value for r in records if r.topic == Topic.TRIGGERS)
        await super().publish(records)


class Emitting(Waiting):
    """:class:`Waiting` that emits each word as a trigger record through the outbox, under
    an input partition of its own."""

    def __init__(self) -> None:
        super().__init__(0)
        self.partition = 90 + uuid.uuid4().int % 1_000_000

    async def handle(self, items: Sequence[str], batch: Batch[list[str]]) -> None:
        await super().handle(items, batch)
        for item in items:
            event, _, word = item.partition(":")
            record = OutgoingRecord(Topic.TRIGGERS, b"k", word.encode())
            batch.outbox.append((f"{event}-{self.partition}", self.partition, record))


async def committed_words(handler: Counting) -> list[str]:
    """``handler``'s committed words once the transaction in flight, if any, committed."""
    if handler.stream.in_flight is not None:
        await handler.stream.in_flight
    return handler.words


async def two_batches_held(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[HeldBus, Emitting, Consumer]:
    """A stream with an outbox that stepped two one-record batches, each handed off with
    its checkpoint in flight, while the bus holds every trigger record."""
    bus, handler = HeldBus(), Emitting()
    consumer = await attached(handler, sessions, bus, AttributionOutboxRow)
    bus.gate.clear()
    for value in (b"e1:one", b"e2:two"):
        await bus.publish([OutgoingRecord(Topic.EVENTS, b"k", value)])
        assert await handler.stream.step(consumer, overlap=True) == 1
    return bus, handler, consumer


async def test_a_batch_commits_while_the_records_of_the_one_before_are_being_published(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus, handler, consumer = await two_batches_held(postgres_sessions)
    stream = handler.stream
    assert await committed_words(handler) == ["one", "two"]  # both batches committed ...
    assert bus.triggers == []  # ... while the first one's records wait to be published
    bus.gate.set()
    await stream.settle()
    assert bus.triggers == [b"one", b"two"]
    await stream.leave(consumer)
    async with postgres_sessions() as session:
        assert (await outbox_of(session, AttributionOutboxRow, [handler.partition])).records == []


async def test_a_batch_waits_for_the_records_of_the_batch_before_the_last_to_be_published(
    postgres_sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus, handler, consumer = await two_batches_held(postgres_sessions)
    stream = handler.stream
    await bus.publish([OutgoingRecord(Topic.EVENTS, b"k", b"e3:three")])
    third = asyncio.create_task(stream.step(consumer, overlap=True))
    done, _ = await asyncio.wait([third], timeout=0.5)
    assert not done  # the third batch waits: the first one's records are not published
    assert await committed_words(handler) == ["one", "two"]
    bus.gate.set()
    assert await third == 1
    await stream.settle()
    assert handler.words == ["one", "two", "three"]
    assert bus.triggers == [b"one", b"two", b"three"]
    await stream.leave(consumer)
