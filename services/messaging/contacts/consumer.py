"""The contacts consumer: ``milepost.events`` in its own group, the directory out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contacts import service
from services.messaging.contacts.directory import ContactFacts, OwnerFacts, facts_from
from services.messaging.processing.consumer import FencedConsumer
from shared.bus import ConsumedRecord
from shared.consuming.decoding import RecordDecoder
from shared.consuming.seen import Sighting
from shared.contracts import EventEnvelope, Topic
from shared.contracts.events import EventRecord

Learned = tuple[str, ContactFacts | OwnerFacts | None]
"""An event's id and the facts it states."""
read_event = RecordDecoder(EventRecord, EventEnvelope, name="event envelope")


class ContactsConsumer(FencedConsumer[Learned]):
    """Learns contacts from identify, group and CRM contact/account events, each event id
    once. A record that is no event envelope goes to ``milepost.events.dlq``; any other
    event is skipped."""

    topics = (Topic.EVENTS,)

    def decode(self, record: ConsumedRecord) -> Learned:
        event = read_event(record)
        return event.event_id, facts_from(event)

    def sighting(self, record: ConsumedRecord, item: Learned) -> Sighting | None:
        """An event's id when it states facts; ``None`` for one that states none (most
        track events): skipping it twice changes nothing, so its id is not stored."""
        event_id, facts = item
        return None if facts is None else Sighting.of(record, event_id)

    async def apply(self, session: AsyncSession, items: list[Learned], now: datetime) -> None:
        await service.learn(session, [facts for _, facts in items if facts is not None], now=now)
