"""The official Segment Python SDK, pointed at a real ``milepost ingest`` process on real
Kafka and PostgreSQL, delivers calls that appear on ``milepost.events`` keyed by account."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from segment.analytics.client import Client

from shared.contracts import EventEnvelope, EventType, Topic
from tests.processes import RunningServer, milepost, running

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


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


async def _end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
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


async def _read_from(
    bootstrap: str, start: dict[TopicPartition, int], workspace_prefix: bytes, expected: int
) -> list[tuple[bytes, EventEnvelope]]:
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


def test_segment_sdk_calls_arrive_on_kafka_with_account_keys(
    server: RunningServer, workspace: tuple[str, str], kafka_bootstrap: str
) -> None:
    workspace_id, write_key = workspace
    start = asyncio.run(_end_offsets(kafka_bootstrap))
    errors: list[object] = []
    client = Client(
        write_key=write_key,
        host=server.url,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, _items: errors.append(error),
    )
    client.identify("u-1", {"email": "ada@acme.io", "role": "admin"}, context={"groupId": "acme"})
    client.group("u-1", "acme", {"name": "Acme", "plan": "growth"})
    client.track("u-1", "Order Placed", {"amount": 120}, context={"groupId": "acme"})
    client.track("u-2", "Logged In")

    batching = Client(write_key=write_key, host=server.url, upload_size=100, max_retries=0)
    batching.on_error = lambda error, _items: errors.append(error)
    for n in range(25):
        batching.track("u-3", "Listing Published", {"n": n}, context={"groupId": "globex"})
    batching.flush()
    batching.join()
    assert not errors

    found = asyncio.run(_read_from(kafka_bootstrap, start, f"{workspace_id}/".encode(), 29))
    assert len(found) == 29
    by_type: dict[EventType, list[tuple[bytes, EventEnvelope]]] = {}
    for key, event in found:
        by_type.setdefault(event.type, []).append((key, event))
        assert event.workspace_id == workspace_id
        assert event.context["library"]["name"] == "analytics-python"
        assert event.sent_at is not None
    [(identify_key, identify)] = by_type[EventType.IDENTIFY]
    assert identify_key == f"{workspace_id}/a/acme".encode()
    assert identify.traits == {"email": "ada@acme.io", "role": "admin"}
    [(group_key, group)] = by_type[EventType.GROUP]
    assert group_key == f"{workspace_id}/a/acme".encode()
    assert group.traits["plan"] == "growth"
    tracks = by_type[EventType.TRACK]
    order = next(e for _, e in tracks if e.event == "Order Placed")
    assert order.account_id == "acme"
    assert order.properties == {"amount": 120}
    login_key = next(k for k, e in tracks if e.event == "Logged In")
    assert login_key == f"{workspace_id}/u/u-2".encode()
    listings = [e for k, e in tracks if k == f"{workspace_id}/a/globex".encode()]
    assert [e.properties["n"] for e in listings] == list(range(25))
