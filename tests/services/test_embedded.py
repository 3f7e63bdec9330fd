"""Embedded mode refuses to start on a bus log behind the applied offsets (a deleted or
replaced bus file) instead of skipping the records published next."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.embedded import refuse_a_bus_behind_applied_offsets
from services.migrations import upgrade_to_head
from shared.bus import OutgoingRecord
from shared.bus.durable import DurableBus
from shared.bus.partitioning import partition_for
from shared.clock import FrozenClock
from shared.consuming.models import AppliedOffsetRow
from shared.contracts import TOPICS, Topic
from shared.db import create_engine, create_session_factory
from shared.errors import StartRefused
from shared.runtime import Resources
from shared.settings import RuntimeSettings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = b"ws/a/acme"


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'milepost.db'}")
    await upgrade_to_head(engine)
    bus = DurableBus(tmp_path / "bus.db", clock=FrozenClock(T0))
    await bus.start()
    await bus.ensure_topics(TOPICS, replication_factor=1)
    yield Resources(
        bus, engine, create_session_factory(engine), FrozenClock(T0), CollectorRegistry()
    )
    await bus.close()
    await engine.dispose()


async def _applied(resources: Resources, topic: str, partition: int, next_offset: int) -> None:
    async with resources.sessions() as session:
        session.add(
            AppliedOffsetRow(
                consumer_group="milepost-engine",
                topic=topic,
                partition=partition,
                next_offset=next_offset,
            )
        )
        await session.commit()


async def test_a_bus_log_behind_the_applied_offsets_refuses_to_start(
    resources: Resources, tmp_path: Path
) -> None:
    partition = partition_for(KEY, 12)
    await resources.bus.publish([OutgoingRecord(Topic.EVENTS, KEY, b"1")])
    await _applied(resources, Topic.EVENTS, partition, 57)

    with pytest.raises(StartRefused) as refusal:
        await refuse_a_bus_behind_applied_offsets(RuntimeSettings(data_dir=tmp_path), resources)

    message = str(refusal.value)
    assert f"the bus file {tmp_path / 'bus.db'}" in message
    assert f"milepost.events[{partition}] ends at offset 1" in message
    assert "'milepost-engine' has applied it up to offset 57" in message


async def test_a_bus_log_at_or_beyond_the_applied_offsets_starts(
    resources: Resources, tmp_path: Path
) -> None:
    """Applied offsets at the log's end are no disagreement."""
    partition = partition_for(KEY, 12)
    await resources.bus.publish([OutgoingRecord(Topic.EVENTS, KEY, b"1")] * 3)
    await _applied(resources, Topic.EVENTS, partition, 3)

    await refuse_a_bus_behind_applied_offsets(RuntimeSettings(data_dir=tmp_path), resources)
