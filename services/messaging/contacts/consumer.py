"""The contacts consumer: ``milepost.events`` in its own group, the directory out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contacts import service
from services.messaging.contacts.directory import ContactFacts, OwnerFacts, facts_from
from services.messaging.processing.consumer import FencedConsumer
from services.messaging.tasks import service as tasks
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
    once, and gives an account's ownerless open tasks to the owner it learns (pushed to
    ``crm_url`` when set). A record that is no event envelope goes to
    ``milepost.events.dlq``; any other event is skipped."""

    topics = (Topic.EVENTS,)

    def __init__(self, *, crm_url: str | None = None, **consumer: Any) -> None:
        super().__init__(**consumer)
        self.crm_url = crm_url

    def decode(self, record: ConsumedRecord) -> Learned:
        event = read_event(record)
        return event.event_id, facts_from(event)

    def sighting(self, record: ConsumedRecord, item: Learned) -> Sighting | None:
        """An event's id when it states facts; ``None`` for one that states none (most
        track events): skipping it twice changes nothing, so its id is not stored."""
        event_id, facts = item
        return None if facts is None else Sighting.of(record, event_id)

    def acts_on(self, item: Learned) -> bool:
        return item[1] is not None

    async def apply(self, session: AsyncSession, items: list[Learned], now: datetime) -> None:
        facts = [facts for _, facts in items if facts is not None]
        owners = await service.learn(session, facts, now=now)
        await tasks.assign_owners(session, owners, now=now, crm_url=self.crm_url)
