"""The Kafka bus's own behaviour beyond the bus contract."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared import slicing
from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.contracts.events import EventEnvelope
from shared.contracts.topics import TopicSpec

pytestmark = pytest.mark.kafka


async def test_publishing_many_records_lets_the_loop_run_between_sends(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)  # every record ends a slice
    happened: list[str] = []
    send = AIOKafkaProducer.send

    async def noting(self: AIOKafkaProducer, *args: Any, **kwargs: Any) -> Any:
        happened.append("sent")
        return await send(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaProducer, "send", noting)
    topic = f"{topic_prefix}.events"
    bus = KafkaBus(KafkaOptions(bootstrap_servers=kafka_bootstrap, linger_ms=1))
    await bus.start()
    try:
        spec = TopicSpec(topic, "test", "key", EventEnvelope, partitions=1)
        await bus.ensure_topics([spec], replication_factor=1)
        await bus.publish([OutgoingRecord(topic, b"k", b"first")])  # producer and metadata
        happened.clear()
        records = [OutgoingRecord(topic, b"k", b"%d" % i) for i in range(20)]
        asyncio.get_running_loop().call_soon(happened.append, "other work")
        await bus.publish(records)
    finally:
        await bus.close()

    assert happened.count("sent") == len(records)
    assert happened.index("other work") < len(records)
