"""The contacts consumer: ``milepost.events`` in its own group, the directory out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.contacts import service
from services.messaging.contacts.directory import ContactFacts, OwnerFacts, facts_from
from services.messaging.processing.consumer import ConsumerMetrics, FencedConsumer, Polling
from services.messaging.tasks import service as tasks
from shared.bus import Bus, ConsumedRecord
from shared.clock import Clock
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

    def __init__(
        self,
        *,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        group_id: str,
        metrics: ConsumerMetrics,
        polling: Polling | None = None,
        crm_url: str | None = None,
    ) -> None:
        self.crm_url = crm_url
        super().__init__(
            bus=bus,
            sessions=sessions,
            clock=clock,
            group_id=group_id,
            metrics=metrics,
            polling=polling,
        )

    def decode(self, record: ConsumedRecord) -> Learned:
        event = read_event(record)
        return event.event_id, facts_from(event)

    def sighting(self, record: ConsumedRecord, item: Learned) -> Sighting | None:
        """An event's id when it states facts; ``None`` for one that states none (most
        track events): skipping it twice changes nothing, so its id is not stored."""
        event_id, facts = item
        return None if facts is None else Sighting.of(record, event_id)

    async def apply(self, session: AsyncSession, items: list[Learned], now: datetime) -> None:
        facts = [facts for _, facts in items if facts is not None]
        owners = await service.learn(session, facts, now=now)
        await tasks.assign_owners(session, owners, now=now, crm_url=self.crm_url)
