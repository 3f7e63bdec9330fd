"""The subscriptions consumer: ``milepost.triggers`` in its own consumer group
(``milepost-messaging-subscriptions``), fenced like the trigger worker (effects and
applied offsets in one transaction, see :mod:`services.messaging.processing.consumer`),
each batch remembered and fanned out to matching subscriptions."""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.processing.consumer import FencedConsumer, validation_problems
from services.messaging.subscriptions.service import fan_out
from shared.bus import ConsumedRecord
from shared.contracts import Topic, TriggerEnvelope
from shared.errors import InvalidMessage


class SubscriptionsConsumer(FencedConsumer[TriggerEnvelope]):
    topics = (Topic.TRIGGERS,)

    def decode(self, record: ConsumedRecord) -> TriggerEnvelope:
        try:
            return TriggerEnvelope.model_validate_json(record.value)
        except ValidationError as exc:
            raise InvalidMessage(
                f"not a valid trigger envelope: {validation_problems(exc)}"
            ) from exc

    async def apply(
        self, session: AsyncSession, items: list[TriggerEnvelope], now: datetime
    ) -> None:
        await fan_out(session, items, now)
