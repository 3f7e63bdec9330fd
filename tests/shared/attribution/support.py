"""The attribution stage beside a consumer under test: events published through it reach
``milepost.accounts.events`` attributed before the consumer steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.attribution.settings import AttributionSettings
from shared.attribution.stage import INPUT_TOPICS, AttributionMetrics, AttributionStage
from shared.bus import Bus, Consumer, OutgoingRecord
from shared.clock import Clock
from shared.consuming.stream import Handler


@dataclass
class Attributing:
    """One test's stage, in consumer group ``group``, with the metrics of the latest stage
    in ``registry``."""

    bus: Bus
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    group: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    stage: AttributionStage | None = None
    consumer: Consumer | None = None

    def new_stage(self) -> AttributionStage:
        self.registry = CollectorRegistry()
        return AttributionStage(
            bus=self.bus,
            sessions=self.sessions,
            clock=self.clock,
            settings=AttributionSettings(group_id=self.group, poll_timeout_ms=50),
            metrics=AttributionMetrics(self.registry),
        )

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Publish ``records`` and attribute every event published so far."""
        await self.bus.publish(list(records))
        await self.drain()

    async def drain(self) -> None:
        if self.stage is None or self.consumer is None:
            self.stage = self.new_stage()
            self.consumer = await self.bus.subscribe(list(INPUT_TOPICS), group_id=self.group)
        await step_until_applied(self.stage, self.consumer)

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.close()


async def step_until_applied(handler: Handler[Any, Any], consumer: Consumer) -> None:
    """Step until every owned input partition is applied up to its end, then once more."""
    for _ in range(300):
        await handler.step(consumer)
        owned = consumer.assignment()
        if not owned:
            continue
        ends = await handler.stream.bus.end_offsets(sorted(owned, key=str))
        if all(handler.applied.get(tp, 0) >= end for tp, end in ends.items() if end):
            await handler.step(consumer)
            return
    raise AssertionError("the attribution stage did not catch up")
