from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from services.ingest.app import mount_ingest
from services.ingest.settings import IngestSettings
from shared.bus import Bus, OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import EventEnvelope, Topic
from shared.contracts.topics import TopicSpec
from shared.db import create_engine, create_session_factory
from shared.errors import BusUnavailable
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.tenancy.service import IssuedKey, create_workspace
from tests.processes import RunningServer, milepost, running

T = TypeVar("T")
RECEIVED_AT = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)


class UnavailableBus(InMemoryBus):
    """A bus whose broker never acknowledges: what a Kafka outage looks like to ingest."""

    async def is_ready(self) -> bool:
        return False

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        raise BusUnavailable("broker down")

    async def ensure_topics(self, specs: Sequence[TopicSpec], *, replication_factor: int) -> None:
        raise BusUnavailable("broker down")


@dataclass
class Ingest:
    client: httpx.AsyncClient
    bus: Bus
    key: IssuedKey
    resources: Resources

    @property
    def auth(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.key.write_key}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def post(self, path: str, body: object, **headers: str) -> httpx.Response:
        return await self.client.post(path, json=body, headers={**self.auth, **headers})

    async def published(self) -> list[tuple[bytes, EventEnvelope]]:
        consumer = await self.bus.subscribe([Topic.EVENTS], group_id="test-reader")
        records = await consumer.poll(max_records=10_000, timeout_ms=10)
        await consumer.close()
        ordered = sorted(records, key=lambda r: r.timestamp_ms)
        return [(r.key or b"", EventEnvelope.model_validate_json(r.value)) for r in ordered]


async def open_ingest(
    database_url: str, bus: Bus, settings: IngestSettings | None = None
) -> AsyncIterator[Ingest]:
    engine = create_engine(database_url)
    clock = FrozenClock(RECEIVED_AT)
    resources = Resources(bus, engine, create_session_factory(engine), clock, CollectorRegistry())
    app = create_http_app("test", "test", resources)
    mount_ingest(app, settings or IngestSettings(write_key_cache_ttl=timedelta(0)), resources)
    async with resources.sessions() as session:
        key = await create_workspace(session, f"ws-{uuid.uuid4().hex[:12]}", clock=clock)
        await session.commit()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield Ingest(client, bus, key, resources)
    await engine.dispose()


@pytest.fixture
async def ingest(database_url: str) -> AsyncIterator[Ingest]:
    async for harness in open_ingest(database_url, InMemoryBus()):
        yield harness


# -- a real `milepost ingest` process on Kafka and PostgreSQL, for the SDK tests --------


@pytest.fixture
def environment(kafka_bootstrap: str, postgres_url: str) -> dict[str, str]:
    return {
        "MILEPOST_BUS": "kafka",
        "MILEPOST_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MILEPOST_DATABASE_URL": postgres_url,
    }


@pytest.fixture
def workspace(environment: dict[str, str]) -> tuple[str, str]:
    """(workspace id, write key) from ``milepost workspace create``'s output."""
    milepost("kafka", "ensure-topics", env=environment)
    output = milepost("workspace", "create", f"sdk-{uuid.uuid4().hex[:8]}", env=environment)
    lines = output.stdout.strip().splitlines()
    workspace_id = re.search(r"id (ws_[0-9a-f]+)", lines[0])
    assert workspace_id is not None, output.stdout
    return workspace_id.group(1), lines[-1]


@pytest.fixture
def server(environment: dict[str, str], tmp_path: Path) -> Iterator[RunningServer]:
    with running("ingest", environment, tmp_path / "ingest.log") as started:
        yield started


def synchronous(client: Callable[..., T], write_key: str, url: str, errors: list[object]) -> T:
    """A Segment-style Python SDK client (Segment's, RudderStack's) that sends each call at
    once, without retries, and keeps its errors in ``errors``."""
    return client(
        write_key=write_key,
        host=url,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, _items: errors.append(error),
    )


async def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    """Where ``milepost.events`` ends now, per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(Topic.EVENTS, p)
            for p in consumer.partitions_for_topic(Topic.EVENTS) or ()
        ]
        if not partitions:
            partitions = [TopicPartition(Topic.EVENTS, p) for p in range(12)]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def read_from(
    bootstrap: str, start: dict[TopicPartition, int], workspace_prefix: bytes, expected: int
) -> list[tuple[bytes, EventEnvelope]]:
    """The envelopes after ``start`` whose keys start with ``workspace_prefix``, waiting
    (a bounded number of polls) until ``expected`` have come."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[bytes, EventEnvelope]] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        for _ in range(40):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.key.startswith(workspace_prefix):
                        found.append((record.key, EventEnvelope.model_validate_json(record.value)))
            if len(found) >= expected:
                break
    finally:
        await consumer.stop()
    return found
