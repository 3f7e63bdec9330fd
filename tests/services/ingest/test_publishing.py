"""The publishing order: nothing is recorded as published unless the bus acknowledged it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from services.ingest.publishing import EventPublisher, IngestMetrics
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import EventEnvelope, EventType, Topic
from shared.contracts.events import event_id_for
from shared.db import create_engine, create_session_factory
from shared.errors import BusUnavailable
from tests.services.ingest.conftest import RECEIVED_AT, UnavailableBus


def _event(message_id: str) -> EventEnvelope:
    return EventEnvelope(
        event_id=event_id_for("ws", message_id),
        workspace_id="ws",
        message_id=message_id,
        type=EventType.TRACK,
        event="E",
        account_id="acme",
        timestamp=RECEIVED_AT,
        received_at=RECEIVED_AT,
        source="segment",
    )


async def test_a_failed_publish_leaves_the_message_publishable(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    clock = FrozenClock(RECEIVED_AT)
    metrics = IngestMetrics(CollectorRegistry())
    workspace_message = f"retry-{id(engine)}"
    down = EventPublisher(UnavailableBus(), sessions, clock=clock, metrics=metrics)
    with pytest.raises(BusUnavailable):
        await down.publish("ws", [_event(workspace_message)])

    bus = InMemoryBus()
    up = EventPublisher(bus, sessions, clock=clock, metrics=metrics)
    report = await up.publish("ws", [_event(workspace_message)])
    again = await up.publish("ws", [_event(workspace_message)])
    await engine.dispose()

    assert (report.published, report.duplicates) == (1, 0)
    assert (again.published, again.duplicates) == (0, 1)
    assert (await bus.end_offsets([])) == {}
    consumer = await bus.subscribe([Topic.EVENTS], group_id="check")
    assert len(await consumer.poll(timeout_ms=10)) == 1


async def test_expired_ledger_entries_are_forgotten(database_url: str) -> None:
    engine = create_engine(database_url)
    clock = FrozenClock(RECEIVED_AT)
    publisher = EventPublisher(
        InMemoryBus(),
        create_session_factory(engine),
        clock=clock,
        metrics=IngestMetrics(CollectorRegistry()),
    )
    message = f"old-{id(engine)}"
    await publisher.publish("ws-expiry", [_event(message)])
    clock.advance(timedelta(hours=25))
    assert await publisher.forget_expired(timedelta(hours=24)) >= 1
    report = await publisher.publish("ws-expiry", [_event(message)])
    await engine.dispose()
    assert report.published == 1
