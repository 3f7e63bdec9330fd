"""The publishing order: nothing is recorded as published unless the bus acknowledged it,
and a message id is published once even when two requests carry it at the same time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.ingest.deduplication.repository import PublishedMessageLedger
from services.ingest.publishing import EventPublisher, IngestMetrics, PreparedEvent
from shared.bus import OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import EventEnvelope, EventType, Topic
from shared.contracts.events import event_id_for
from shared.db import create_engine
from shared.errors import BusUnavailable
from shared.observability.tracing import Tracing
from tests.services.ingest.conftest import RECEIVED_AT, UnavailableBus


def _event(message_id: str) -> PreparedEvent:
    return PreparedEvent.of(_envelope(message_id))


def _envelope(message_id: str) -> EventEnvelope:
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
    ledger = PublishedMessageLedger(engine)
    clock = FrozenClock(RECEIVED_AT)
    metrics = IngestMetrics(CollectorRegistry())
    workspace_message = f"retry-{id(engine)}"
    down = EventPublisher(
        UnavailableBus(), ledger, clock=clock, metrics=metrics, tracing=Tracing.off()
    )
    with pytest.raises(BusUnavailable):
        await down.publish("ws", [_event(workspace_message)])

    bus = InMemoryBus()
    up = EventPublisher(bus, ledger, clock=clock, metrics=metrics, tracing=Tracing.off())
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
        PublishedMessageLedger(engine),
        clock=clock,
        metrics=IngestMetrics(CollectorRegistry()),
        tracing=Tracing.off(),
    )
    message = f"old-{id(engine)}"
    await publisher.publish("ws-expiry", [_event(message)])
    clock.advance(timedelta(hours=25))
    assert await publisher.forget_expired(timedelta(hours=24)) >= 1
    report = await publisher.publish("ws-expiry", [_event(message)])
    await engine.dispose()
    assert report.published == 1


class _GatedBus(InMemoryBus):
    """Holds the first publish until released, then lets it succeed or fail: a broker
    that is slow to acknowledge one request while another arrives."""

    def __init__(self, *, first_fails: bool = False) -> None:
        super().__init__()
        self.first_entered = asyncio.Event()
        self.release = asyncio.Event()
        self._first_fails = first_fails
        self._calls = 0

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        self._calls += 1
        if self._calls == 1:
            self.first_entered.set()
            await self.release.wait()
            if self._first_fails:
                raise BusUnavailable("broker down")
        await super().publish(records)


async def _published_ids(bus: InMemoryBus) -> list[str]:
    consumer = await bus.subscribe([Topic.EVENTS], group_id="check")
    records = await consumer.poll(max_records=100, timeout_ms=10)
    return sorted(EventEnvelope.model_validate_json(r.value).message_id for r in records)


async def _race(database_url: str, bus: _GatedBus, workspace: str) -> tuple[Any, Any]:
    """Request one publishes ``shared`` and is held by the bus; request two, with
    ``shared`` and ``own``, arrives meanwhile; then request one is released."""
    engine = create_engine(database_url)
    publisher = EventPublisher(
        bus,
        PublishedMessageLedger(engine),
        clock=FrozenClock(RECEIVED_AT),
        metrics=IngestMetrics(CollectorRegistry()),
        tracing=Tracing.off(),
    )
    first = asyncio.create_task(publisher.publish(workspace, [_event("shared")]))
    await asyncio.wait_for(bus.first_entered.wait(), timeout=10)
    second = asyncio.create_task(publisher.publish(workspace, [_event("own"), _event("shared")]))
    await asyncio.sleep(0.3)  # the second claim now waits for the first one's row (or lock)
    assert not second.done()
    bus.release.set()
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    await engine.dispose()
    return outcomes[0], outcomes[1]


async def test_a_message_id_in_two_concurrent_requests_is_published_once(
    database_url: str,
) -> None:
    bus = _GatedBus()
    first, second = await _race(database_url, bus, f"ws-race-{uuid.uuid4().hex[:8]}")

    assert (first.published, first.duplicates) == (1, 0)
    assert (second.published, second.duplicates) == (1, 1)
    assert await _published_ids(bus) == ["own", "shared"]


async def test_a_concurrent_request_publishes_the_id_when_the_first_was_not_acknowledged(
    database_url: str,
) -> None:
    bus = _GatedBus(first_fails=True)
    first, second = await _race(database_url, bus, f"ws-race-{uuid.uuid4().hex[:8]}")

    assert isinstance(first, BusUnavailable)
    assert (second.published, second.duplicates) == (2, 0)
    assert await _published_ids(bus) == ["own", "shared"]


async def test_an_unusable_ledger_does_not_stop_publishing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}")
    bus = InMemoryBus()
    publisher = EventPublisher(
        bus,
        PublishedMessageLedger(engine),
        clock=FrozenClock(RECEIVED_AT),
        metrics=IngestMetrics(CollectorRegistry()),
        tracing=Tracing.off(),
    )
    report = await publisher.publish("ws", [_event("a"), _event("b"), _event("a")])
    await engine.dispose()

    assert (report.published, report.duplicates) == (2, 1)
    assert await _published_ids(bus) == ["a", "b"]
