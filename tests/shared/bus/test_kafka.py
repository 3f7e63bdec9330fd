"""The Kafka bus's own behaviour beyond the bus contract."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.producer.message_accumulator import BatchBuilder

from shared import slicing
from shared.bus import OutgoingRecord, kafka
from shared.bus.kafka import BATCHED_FROM, KafkaBus, KafkaOptions
from shared.contracts.events import EventEnvelope
from shared.contracts.topics import TopicSpec

pytestmark = pytest.mark.kafka


@contextlib.asynccontextmanager
async def started_bus(topic: str, options: KafkaOptions) -> AsyncIterator[KafkaBus]:
    """A started bus with ``topic`` (one partition) created; closed on the way out."""
    bus = KafkaBus(options)
    await bus.start()
    try:
        spec = TopicSpec(topic, "test", "key", EventEnvelope, partitions=1)
        await bus.ensure_topics([spec], replication_factor=1)
        yield bus
    finally:
        await bus.close()


async def test_publishing_many_records_lets_the_loop_run_between_sends(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)  # every record ends a slice
    happened: list[str] = []
    append = BatchBuilder.append

    def noting(self: BatchBuilder, **record: Any) -> Any:
        happened.append("added")
        return append(self, **record)

    monkeypatch.setattr(BatchBuilder, "append", noting)
    topic = f"{topic_prefix}.events"
    options = KafkaOptions(bootstrap_servers=kafka_bootstrap, linger_ms=1)
    async with started_bus(topic, options) as bus:
        await bus.publish([OutgoingRecord(topic, b"k", b"first")])  # producer and metadata
        happened.clear()
        records = [OutgoingRecord(topic, b"k", b"%d" % i) for i in range(20)]
        asyncio.get_running_loop().call_soon(happened.append, "other work")
        await bus.publish(records)

    assert happened.count("added") == len(records)
    assert happened.index("other work") < len(records)


async def test_publishing_many_records_lets_the_loop_run_while_it_places_them(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)  # every record ends a slice
    happened: list[str] = []
    partition_for = kafka._KeyPlacement.partition_for

    def noting(self: Any, key: bytes) -> int:
        happened.append("placed")
        return partition_for(self, key)

    monkeypatch.setattr(kafka._KeyPlacement, "partition_for", noting)
    topic = f"{topic_prefix}.events"
    async with started_bus(topic, KafkaOptions(bootstrap_servers=kafka_bootstrap)) as bus:
        await bus.publish([OutgoingRecord(topic, b"k", b"first")])  # producer and metadata
        happened.clear()
        records = [OutgoingRecord(topic, b"k%d" % i, b"%d" % i) for i in range(20)]
        asyncio.get_running_loop().call_soon(happened.append, "other work")
        await bus.publish(records)

    assert happened.count("placed") == len(records)
    assert happened.index("other work") < len(records) - 1


async def test_records_past_a_full_batch_go_in_the_next_one_in_their_order(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.events"
    options = KafkaOptions(bootstrap_servers=kafka_bootstrap, max_batch_bytes=1024)
    records = [
        OutgoingRecord(topic, b"k", b"%03d" % i + bytes(100), (("n", b"%d" % i),))
        for i in range(40)
    ]
    async with started_bus(topic, options) as bus:
        await bus.publish(records)  # about ten records fill a batch of 1 KiB
        consumer = await bus.subscribe([topic], group_id=f"reader-{topic}")
        found: list[tuple[bytes, tuple[tuple[str, bytes], ...]]] = []
        while len(found) < len(records):
            found += [(r.value, r.headers) for r in await consumer.poll(timeout_ms=200)]
        await consumer.close()

    assert found == [(r.value, r.headers) for r in records]


async def test_many_records_for_a_partition_go_as_batches_and_a_few_one_by_one(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    send, send_batch = AIOKafkaProducer.send, AIOKafkaProducer.send_batch

    async def sending(self: AIOKafkaProducer, *args: Any, **kwargs: Any) -> Any:
        calls.append("record")
        return await send(self, *args, **kwargs)

    async def sending_batch(self: AIOKafkaProducer, *args: Any, **kwargs: Any) -> Any:
        calls.append("batch")
        return await send_batch(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaProducer, "send", sending)
    monkeypatch.setattr(AIOKafkaProducer, "send_batch", sending_batch)
    topic = f"{topic_prefix}.events"
    async with started_bus(topic, KafkaOptions(bootstrap_servers=kafka_bootstrap)) as bus:
        await bus.publish([OutgoingRecord(topic, b"k", b"%d" % i) for i in range(BATCHED_FROM)])
        assert calls == ["batch"]
        calls.clear()
        await bus.publish([OutgoingRecord(topic, b"k", b"%d" % i) for i in range(3)])
        assert calls == ["record"] * 3


async def test_aligning_a_topic_keeps_an_override_set_after_its_configs_were_read(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's override set between the alignment's read of a topic's configs and
    its write stays: the write sets only the values that differ from the spec."""
    topic = f"{topic_prefix}.events"
    spec = TopicSpec(topic, "test", "key", EventEnvelope, partitions=1)
    operator = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await operator.start()
    bus = KafkaBus(KafkaOptions(bootstrap_servers=kafka_bootstrap))
    try:
        await bus.ensure_topics([spec], replication_factor=1)
        read = AIOKafkaAdminClient.describe_configs

        async def read_then_overridden(admin: AIOKafkaAdminClient, *args: Any) -> Any:
            described = await read(admin, *args)
            monkeypatch.setattr(AIOKafkaAdminClient, "describe_configs", read)
            override = {"retention.ms": "604800000", "max.message.bytes": "2000000"}
            await operator.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, override)]
            )
            return described

        monkeypatch.setattr(AIOKafkaAdminClient, "describe_configs", read_then_overridden)
        await bus.ensure_topics([replace(spec, retention=timedelta(days=3))], replication_factor=1)
        wanted = {"retention.ms": str(3 * 86_400_000), "max.message.bytes": "2000000"}
        assert await _eventually_set(operator, topic, wanted)
    finally:
        await operator.close()
        await bus.close()


async def _eventually_set(admin: AIOKafkaAdminClient, topic: str, wanted: dict[str, str]) -> bool:
    """Whether the broker describes ``wanted`` set on ``topic`` within 10 s (it applies a
    change the controller acknowledged a moment later)."""
    for _ in range(100):
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [(_code, _message, _type, _name, entries)] = response.resources
        if wanted.items() <= {entry[0]: entry[1] for entry in entries}.items():
            return True
        await asyncio.sleep(0.1)
    return False
