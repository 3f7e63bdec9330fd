"""Publish accepted events to ``milepost.events``, at most once per message id.

Order, which is what makes a 2xx safe:
1. drop ids already in the published-message ledger (and repeats inside the request);
2. publish the rest and wait for ``acks=all`` (:class:`BusUnavailable` -> the caller's 503);
3. record the ids in the ledger.
A crash between 2 and 3 makes a retried request publish again with the same
deterministic ``event_id``, which consumers deduplicate on: nothing is lost, and a
duplicate never has a new identity. The ledger is an optimisation over that guarantee,
so a failing ledger is logged and never turns a durable publish into an error.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.deduplication.repository import PublishedMessageRepository
from shared.bus import Bus, OutgoingRecord
from shared.clock import Clock
from shared.contracts import EventEnvelope, Topic

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PublishReport:
    published: int
    duplicates: int


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "milepost_ingest_events_total",
            "Events received, by outcome (published, duplicate, rejected).",
            ["outcome"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "milepost_ingest_publish_seconds",
            "Time to get acks=all for one request's events.",
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
        )
        self.bus_unavailable = Counter(
            "milepost_ingest_bus_unavailable_total",
            "Requests answered 503 because the bus did not acknowledge.",
            registry=registry,
        )


class EventPublisher:
    def __init__(
        self,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock,
        metrics: IngestMetrics,
    ) -> None:
        self._bus = bus
        self._sessions = sessions
        self._clock = clock
        self._metrics = metrics

    async def publish(self, workspace_id: str, events: Sequence[EventEnvelope]) -> PublishReport:
        """Publish ``events``; returns once they are durable. May raise BusUnavailable."""
        unique: dict[str, EventEnvelope] = {}
        for envelope in events:
            unique.setdefault(envelope.message_id, envelope)
        seen = await self._already_published(workspace_id, list(unique))
        fresh = [e for m, e in unique.items() if m not in seen]
        if fresh:
            with self._metrics.publish_seconds.time():
                await self._bus.publish(
                    [
                        OutgoingRecord(Topic.EVENTS, e.key.encode(), e.model_dump_json().encode())
                        for e in fresh
                    ]
                )
            await self._record(workspace_id, [e.message_id for e in fresh])
        self._metrics.events.labels("published").inc(len(fresh))
        self._metrics.events.labels("duplicate").inc(len(events) - len(fresh))
        return PublishReport(published=len(fresh), duplicates=len(events) - len(fresh))

    async def forget_expired(self, window: timedelta) -> int:
        """Drop ledger entries older than ``window``; a maintenance entry point, so it commits."""
        async with self._sessions() as session:
            removed = await PublishedMessageRepository(session).forget_before(
                self._clock.now() - window
            )
            await session.commit()
        return removed

    async def _already_published(self, workspace_id: str, ids: Collection[str]) -> set[str]:
        try:
            async with self._sessions() as session:
                return await PublishedMessageRepository(session).already_published(
                    workspace_id, ids
                )
        except SQLAlchemyError:
            logger.warning("dedup ledger unreadable; publishing without it", exc_info=True)
            return set()

    async def _record(self, workspace_id: str, message_ids: list[str]) -> None:
        try:
            async with self._sessions() as session:
                await PublishedMessageRepository(session).record(
                    workspace_id, message_ids, self._clock.now()
                )
                await session.commit()
        except SQLAlchemyError:
            logger.warning("dedup ledger not written; events are published", exc_info=True)
