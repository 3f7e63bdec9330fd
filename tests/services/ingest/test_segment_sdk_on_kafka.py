"""The official Segment Python SDK, pointed at a real ``milepost ingest`` process on real
Kafka and PostgreSQL, delivers calls that appear on ``milepost.events`` keyed by account."""

from __future__ import annotations

import asyncio

import pytest
from segment.analytics.client import Client

from shared.contracts import EventEnvelope, EventType
from tests.processes import RunningServer
from tests.services.ingest.conftest import end_offsets, read_from, synchronous

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_segment_sdk_calls_arrive_on_kafka_with_account_keys(
    server: RunningServer, workspace: tuple[str, str], kafka_bootstrap: str
) -> None:
    workspace_id, write_key = workspace
    start = asyncio.run(end_offsets(kafka_bootstrap))
    errors: list[object] = []
    client = synchronous(Client, write_key, server.url, errors)
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

    found = asyncio.run(read_from(kafka_bootstrap, start, f"{workspace_id}/".encode(), 29))
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
