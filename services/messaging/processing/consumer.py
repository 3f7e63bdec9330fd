"""A consumer-group member whose effects are applied once: the base of the messaging
service's consumers (contacts from ``milepost.events``, plans and subscriptions from
``milepost.triggers``), a handler of the stream runtime (:mod:`shared.consuming.stream`,
which states the checkpoint order). A batch's effects (contacts, planned deliveries,
tasks) are written in the checkpoint's transaction; messaging has no outbox table, so its
dead letters are published before it.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.settings import MessagingSettings
from shared.bus import Bus, ConsumedRecord
from shared.clock import Clock
from shared.consuming.metrics import lag_gauge, retries_counter, steps_histogram
from shared.consuming.stream import Batch, Handler, Stream, StreamMetrics
from shared.contracts import Topic
from shared.contracts.topics import DLQ_OF

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
        self.steps = steps_histogram("milepost_messaging_step_seconds", registry, by_group=True)


@dataclass(frozen=True, slots=True)
class Polling:
    """How a consumer polls: records per batch at most, the longest wait for any, and how
    long a poll that found fewer waits for more (the stream runtime's hooks)."""

    max_batch_records: int = 500
    poll_timeout_ms: int = 200
    batch_wait_ms: int = 0

    @classmethod
    def of(cls, settings: MessagingSettings) -> Polling:
        return cls(settings.max_batch_records, settings.poll_timeout_ms, settings.batch_wait_ms)


class FencedConsumer(Handler[T, list[T]]):
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
        polling: Polling | None = None,
        on_applied: Callable[[], object] | None = None,
    ) -> None:
        self.bus = bus
        self.sessions = sessions
        self.clock = clock
        self.group_id = group_id
        self.consumer_metrics = metrics
        self.polling = polling or Polling()
        self.on_applied = on_applied
        """Called after a batch's effects are committed (the dispatcher's wake-up)."""
        Stream(
            self,
            bus=bus,
            sessions=sessions,
            clock=clock,
            group_id=group_id,
            topics=self.topics,
            metrics=StreamMetrics(metrics.lag, metrics.retries, metrics.steps, (group_id,)),
        )

    @abstractmethod
    async def apply(self, session: AsyncSession, items: list[T], now: datetime) -> None:
        """Write the effects of ``items`` (in record order) in ``session``; flush only."""

    def effects(self) -> list[T]:
        return []

    def poll_timeout_ms(self) -> int:
        return self.polling.poll_timeout_ms

    def batch_limit(self) -> int:
        return self.polling.max_batch_records

    def batch_wait_ms(self) -> int:
        return self.polling.batch_wait_ms

    def acts_on(self, item: T) -> bool:
        """Whether :meth:`apply` has anything to do for ``item`` (default: yes); a batch
        of items it has nothing to do for writes nothing (its offsets wait for the next
        checkpoint: :meth:`Handler.writes_nothing`)."""
        return True

    async def handle(self, items: Sequence[T], batch: Batch[list[T]]) -> None:
        """Collect the items to apply; count every item applied (once per batch)."""
        batch.effects.extend(item for item in items if self.acts_on(item))
        self.count_outcome("applied", len(items))

    def writes_nothing(self, batch: Batch[list[T]]) -> bool:
        return not batch.effects

    async def write(self, session: AsyncSession, batch: Batch[list[T]]) -> None:
        if batch.effects:
            await self.apply(session, batch.effects, batch.now)

    def wakes(self, batch: Batch[list[T]]) -> bool:
        """Whether ``batch``, committed, calls ``on_applied`` (default: when it applied
        anything)."""
        return bool(batch.effects)

    def committed(self, batch: Batch[list[T]]) -> None:
        if self.on_applied is not None and self.wakes(batch):
            self.on_applied()

    def count(self, record: ConsumedRecord, outcome: str, n: int = 1) -> None:
        self.count_outcome(outcome, n)
        if outcome == "dead_letter":
            self.consumer_metrics.dead_letters.labels(DLQ_OF[Topic(record.topic)]).inc(n)

    def count_outcome(self, outcome: str, n: int) -> None:
        self.consumer_metrics.records.labels(self.group_id, outcome).inc(n)
