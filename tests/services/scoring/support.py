"""A scoring worker on a bus and a database, with events made to order and the score
events read back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.paths.service import PublishedPath
from services.scoring.catalog.service import PublishedDefinitions
from services.scoring.processing.worker import INPUT_TOPICS, ScoringMetrics, ScoringWorker
from services.scoring.settings import ScoringSettings
from shared.bus import Bus, Consumer, OutgoingRecord
from shared.clock import FrozenClock
from shared.contracts import EventType, ScoreEnvelope, Topic, TriggerEnvelope
from shared.contracts.triggers import TriggerKind
from tests.shared.attribution.support import Attributing
from tests.shared.bus.support import event_record, read_to_end
from tests.shared.consuming.support import step_until_applied


@dataclass
class Harness:
    bus: Bus
    sessions: async_sessionmaker[AsyncSession]
    clock: FrozenClock
    workspace: str
    group: str
    catalog: dict[str, PublishedDefinitions] = field(default_factory=dict)
    paths: tuple[PublishedPath, ...] = ()
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    sweep_interval_seconds: float = 3600.0
    attribution: Attributing = field(init=False)

    def __post_init__(self) -> None:
        self.attribution = Attributing(
            self.bus, self.sessions, self.clock, f"attribution-{self.group}"
        )

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Publish ``records``; the events among them reach scoring's input attributed."""
        await self.attribution.publish(records)

    def worker(self) -> ScoringWorker:
        async def load(_session: AsyncSession) -> Mapping[str, PublishedDefinitions]:
            return self.catalog

        async def load_paths(_session: AsyncSession) -> Mapping[str, tuple[PublishedPath, ...]]:
            return {self.workspace: self.paths}

        self.registry = CollectorRegistry()
        settings = ScoringSettings(
            group_id=self.group,
            definitions_refresh_seconds=0.001,
            poll_timeout_ms=50,
            sweep_interval_seconds=self.sweep_interval_seconds,
        )
        return ScoringWorker(
            bus=self.bus,
            sessions=self.sessions,
            clock=self.clock,
            settings=settings,
            load_catalog=load,
            load_paths=load_paths,
            metrics=ScoringMetrics(self.registry),
        )

    async def subscribe(self) -> Consumer:
        return await self.bus.subscribe(list(INPUT_TOPICS), group_id=self.group)

    def enrolled(self, account: str, path_id: str) -> OutgoingRecord:
        """The node engine's trigger saying ``account`` entered ``path_id`` (scoring learns
        enrolment from it)."""
        trigger = TriggerEnvelope(
            trigger_id=f"t-{account}-{path_id}",
            workspace_id=self.workspace,
            account_id=account,
            path_id=path_id,
            path_version=1,
            stage="joined",
            kind=TriggerKind.STAGE_ENTERED,
            reason="the account joined",
            occurred_at=self.clock.now(),
        )
        return OutgoingRecord(
            Topic.TRIGGERS, trigger.key.encode(), trigger.model_dump_json().encode()
        )

    def event(self, message: str, *, at: datetime | None = None, **fields: Any) -> OutgoingRecord:
        return event_record(self.workspace, message, at or self.clock.now(), **fields)

    def crm(self, message: str, kind: str, data: dict[str, Any], **extra: Any) -> OutgoingRecord:
        return self.event(
            message,
            type=EventType.CRM,
            event=f"milepost.crm.{kind}",
            user=None,
            properties={"account_id": "acme", "attributes": {}, **data},
            **extra,
        )

    async def scores(self) -> list[ScoreEnvelope]:
        """This workspace's score events on the topic, in order per account."""
        return [
            s
            for s in await self.read(Topic.SCORES, ScoreEnvelope)
            if s.workspace_id == self.workspace
        ]

    async def read(self, topic: str, model: type[Any]) -> list[Any]:
        """Every record on ``topic`` up to its current end, parsed, in offset order."""
        found = await read_to_end(self.bus, topic, model)
        return [item for _, _, item in sorted(found, key=lambda item: item[:2])]


@pytest.fixture
async def harness(bus: Bus, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Harness]:
    tag = uuid.uuid4().hex[:10]
    harness = Harness(bus, sessions, FrozenClock(T0), f"ws{tag}", f"scoring-{tag}")
    yield harness
    await harness.attribution.close()


T0 = datetime.fromisoformat("2026-03-02T09:00:00+00:00")


async def run_until_idle(worker: ScoringWorker, consumer: Consumer, *, rounds: int = 300) -> None:
    """Step until every owned input partition is applied, then once more, as scoring runs
    (:func:`step_until_applied`)."""
    await step_until_applied(worker, consumer, rounds=rounds, then=1, what="scoring")
