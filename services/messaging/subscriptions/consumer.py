"""The subscriptions consumer: ``milepost.triggers`` in its own consumer group
(``milepost-messaging-subscriptions``), fenced like the trigger worker (effects and
applied offsets in one transaction, see :mod:`services.messaging.processing.consumer`),
each batch remembered (for replays, ``MILEPOST_MESSAGING_REPLAY_RETENTION_DAYS``) and
fanned out to matching subscriptions."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.processing.consumer import FencedConsumer
from services.messaging.processing.received import ReceivedTrigger, decode_trigger
from services.messaging.subscriptions import repository
from services.messaging.subscriptions.service import fan_out
from shared.bus import ConsumedRecord
from shared.contracts import Topic

logger = logging.getLogger(__name__)


class SubscriptionsConsumer(FencedConsumer[ReceivedTrigger]):
    """Also forgets, about once an hour, the triggers older than ``retention`` (they can no
    longer be replayed)."""

    topics = (Topic.TRIGGERS,)
    prune_interval_seconds = 3600.0

    def __init__(self, *, retention: timedelta, **consumer: Any) -> None:
        super().__init__(**consumer)
        self.retention = retention
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
        await fan_out(session, items, now)
