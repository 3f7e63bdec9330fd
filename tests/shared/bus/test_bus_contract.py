"""One contract, three buses: the in-memory and the durable bus must behave as Kafka does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.bus import Bus, ConsumedRecord, Consumer, OutgoingRecord, TopicPartition
from shared.bus.durable import DurableBus
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.memory import InMemoryBus
from shared.bus.partitioning import partition_for
from shared.contracts.events import EventEnvelope
from shared.contracts.topics import Topic, TopicSpec

PARTITIONS = 4


@pytest.fixture(params=["memory", "durable", pytest.param("kafka", marks=pytest.mark.kafka)])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    implementation: Bus
    if request.param == "memory":
        implementation = InMemoryBus(default_partitions=PARTITIONS)
    elif request.param == "durable":
        implementation = DurableBus(tmp_path / "bus.db", default_partitions=PARTITIONS)
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        implementation = KafkaBus(KafkaOptions(bootstrap_servers=bootstrap, linger_ms=1))
    await implementation.start()
    yield implementation
    await implementation.close()


async def _topic(
    bus: Bus, prefix: str, name: str = "events", *, partitions: int = PARTITIONS
) -> str:
    topic = f"{prefix}.{name}"
    spec = TopicSpec(Topic.EVENTS, "test", "key", EventEnvelope, partitions=partitions)
    await bus.ensure_topics([_renamed(spec, topic)], replication_factor=1)
    return topic


def _renamed(spec: TopicSpec, topic: str) -> TopicSpec:
    return TopicSpec(topic, spec.summary, spec.key_rule, spec.payload, partitions=spec.partitions)


async def _drain(consumer: Consumer, expected: int, *, rounds: int = 60) -> list[ConsumedRecord]:
    records: list[ConsumedRecord] = []
    for _ in range(rounds):
        records.extend(await consumer.poll(max_records=500, timeout_ms=500))
        if len(records) >= expected:
            break
    return records


def _records(topic: str, count: int, keys: int) -> list[OutgoingRecord]:
    return [
        OutgoingRecord(topic, f"account-{i % keys}".encode(), f"{i}".encode(), (("n", b"%d" % i),))
        for i in range(count)
    ]


async def test_published_records_are_consumed_in_key_order_on_murmur2_partitions(
    bus: Bus, topic_prefix: str
) -> None:
    topic = await _topic(bus, topic_prefix)
    await bus.publish(_records(topic, 200, keys=7))
    consumer = await bus.subscribe([topic], group_id=f"{topic_prefix}-g")
    records = await _drain(consumer, 200)
    await consumer.close()

    assert len(records) == 200
    by_key: dict[bytes, list[int]] = {}
    for record in records:
        assert record.key is not None
        assert record.partition == partition_for(record.key, PARTITIONS)
        assert record.headers == (("n", record.value),)
        by_key.setdefault(record.key, []).append(int(record.value))
    for values in by_key.values():
        assert values == sorted(values)
    offsets: dict[int, list[int]] = {}
    for record in records:
        offsets.setdefault(record.partition, []).append(record.offset)
    for partition_offsets in offsets.values():
        assert partition_offsets == list(range(len(partition_offsets)))


async def test_a_new_member_resumes_from_committed_offsets_and_sees_uncommitted_again(
    bus: Bus, topic_prefix: str
) -> None:
    topic = await _topic(bus, topic_prefix)
    await bus.publish(_records(topic, 40, keys=1))
    group = f"{topic_prefix}-g"
    first = await bus.subscribe([topic], group_id=group)
    seen = await _drain(first, 40)
    assert len(seen) == 40
    (tp,) = {r.topic_partition for r in seen}
    await first.commit({tp: 25})
    await first.close()

    second = await bus.subscribe([topic], group_id=group)
    again = await _drain(second, 15)
    await second.close()
    assert [int(r.value) for r in again] == list(range(25, 40))


async def test_seek_to_committed_rewinds_after_a_failed_batch(bus: Bus, topic_prefix: str) -> None:
    topic = await _topic(bus, topic_prefix)
    await bus.publish(_records(topic, 10, keys=1))
    consumer = await bus.subscribe([topic], group_id=f"{topic_prefix}-g")
    first = await _drain(consumer, 10)
    await consumer.commit({first[0].topic_partition: 4})
    await consumer.seek_to_committed()
    replay = await _drain(consumer, 6)
    await consumer.close()
    assert [int(r.value) for r in replay] == list(range(4, 10))


async def test_seek_to_committed_without_a_commit_rewinds_to_the_beginning(
    bus: Bus, topic_prefix: str
) -> None:
    topic = await _topic(bus, topic_prefix)
    await bus.publish(_records(topic, 10, keys=1))
    consumer = await bus.subscribe([topic], group_id=f"{topic_prefix}-g")
    assert len(await _drain(consumer, 10)) == 10
    await consumer.seek_to_committed()
    replay = await _drain(consumer, 10)
    await consumer.close()
    assert [int(r.value) for r in replay] == list(range(10))


async def test_group_members_split_partitions_and_together_see_everything_once(
    bus: Bus, topic_prefix: str
) -> None:
    topic = await _topic(bus, topic_prefix)
    group = f"{topic_prefix}-g"
    first = await bus.subscribe([topic], group_id=group)
    second = await bus.subscribe([topic], group_id=group)
    await bus.publish(_records(topic, 400, keys=50))

    collected: list[ConsumedRecord] = []
    for _ in range(60):
        batches = await asyncio.gather(first.poll(timeout_ms=300), second.poll(timeout_ms=300))
        for batch in batches:
            collected.extend(batch)
        if len(collected) >= 400 and first.assignment() and second.assignment():
            break
    owned_first, owned_second = first.assignment(), second.assignment()
    await first.close()
    await second.close()

    assert owned_first
    assert owned_second
    assert not owned_first & owned_second
    assert owned_first | owned_second == {TopicPartition(topic, p) for p in range(PARTITIONS)}
    assert sorted(int(r.value) for r in collected) == list(range(400))


async def test_topics_with_equal_partition_counts_are_co_partitioned_across_members(
    bus: Bus, topic_prefix: str
) -> None:
    """Partition p of every subscribed topic goes to the same member of the group, so a
    member that owns an account's key in one topic owns it in the other too. (Three
    partitions for two members: a round-robin assignment over both topics would not.)"""
    events = await _topic(bus, topic_prefix, "events", partitions=3)
    repartitioned = await _topic(bus, topic_prefix, "repartitioned", partitions=3)
    group = f"{topic_prefix}-g"
    first = await bus.subscribe([events, repartitioned], group_id=group)
    second = await bus.subscribe([events, repartitioned], group_id=group)
    everything = {TopicPartition(t, p) for t in (events, repartitioned) for p in range(3)}
    for _ in range(60):
        await asyncio.gather(first.poll(timeout_ms=300), second.poll(timeout_ms=300))
        owned = (first.assignment(), second.assignment())
        if all(owned) and owned[0] | owned[1] == everything and not owned[0] & owned[1]:
            break
    owned = (first.assignment(), second.assignment())
    await first.close()
    await second.close()

    assert all(owned)
    assert owned[0] | owned[1] == everything
    for member in owned:
        by_topic = {
            t: {tp.partition for tp in member if tp.topic == t} for t in (events, repartitioned)
        }
        assert by_topic[events]
        assert by_topic[events] == by_topic[repartitioned]


async def test_end_offsets_count_the_records_of_each_partition(bus: Bus, topic_prefix: str) -> None:
    topic = await _topic(bus, topic_prefix)
    await bus.publish(_records(topic, 30, keys=3))
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    ends = await bus.end_offsets(partitions)
    expected = dict.fromkeys(partitions, 0)
    for i in range(30):
        expected[TopicPartition(topic, partition_for(f"account-{i % 3}".encode(), PARTITIONS))] += 1
    assert ends == expected


async def test_end_offsets_follow_new_records_and_topics_created_later(
    bus: Bus, topic_prefix: str
) -> None:
    first = await _topic(bus, topic_prefix)
    await bus.publish([OutgoingRecord(first, b"account-0", b"1")])
    at = TopicPartition(first, partition_for(b"account-0", PARTITIONS))
    assert (await bus.end_offsets([at]))[at] == 1
    await bus.publish([OutgoingRecord(first, b"account-0", b"2")])
    later = await _topic(bus, f"{topic_prefix}-later")
    await bus.publish([OutgoingRecord(later, b"account-0", b"1")])
    there = TopicPartition(later, at.partition)
    assert await bus.end_offsets([at, there]) == {at: 2, there: 1}


async def test_a_latest_subscriber_without_committed_offsets_skips_history(
    bus: Bus, topic_prefix: str
) -> None:
    topic = await _topic(bus, topic_prefix)
    await bus.publish(_records(topic, 5, keys=1))
    consumer = await bus.subscribe([topic], group_id=f"{topic_prefix}-g", from_beginning=False)
    await consumer.poll(timeout_ms=2000)  # joins the group and takes its position
    await bus.publish([OutgoingRecord(topic, b"account-0", b"late")])
    records = await _drain(consumer, 1)
    await consumer.close()
    assert [r.value for r in records] == [b"late"]


async def test_the_tail_is_the_last_records_of_each_partition_in_offset_order(
    bus: Bus, topic_prefix: str
) -> None:
    topic = await _topic(bus, topic_prefix)
    await bus.publish(_records(topic, 60, keys=5))
    published: dict[int, list[bytes]] = {}
    for i in range(60):
        published.setdefault(partition_for(f"account-{i % 5}".encode(), PARTITIONS), []).append(
            f"{i}".encode()
        )
    read: dict[int, list[bytes]] = {}
    order: list[int] = []
    async for batch in bus.read_tail(topic, per_partition=10):
        assert len({r.partition for r in batch}) == 1
        assert [r.offset for r in batch] == sorted(r.offset for r in batch)
        if not order:  # records published while reading are not part of the tail
            await bus.publish(_records(topic, 20, keys=5))
        if not order or order[-1] != batch[0].partition:
            order.append(batch[0].partition)
        read.setdefault(batch[0].partition, []).extend(r.value for r in batch)
    assert read == {p: values[-10:] for p, values in published.items()}
    assert len(order) == len(set(order)), "partition after partition"
    assert sum(len(values) for values in read.values()) < 60


async def test_the_tail_of_an_empty_topic_is_empty(bus: Bus, topic_prefix: str) -> None:
    topic = await _topic(bus, topic_prefix)
    assert [batch async for batch in bus.read_tail(topic, per_partition=5)] == []


async def test_is_ready_when_connected(bus: Bus) -> None:
    assert await bus.is_ready()
