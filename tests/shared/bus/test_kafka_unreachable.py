"""A broker that cannot be reached: never an acknowledgement, never a hang, never a crash."""

from __future__ import annotations

import pytest

from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.errors import BusUnavailable
from tests.processes import free_port
from tests.services.ingest.conftest import open_ingest


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
        await bus.publish([OutgoingRecord("milepost.events", b"k", b"v")])
    await bus.close()


async def test_ingest_answers_503_with_retry_after_when_kafka_is_down(database_url: str) -> None:
    bus = _unreachable()
    async for harness in open_ingest(database_url, bus):
        response = await harness.post("/v1/track", {"userId": "u", "event": "E"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
    await bus.close()
