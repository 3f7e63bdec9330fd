from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.app import mount_ingest
from services.ingest.settings import IngestSettings
from services.ingest.workspaces.service import IssuedKey, create_workspace
from shared.bus import Bus, OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import EventEnvelope, Topic
from shared.contracts.topics import TopicSpec
from shared.db import create_engine, create_session_factory
from shared.errors import BusUnavailable
from shared.observability.http import create_http_app
from shared.runtime import Resources

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
