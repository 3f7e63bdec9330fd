"""A broker that cannot be reached: never an acknowledgement, never a hang, never a crash;
once a publish failed the bus answers "unavailable" without waiting, until a probe finds
the broker back."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTopicPartition

from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.contracts import TOPICS
from shared.errors import BusUnavailable
from tests.processes import free_port
from tests.services.ingest.conftest import open_ingest

RECORD = OutgoingRecord("milepost.events", b"k", b"v")


def _unreachable() -> KafkaBus:
    return KafkaBus(
        KafkaOptions(
            bootstrap_servers=f"127.0.0.1:{free_port()}",
            publish_timeout_s=2,
            request_timeout_ms=2000,
        )
    )


async def test_publish_raises_bus_unavailable_and_readiness_is_false() -> None:
    bus = _unreachable()
    await bus.start()  # does not raise: the service comes up and reports not ready
    assert not await bus.is_ready()
    with pytest.raises(BusUnavailable):
        await bus.publish([RECORD])
    await bus.close()


async def test_ingest_answers_503_with_retry_after_when_kafka_is_down(database_url: str) -> None:
    bus = _unreachable()
    async for harness in open_ingest(database_url, bus):
        response = await harness.post("/v1/track", {"userId": "u", "event": "E"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert (await harness.client.get("/readyz")).status_code == 503
    await bus.close()


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.kafka
async def test_after_a_failed_publish_the_bus_fails_at_once_until_the_broker_is_back(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker that stops acknowledging: the first publish waits out its timeout; the
    next ones are refused without handing the producer anything, and readiness is false;
    once a probe (every ``probe_interval_s``) finds the broker, publishing goes on."""
    sends: list[str] = []
    real_send = AIOKafkaProducer.send

    async def unacknowledged(self: AIOKafkaProducer, topic: str, *args: Any, **kw: Any) -> Any:
        sends.append(topic)
        return asyncio.get_running_loop().create_future()  # never acknowledged

    options = KafkaOptions(
        bootstrap_servers=kafka_bootstrap,
        publish_timeout_s=3,
        probe_interval_s=10,
        probe_timeout_s=10,
    )
    clock = Ticks()
    bus = KafkaBus(options, monotonic=clock)
    spec = replace(TOPICS[0], topic=f"{topic_prefix}.{TOPICS[0].topic}", partitions=1)
    record = OutgoingRecord(spec.topic, b"k", b"v")
    try:
        await bus.ensure_topics([spec], replication_factor=1)
        await bus.publish([record])
        monkeypatch.setattr(AIOKafkaProducer, "send", unacknowledged)
        with pytest.raises(BusUnavailable):
            await bus.publish([record])
        clock.now += options.probe_interval_s - 1
        with pytest.raises(BusUnavailable, match="recent publish"):
            await bus.publish([record])
        assert not await bus.is_ready()
        assert len(sends) == 1

        monkeypatch.setattr(AIOKafkaProducer, "send", real_send)
        clock.now += 1
        await bus.publish([record])
        assert await bus.is_ready()
    finally:
        await bus.close()


@pytest.mark.kafka
async def test_a_producer_refused_for_a_gap_in_its_numbering_is_replaced(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A batch numbered but never written (one that expired while its partition had no
    leader, in a broker outage longer than ``request_timeout_ms``) leaves a gap in the
    idempotent producer's numbering, and the broker refuses every later batch for the
    partition: the publish that meets the refusal fails, and the next one goes through on a
    new producer."""
    bus = KafkaBus(KafkaOptions(bootstrap_servers=kafka_bootstrap, probe_interval_s=0))
    spec = replace(TOPICS[0], topic=f"{topic_prefix}.{TOPICS[0].topic}", partitions=1)
    try:
        await bus.ensure_topics([spec], replication_factor=1)
        await bus.publish([OutgoingRecord(spec.topic, b"k", b"first")])
        _number_a_batch_never_written(bus, spec.topic)
        with pytest.raises(BusUnavailable, match="OutOfOrderSequenceNumber"):
            await bus.publish([OutgoingRecord(spec.topic, b"k", b"refused")])
        for attempt in range(2):  # the same producer would be refused every time
            await bus.publish([OutgoingRecord(spec.topic, b"k", f"then {attempt}".encode())])
        tail = [
            r.value async for batch in bus.read_tail(spec.topic, per_partition=10) for r in batch
        ]
        assert tail == [b"first", b"then 0", b"then 1"]
    finally:
        await bus.close()


def _number_a_batch_never_written(bus: KafkaBus, topic: str) -> None:
    producer = bus._producer
    assert producer is not None
    producer._txn_manager.increment_sequence_number(KafkaTopicPartition(topic, 0), 1)


class SlowStop:
    """A replaced producer whose stop waits until the test lets it finish (one holding
    batches for a broker that is down)."""

    def __init__(self) -> None:
        self.may_finish = asyncio.Event()
        self.stopped = asyncio.Event()

    async def stop(self) -> None:
        await self.may_finish.wait()
        self.stopped.set()


async def test_a_replaced_producer_slow_to_stop_is_stopped_in_the_background() -> None:
    """The failed publish waits ``publish_timeout_s`` for the old producer's stop, not
    longer, and never cancels it midway (that would leave its sender retrying for good):
    the stop goes on, and closing the bus waits for it."""
    bus = KafkaBus(
        KafkaOptions(bootstrap_servers=f"127.0.0.1:{free_port()}", publish_timeout_s=0.05)
    )
    old = SlowStop()
    await _replace(bus, old)
    assert not old.stopped.is_set()
    await asyncio.sleep(0.1)  # longer than the publish's timeout: still stopping
    closing = asyncio.create_task(bus.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    old.may_finish.set()
    await closing
    assert old.stopped.is_set()
    assert not bus._retiring


async def test_closing_the_bus_cancels_a_replaced_producer_that_never_stops() -> None:
    bus = KafkaBus(
        KafkaOptions(
            bootstrap_servers=f"127.0.0.1:{free_port()}",
            publish_timeout_s=0.01,
            request_timeout_ms=50,
        )
    )
    old = SlowStop()
    await _replace(bus, old)
    await bus.close()
    assert not old.stopped.is_set()
    assert not bus._retiring


async def _replace(bus: KafkaBus, producer: Any) -> None:
    """Make ``producer`` the bus's current one and replace it, as a failed delivery does."""
    bus._producer = producer
    await bus._replace(producer)
    assert bus._producer is None
