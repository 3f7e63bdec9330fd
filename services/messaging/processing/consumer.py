"""A consumer-group member whose effects are applied once: the base of the messaging
service's two consumers (contacts from ``milepost.events``, plans from ``milepost.triggers``).

One :meth:`FencedConsumer.step` is poll -> decode -> apply -> checkpoint, in this order:

1. dead letters of malformed records are published and acknowledged (at least once: a
   crash before 2 publishes them again, with the same topic, partition and offset, so a
   reader can tell a copy);
2. one database transaction holds the effects of the batch (contacts, planned deliveries,
   tasks), the ids of the events applied (a consumer that names them: :meth:`sighting`)
   and each input partition's applied offset, fenced against another member having moved
   it;
3. the consumer offsets are committed.

A crash after 2 leaves the applied offsets ahead of the committed ones; the partition's
next owner skips the records below them, so a replay has no effect; an event published
twice (at two offsets) is applied once, by its recorded ``event_id``. A crash before 2 rolls
the whole batch back and it is applied again.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus import Bus, ConsumedRecord, Consumer, OutgoingRecord, TopicPartition
from shared.bus.lag import LagGauge
from shared.clock import Clock
from shared.consuming.dead_letters import dead_letter, log_dead_letter
from shared.consuming.member import PARTITION_MOVED, PASSING, FencedMember, consume
from shared.consuming.metrics import lag_gauge, retries_counter
from shared.consuming.seen import Sighting
from shared.errors import InvalidMessage

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ConsumerMetrics:
    """The counters both messaging consumers share, labelled by consumer group."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "milepost_messaging_records",
            "Input records by consumer group and outcome "
            "(applied, replayed, duplicate, dead_letter).",
            ["group", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "milepost_messaging_dead_letters",
            "Malformed records sent to a dead-letter topic, by that topic.",
            ["topic"],
            registry=registry,
        )
        self.lag = lag_gauge("milepost_messaging_consumer_lag", registry, by_group=True)
        self.retries = retries_counter("milepost_messaging_batch_retries", registry, by_group=True)


class FencedConsumer(ABC, Generic[T]):
    """Consumes its ``topics`` in ``group_id`` until cancelled; subclasses name the topics,
    decode and apply."""

    topics: tuple[str, ...]

    def __init__(
        self,
        *,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        group_id: str,
        metrics: ConsumerMetrics,
        max_batch_records: int = 500,
        poll_timeout_ms: int = 200,
        on_applied: Callable[[], object] | None = None,
    ) -> None:
        self.bus = bus
        self.sessions = sessions
        self.clock = clock
        self.group_id = group_id
        self.consumer_metrics = metrics
        self.max_batch_records = max_batch_records
        self.poll_timeout_ms = poll_timeout_ms
        self.member = FencedMember(bus=bus, sessions=sessions, group_id=group_id)
        self.lag = LagGauge(bus, metrics.lag, group_labels=(group_id,))
        self.ready = asyncio.Event()
        self.on_applied = on_applied
        """Called after a batch's effects are committed (the dispatcher's wake-up)."""

    @abstractmethod
    def decode(self, record: ConsumedRecord) -> T:
        """The record's payload; :class:`InvalidMessage` sends it to the dead-letter topic."""

    @abstractmethod
    async def apply(self, session: AsyncSession, items: list[T], now: datetime) -> None:
        """Write the effects of ``items`` (in record order) in ``session``; flush only."""

    def sighting(self, record: ConsumedRecord, item: T) -> Sighting | None:
        """What deduplicates ``item`` (an event's id at its topic); ``None``: nothing, the
        applied offset alone (the default)."""
        return None

    async def refresh(self) -> None:
        """Before each poll: reload what the consumer caches (a catalog), when due."""

    @property
    def applied(self) -> dict[TopicPartition, int]:
        """The next offset to apply per owned partition, as of the last checkpoint."""
        return self.member.applied

    async def run(self) -> None:
        await consume(self.bus, self.topics, self.group_id, self.step)

    async def step(self, consumer: Consumer) -> int:
        """One poll and its checkpoint; returns how many records it handled. A passing
        failure rolls the batch back and rewinds the consumer to its committed offsets."""
        try:
            await self.refresh()
            records = await consumer.poll(
                max_records=self.max_batch_records, timeout_ms=self.poll_timeout_ms
            )
            await self.member.sync_assignment(consumer)
            if records:
                await self.checkpoint(consumer, records)
            self.ready.set()
            await self.lag.report(self.member.assignment, self.applied)
            return len(records)
        except PARTITION_MOVED as exc:
            await self.roll_back(consumer, "partition_moved", exc)
        except PASSING as exc:
            await self.roll_back(consumer, type(exc).__name__, exc)
            await asyncio.sleep(0.5)
        return 0

    async def roll_back(self, consumer: Consumer, reason: str, exc: Exception) -> None:
        logger.warning(
            "messaging batch rolled back; retrying",
            extra={"group": self.group_id, "reason": reason, "error": str(exc)},
        )
        self.consumer_metrics.retries.labels(self.group_id, reason).inc()
        await self.member.rewind(consumer)

    async def checkpoint(self, consumer: Consumer, records: list[ConsumedRecord]) -> None:
        """Dead letters, then effects and applied offsets in one transaction, then the
        consumer offsets (see the module docstring)."""
        now = self.clock.now()
        moves: dict[TopicPartition, tuple[int | None, int]] = {}
        decoded: list[tuple[ConsumedRecord, T]] = []
        letters: list[OutgoingRecord] = []
        for record in records:
            if not self.member.admit(record, moves):
                self.consumer_metrics.records.labels(self.group_id, "replayed").inc()
                continue
            try:
                decoded.append((record, self.decode(record)))
            except InvalidMessage as exc:
                letters.append(self.dead_letter(record, str(exc), now))
        if letters:
            await self.bus.publish(letters)
        async with self.sessions() as session:
            sifted = await self.member.first_sightings(
                decoded, lambda d: self.sighting(*d), session=session
            )
            duplicates = len(sifted.duplicates)
            self.consumer_metrics.records.labels(self.group_id, "duplicate").inc(duplicates)
            items = [item for _, item in sifted.fresh]
            await self.apply(session, items, now)
            await self.member.hold(session, moves, sightings=sifted.sightings, now=now)
            await session.commit()
        if items and self.on_applied is not None:
            self.on_applied()
        self.consumer_metrics.records.labels(self.group_id, "applied").inc(len(items))
        await self.member.release(consumer, moves)

    def dead_letter(self, record: ConsumedRecord, reason: str, now: datetime) -> OutgoingRecord:
        letter = dead_letter(record, group=self.group_id, reason=reason, now=now)
        self.consumer_metrics.records.labels(self.group_id, "dead_letter").inc()
        self.consumer_metrics.dead_letters.labels(letter.topic).inc()
        log_dead_letter(logger, record, reason, group=self.group_id)
        return letter
