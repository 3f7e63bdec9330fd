"""The attribution stage: ``milepost.events`` in, ``milepost.accounts.events`` out.

A handler of the stream runtime (:mod:`shared.consuming.stream`, which states the
checkpoint order that makes every effect exactly-once), in a consumer group of its own.
Each event is attributed with the rules of :mod:`shared.identity`: an event naming its
account belongs to it, an event with only a user id belongs to the account its user joined.
The memberships an event teaches are kept (``attribution_memberships``); an event that can
be placed is published once on ``milepost.accounts.events``, keyed by its account, as an
:class:`~shared.contracts.AccountEvent` (written as its record struct) carrying the acting user's roles; an event of a user
not known yet (or with no user and no account) is counted as ``unattributed`` and left out.

A checkpoint's transaction stores the memberships learned and the attributed events in the
outbox. An event published twice on ``milepost.events`` is attributed once (its id at this
stage, :mod:`shared.consuming.seen`). Each attributed event carries its origin, the input
record's position (:mod:`shared.consuming.origins`): one published twice (a crash between
the publish and the outbox's deletion) comes at or below its readers' mark for that origin,
and they drop the copy without a row per event. The source record's headers (the trace
context) travel with it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.attribution import repository as memberships
from shared.attribution.models import AttributionOutboxRow
from shared.attribution.repository import UserKey
from shared.attribution.settings import AttributionSettings
from shared.bus import Bus, ConsumedRecord, OutgoingRecord
from shared.clock import Clock
from shared.consuming.decoding import RecordDecoder
from shared.consuming.metrics import lag_gauge, retries_counter, steps_histogram
from shared.consuming.origins import with_origin
from shared.consuming.seen import Sighting
from shared.consuming.stream import Batch as StreamBatch
from shared.consuming.stream import ServiceHandler, uncached
from shared.contracts import ContactRole, EventEnvelope, Topic
from shared.contracts.events import AccountEventRecord, EventRecord
from shared.identity import Attribution, Membership, attribute
from shared.runtime import Resources

INPUT_TOPICS = (Topic.EVENTS,)

read_event = RecordDecoder(EventRecord, EventEnvelope, name="event envelope")


class AttributionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "milepost_attribution_records",
            "Input events by outcome (attributed, unattributed, replayed, duplicate, dead_letter).",
            ["outcome"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "milepost_attribution_batch_seconds",
            "Time to attribute and checkpoint one batch.",
            registry=registry,
        )
        self.lag = lag_gauge("milepost_attribution_consumer_lag", registry)
        self.retries = retries_counter("milepost_attribution_batch_retries", registry)
        self.steps = steps_histogram("milepost_attribution_step_seconds", registry)


@dataclass(frozen=True, slots=True)
class Received:
    """An event as read from its record."""

    record: ConsumedRecord
    event: EventRecord


@dataclass
class Effects:
    """The memberships one checkpoint writes (besides the stream's own bookkeeping)."""

    memberships: dict[UserKey, Membership] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.memberships)


Batch = StreamBatch[Effects]


class AttributionStage(ServiceHandler[Received, Effects]):
    """Attributes ``milepost.events`` in its own consumer group until cancelled."""

    def __init__(
        self,
        *,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: AttributionSettings,
        metrics: AttributionMetrics,
    ) -> None:
        self.bus, self.sessions, self.clock = bus, sessions, clock
        self.settings = settings
        self.metrics = metrics
        self.memberships: dict[UserKey, Membership] = {}
        """The known memberships of the users seen. A user not known is looked up again
        with the next batch of theirs: another member may have learned the membership."""
        self.attach_stream(INPUT_TOPICS, AttributionOutboxRow, settings, metrics)

    # -- the stream's hooks ------------------------------------------------------------

    def effects(self) -> Effects:
        return Effects()

    def decode(self, record: ConsumedRecord) -> Received:
        return Received(record, read_event(record))

    def sighting(self, record: ConsumedRecord, item: Received) -> Sighting | None:
        return Sighting.of(record, item.event.event_id)

    def batch_limit(self) -> int:
        return self.settings.max_batch_records

    def poll_timeout_ms(self) -> int:
        return self.settings.poll_timeout_ms

    def batch_wait_ms(self) -> int:
        return self.settings.batch_wait_ms

    def count(self, record: ConsumedRecord, outcome: str, n: int = 1) -> None:
        self.metrics.records.labels(outcome).inc(n)

    def reset(self) -> None:
        self.memberships.clear()

    def committed(self, batch: Batch) -> None:
        """Forget the memberships when the cache is full (every one is durable now)."""
        if len(self.memberships) > self.settings.membership_cache_size:
            self.memberships.clear()
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)

    async def load(self, session: AsyncSession, items: Sequence[Received], batch: Batch) -> None:
        """The memberships of the users of ``items`` not in the cache, in one read."""
        users = {
            (item.event.workspace_id, item.event.user_id)
            for item in items
            if item.event.user_id is not None
        }
        wanted = uncached(users, self.memberships)
        if wanted:
            self.memberships.update(await memberships.load_memberships(session, wanted))

    async def handle(self, items: Sequence[Received], batch: Batch) -> None:
        """Attribute ``items`` in order: learn memberships, publish the attributed events."""
        for item in items:
            await batch.pause()
            event, record = item.event, item.record
            user = (event.workspace_id, event.user_id) if event.user_id is not None else None
            attribution = attribute(event, self.memberships.get(user) if user else None)
            if attribution.learned is not None and user is not None:
                self.memberships[user] = batch.effects.memberships[user] = attribution.learned
            if attribution.account_id is None:
                self.count(record, "unattributed")
                continue
            attributed = account_event_record(
                event, attribution, with_origin(record.headers, record)
            )
            batch.outbox.append((f"attributed:{event.event_id}", record.partition, attributed))
            self.count(record, "attributed")

    async def write(self, session: AsyncSession, batch: Batch) -> None:
        await memberships.save_memberships(session, batch.effects.memberships, now=batch.now)


def account_event_record(
    event: EventRecord, attribution: Attribution, headers: Sequence[tuple[str, bytes]] = ()
) -> OutgoingRecord:
    """The ``milepost.accounts.events`` record of ``event`` as ``attribution`` placed it
    (its account must be known), carrying ``headers``. Pure."""
    assert attribution.account_id is not None
    attributed = AccountEventRecord(
        **{
            **msgspec.structs.asdict(event),
            "account_id": attribution.account_id,
            "actor_roles": [ContactRole(role) for role in sorted(attribution.actor_roles)],
            "joined": attribution.learned is not None,
        }
    )
    return OutgoingRecord(
        Topic.ACCOUNT_EVENTS,
        attributed.key.encode(),
        msgspec.json.encode(attributed),
        tuple(headers),
    )


def attribution_stage(
    resources: Resources, settings: AttributionSettings | None = None
) -> AttributionStage:
    """The stage on ``resources``, with its metrics in their registry."""
    return AttributionStage(
        bus=resources.bus,
        sessions=resources.sessions,
        clock=resources.clock,
        settings=settings or AttributionSettings(),
        metrics=AttributionMetrics(resources.registry),
    )
