"""The contacts consumer: ``milepost.events`` in its own group, the directory out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contacts import service
from services.messaging.contacts.directory import ContactFacts, OwnerFacts, facts_from
from services.messaging.processing.consumer import FencedConsumer
from shared.bus import ConsumedRecord
from shared.consuming.decoding import decode_json
from shared.contracts import EventEnvelope, Topic


class ContactsWorker(FencedConsumer[ContactFacts | OwnerFacts | None]):
    """Learns contacts from identify, group and CRM contact/account events. A record that
    is no event envelope goes to ``milepost.events.dlq``; any other event is skipped."""

    topics = (Topic.EVENTS,)

    def decode(self, record: ConsumedRecord) -> ContactFacts | OwnerFacts | None:
        return facts_from(decode_json(EventEnvelope, record, name="event envelope"))

    async def apply(
        self, session: AsyncSession, items: list[ContactFacts | OwnerFacts | None], now: datetime
    ) -> None:
        await service.learn(session, [item for item in items if item is not None], now=now)
