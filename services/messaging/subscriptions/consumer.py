"""The subscriptions consumer: ``milepost.triggers`` in its own consumer group
(``milepost-messaging-subscriptions``), fenced like the trigger worker (effects and
applied offsets in one transaction, see :mod:`services.messaging.processing.consumer`),
each batch remembered (for replays, ``MILEPOST_MESSAGING_REPLAY_RETENTION_DAYS``) and
fanned out to matching subscriptions. With a handoff, the deliveries due at once are stored
leased to this process and handed to its dispatcher once the batch commits
(:mod:`services.messaging.deliveries.handoff`)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.deliveries.handoff import Handed, Handoff
from services.messaging.processing.consumer import FencedConsumer
from services.messaging.processing.received import ReceivedTrigger, decode_trigger
from services.messaging.subscriptions import repository
from services.messaging.subscriptions.service import fan_out
from shared.bus import ConsumedRecord
from shared.consuming.stream import Batch
from shared.contracts import Topic

logger = logging.getLogger(__name__)


class SubscriptionsConsumer(FencedConsumer[ReceivedTrigger]):
    """Also forgets, about once an hour, the triggers older than ``retention`` (they can no
    longer be replayed)."""

    topics = (Topic.TRIGGERS,)
    prune_interval_seconds = 3600.0

    def __init__(
        self, *, retention: timedelta, handoff: Handoff | None = None, **consumer: Any
    ) -> None:
        super().__init__(**consumer)
        self.retention = retention
        self.handoff = handoff
        self.leased: list[Handed] = []
        """What the batch being checkpointed leased (checkpoints run one at a time)."""
        self.pruned_at = float("-inf")

    async def refresh(self) -> None:
        if time.monotonic() - self.pruned_at < self.prune_interval_seconds:
            return
        async with self.sessions() as session:
            forgotten = await repository.forget_triggers_before(
                session, self.clock.now() - self.retention
            )
            await session.commit()
        self.pruned_at = time.monotonic()
        if forgotten:
            logger.info("replay log pruned", extra={"triggers": forgotten})

    def decode(self, record: ConsumedRecord) -> ReceivedTrigger:
        return decode_trigger(record)

    async def apply(
        self, session: AsyncSession, items: list[ReceivedTrigger], now: datetime
    ) -> None:
        handoff = self.handoff
        until = now + handoff.lease if handoff is not None and handoff.accepts() else None
        self.leased = (await fan_out(session, items, now, leased_until=until)).leased

    def committed(self, batch: Batch[list[ReceivedTrigger]]) -> None:
        if self.handoff is not None:
            self.handoff.hand(self.leased)
        self.leased = []
        super().committed(batch)
