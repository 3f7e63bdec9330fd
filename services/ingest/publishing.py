"""Publish accepted events to ``milepost.events``, at most once per message id.

One database transaction per request, which is what makes a 2xx safe:
1. claim the ids in the published-message ledger with one
   ``INSERT ... ON CONFLICT DO NOTHING RETURNING message_id``: the ids it returns are new,
   the others were already published (repeats inside the request count once);
2. publish the new ones and wait for ``acks=all``; on :class:`BusUnavailable` (the
   caller's 503) the transaction rolls back, so nothing is recorded as published. The bus
   bounds the wait (2 s by default) and, once a publish failed, refuses at once until the
   broker answers again, so no request holds its claimed rows long;
3. commit.
The claimed rows stay locked until 3, so a concurrent request with the same id waits and
then counts it as a duplicate (or claims it itself, if the first one rolled back).
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
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.exc import SQLAlchemyError

from services.ingest.deduplication.repository import LedgerClaim, PublishedMessageLedger
from shared.bus import Bus, OutgoingRecord
from shared.clock import Clock
from shared.contracts import EventEnvelope, Topic
from shared.observability.tracing import Tracing

logger = logging.getLogger(__name__)

_EVENTS = Topic.EVENTS.value


class PreparedEvent(NamedTuple):
    """One accepted event, ready for the bus: its dedup id, Kafka key and serialised
    :class:`EventEnvelope`. (A tuple: one is made per event, and a tuple is cheapest.)"""

    message_id: str
    key: bytes
    value: bytes

    @classmethod
    def of(cls, envelope: EventEnvelope) -> PreparedEvent:
        return cls(envelope.message_id, envelope.key.encode(), envelope.model_dump_json().encode())


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
        ledger: PublishedMessageLedger,
        *,
        clock: Clock,
        metrics: IngestMetrics,
        tracing: Tracing,
    ) -> None:
        self._bus = bus
        self._ledger = ledger
        self._clock = clock
        self._metrics = metrics
        self._tracing = tracing

    async def publish(self, workspace_id: str, events: Sequence[PreparedEvent]) -> PublishReport:
        """Publish ``events``; returns once they are durable. May raise BusUnavailable.

        Each record carries the current span's trace context (the request's, with tracing on).
        """
        unique: dict[str, PreparedEvent] = {}
        for envelope in events:
            unique.setdefault(envelope.message_id, envelope)
        claim = self._ledger.open_claim()
        try:
            claimed = await self._claim(claim, workspace_id, unique)
            fresh = (
                list(unique.values())
                if claimed is None
                else [e for m, e in unique.items() if m in claimed]
            )
            if fresh:
                with self._metrics.publish_seconds.time():
                    trace = self._tracing.current_headers()
                    await self._bus.publish(
                        [OutgoingRecord(_EVENTS, e.key, e.value, trace) for e in fresh]
                    )
            if claimed:
                await self._commit(claim)
        finally:
            await self._close(claim)
        self._metrics.events.labels("published").inc(len(fresh))
        self._metrics.events.labels("duplicate").inc(len(events) - len(fresh))
        return PublishReport(published=len(fresh), duplicates=len(events) - len(fresh))

    async def forget_expired(self, window: timedelta) -> int:
        """Drop ledger entries older than ``window``; a maintenance entry point."""
        return await self._ledger.forget_before(self._clock.now() - window)

    async def _claim(
        self, claim: LedgerClaim, workspace_id: str, ids: Collection[str]
    ) -> set[str] | None:
        """The ids new to the ledger, now locked by ``claim``; None when it is unusable."""
        try:
            return await claim.claim(workspace_id, ids, self._clock.now())
        except SQLAlchemyError:
            logger.warning("dedup ledger unusable; publishing without it", exc_info=True)
            return None

    @staticmethod
    async def _commit(claim: LedgerClaim) -> None:
        try:
            await claim.commit()
        except SQLAlchemyError:
            logger.warning("dedup ledger not written; events are published", exc_info=True)

    @staticmethod
    async def _close(claim: LedgerClaim) -> None:
        """Ends the claim; an uncommitted one (the bus failed) is rolled back."""
        try:
            await claim.close()
        except SQLAlchemyError:
            logger.warning("dedup ledger claim did not close cleanly", exc_info=True)
