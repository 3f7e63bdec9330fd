"""A broker that cannot be reached: never an acknowledgement, never a hang, never a crash;
once a publish failed the bus answers "unavailable" without waiting, until a probe finds
the broker back."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

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
        bootstrap_servers=kafka_bootstrap, publish_timeout_s=0.5, probe_interval_s=0.2
    )
    bus = KafkaBus(options)
    spec = replace(TOPICS[0], topic=f"{topic_prefix}.{TOPICS[0].topic}", partitions=1)
    await bus.ensure_topics([spec], replication_factor=1)
    topic = OutgoingRecord(spec.topic, b"k", b"v")
    await bus.publish([topic])
    monkeypatch.setattr(AIOKafkaProducer, "send", unacknowledged)
    with pytest.raises(BusUnavailable):
        await bus.publish([topic])
    assert len(sends) == 1
    with pytest.raises(BusUnavailable, match="recent publish"):
        await bus.publish([topic])
    assert not await bus.is_ready()
    assert len(sends) == 1

    monkeypatch.setattr(AIOKafkaProducer, "send", real_send)
    await asyncio.sleep(options.probe_interval_s * 2)
    await bus.publish([topic])
    assert await bus.is_ready()
    await bus.close()
