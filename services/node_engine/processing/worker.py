"""The node engine's consumer: events, re-keyed events and scores in; triggers out.

One loop per process: poll -> decode -> attribute -> transition -> checkpoint, with due
timers handled between polls. :meth:`EngineWorker.checkpoint` spells out the order that
makes every effect exactly-once:

1. one database transaction stores the new account states, their history, new timers,
   the removal of fired timers, memberships, account facts, the outgoing records
   (triggers, re-keyed events, dead letters) in the outbox, the ids of the events applied
   (per input topic) and each input partition's applied offset, fenced against another
   member having moved it;
2. the outbox records are published and acknowledged by the bus;
3. the consumer offsets are committed;
4. the acknowledged outbox rows are deleted (with the next transaction).

A crash after 1 leaves the outbox to the partition's next owner, who publishes it before
anything else; records below the applied offset are skipped, so a replay changes no
state and emits nothing new. An event published twice by ingest (at two offsets) is applied
once: its ``event_id`` was recorded at that stage (``shared.consuming.seen``); the re-keyed
copy of an event is another stage, so it is not taken for a duplicate. Record ids are deterministic, so a record published twice
(a crash between 2 and 4) carries the same trigger id and subscribers drop it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts import repository as accounts
from services.node_engine.accounts.encoding import decode_state, encode_state
from services.node_engine.accounts.identity import Membership, attribute, observation_of
from services.node_engine.accounts.repository import AccountKey, StateKey, UserKey
from services.node_engine.core.facts import fold_facts, scored_facts
from services.node_engine.core.migration import migrate
from services.node_engine.core.state import (
    AccountState,
    Decision,
    Input,
    Timer,
    TimerFired,
    Transition,
)
from services.node_engine.core.transition import transition
from services.node_engine.paths.service import PublishedPath
from services.node_engine.processing.models import OutboxRow
from services.node_engine.processing.steps import (
    Decoded,
    decode,
    rekeyed_record,
    score_update,
    sighting_of,
    source_of,
    trigger_record,
)
from services.node_engine.settings import EngineSettings
from services.node_engine.timers import repository as timers
from shared.bus import Bus, ConsumedRecord, Consumer, TopicPartition
from shared.bus.lag import LagGauge
from shared.clock import Clock
from shared.consuming.dead_letters import dead_letter_entry, log_dead_letter
from shared.consuming.member import PARTITION_MOVED, PASSING, FencedMember, consume
from shared.consuming.metrics import lag_gauge, retries_counter
from shared.consuming.offsets import OffsetConflict
from shared.consuming.outbox import OutboxEntry
from shared.consuming.seen import Sighting
from shared.contracts import Topic
from shared.errors import InvalidMessage
from shared.observability.tracing import Headers, Tracing

logger = logging.getLogger(__name__)

INPUT_TOPICS = (Topic.EVENTS, Topic.ENGINE_REKEYED, Topic.SCORES)
CatalogLoader = Callable[[AsyncSession], Awaitable[Mapping[str, tuple[PublishedPath, ...]]]]


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "milepost_engine_records",
            "Input records by topic and outcome.",
            ["topic", "outcome"],
            registry=registry,
        )
        self.triggers = Counter(
            "milepost_engine_triggers", "Triggers emitted by kind.", ["kind"], registry=registry
        )
        self.condition_failures = Counter(
            "milepost_engine_condition_failures",
            "Conditions that failed on an account's data.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "milepost_engine_batch_seconds",
            "Time to handle and checkpoint one batch.",
            registry=registry,
        )
        self.timers_fired = Counter(
            "milepost_engine_timers_fired", "Timers fired by kind.", ["kind"], registry=registry
        )
        self.timer_lag = Histogram(
            "milepost_engine_timer_fire_lag_seconds",
            "How late a timer fired after its time.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=registry,
        )
        self.timer_backlog = Gauge(
            "milepost_engine_timer_backlog",
            "Timers of the owned partitions that are due and not fired yet.",
            registry=registry,
        )
        self.lag = lag_gauge("milepost_engine_consumer_lag", registry)
        self.retries = retries_counter("milepost_engine_batch_retries", registry)


@dataclass
class Batch:
    """Everything one checkpoint makes durable."""

    states: dict[StateKey, tuple[AccountState, bytes]] = field(default_factory=dict)
    history: list[tuple[AccountState, Transition]] = field(default_factory=list)
    timers: list[tuple[str, str, int, Timer]] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    memberships: dict[UserKey, Membership] = field(default_factory=dict)
    facts: dict[AccountKey, dict[str, Any]] = field(default_factory=dict)
    offsets: dict[TopicPartition, tuple[int | None, int]] = field(default_factory=dict)
    sightings: list[Sighting] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.offsets or self.fired)


class EngineWorker:
    """Consumes the engine's inputs in one consumer group until cancelled."""

    def __init__(
        self,
        *,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: EngineSettings,
        load_catalog: CatalogLoader,
        metrics: EngineMetrics,
        tracing: Tracing | None = None,
    ) -> None:
        self.bus = bus
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.load_catalog = load_catalog
        self.metrics = metrics
        self.tracing = tracing or Tracing.off()
        self.catalog: Mapping[str, tuple[PublishedPath, ...]] = {}
        self.catalog_loaded_at = float("-inf")
        self.states: dict[StateKey, bytes | None] = {}
        """Encoded states of the owned accounts (``None``: not on that path); compact, and
        decoded when an input needs one."""
        self.memberships: dict[UserKey, Membership | None] = {}
        self.facts: dict[AccountKey, dict[str, Any]] = {}
        """Facts of the owned accounts (empty: none known), whatever their enrolment."""
        self.member = FencedMember(
            bus=bus, sessions=sessions, group_id=settings.group_id, outbox=OutboxRow
        )
        self.timers_checked_at = float("-inf")
        self.lag = LagGauge(bus, metrics.lag)
        self.ready = asyncio.Event()

    # -- the loop ----------------------------------------------------------------------

    @property
    def applied(self) -> dict[TopicPartition, int]:
        """The next offset to apply per owned partition, as of the last checkpoint."""
        return self.member.applied

    async def run(self) -> None:
        await consume(self.bus, INPUT_TOPICS, self.settings.group_id, self.step)

    async def step(self, consumer: Consumer) -> int:
        """One poll and its checkpoint; returns how many records and timers it handled.

        A passing failure (database or bus down, partition lost) rolls the batch back:
        the cache is dropped and the consumer rewinds to its committed offsets."""
        try:
            await self.refresh_catalog()
            records = await consumer.poll(
                max_records=self.settings.max_batch_records, timeout_ms=self.poll_timeout_ms()
            )
            if await self.member.sync_assignment(consumer):
                self.states.clear()
                self.facts.clear()
            started = time.perf_counter()
            batch = Batch()
            await self.fire_due_timers(batch)
            await self.handle_records(records, batch)
            if batch:
                await self.checkpoint(consumer, batch)
                self.bound_cache()
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
            else:
                await self.member.forget_acknowledged()
            self.ready.set()
            await self.report_lag()
            return len(records) + len(batch.fired)
        except PARTITION_MOVED as exc:
            await self.roll_back(consumer, "partition_moved", exc)
        except PASSING as exc:
            await self.roll_back(consumer, type(exc).__name__, exc)
            await asyncio.sleep(0.5)
        return 0

    def poll_timeout_ms(self) -> int:
        """Wait for records no longer than until the next due-timer lookup."""
        interval = self.settings.timer_interval_ms / 1000
        until_timers = self.timers_checked_at + interval - time.monotonic()
        return max(1, min(self.settings.poll_timeout_ms, int(max(0.0, until_timers) * 1000)))

    def bound_cache(self) -> None:
        """Forget the least recently loaded half of the states when the cache is full (every
        cached state is durable after a checkpoint, so forgetting loses nothing)."""
        if len(self.states) > self.settings.state_cache_size:
            for key in list(itertools.islice(self.states, len(self.states) // 2)):
                del self.states[key]
        if len(self.facts) > self.settings.state_cache_size:
            for account in list(itertools.islice(self.facts, len(self.facts) // 2)):
                del self.facts[account]

    async def roll_back(self, consumer: Consumer, reason: str, exc: Exception) -> None:
        logger.warning(
            "engine batch rolled back; retrying", extra={"reason": reason, "error": str(exc)}
        )
        self.metrics.retries.labels(reason).inc()
        self.states.clear()
        self.memberships.clear()
        self.facts.clear()
        await self.member.rewind(consumer)

    async def report_lag(self) -> None:
        """Set the lag gauge per owned input partition and the timer backlog (at most every
        few seconds)."""
        if not await self.lag.report(self.member.assignment, self.applied):
            return
        owned = {tp.partition for tp in self.member.assignment if tp.topic == Topic.EVENTS}
        async with self.sessions() as session:
            backlog = await timers.overdue(session, owned, now=int(self.clock.now().timestamp()))
        self.metrics.timer_backlog.set(backlog)

    async def refresh_catalog(self) -> None:
        if time.monotonic() - self.catalog_loaded_at < self.settings.catalog_refresh_seconds:
            return
        async with self.sessions() as session:
            self.catalog = await self.load_catalog(session)
        self.catalog_loaded_at = time.monotonic()

    # -- handling ----------------------------------------------------------------------

    async def handle_records(self, records: list[ConsumedRecord], batch: Batch) -> None:
        now = self.clock.now()
        decoded: list[Decoded] = []
        for record in records:
            if not self.member.admit(record, batch.offsets):
                self.metrics.records.labels(record.topic, "replayed").inc()
                continue
            if record.topic == Topic.ENGINE_REKEYED and self.is_copy(record, batch):
                self.metrics.records.labels(record.topic, "duplicate").inc()
                continue
            try:
                decoded.append(decode(record))
            except InvalidMessage as exc:
                self.to_dead_letters(record, str(exc), batch, now)
        async with self.sessions() as session:  # one read: what was seen, what is known
            decoded = await self.first_sightings(decoded, batch, session)
            await self.load_for(decoded, session)
        for item in decoded:
            if item.event is not None:
                self.handle_event(item, batch, now)
            elif item.score is not None:
                self.handle_score(item, batch, now)

    async def first_sightings(
        self, decoded: list[Decoded], batch: Batch, session: AsyncSession
    ) -> list[Decoded]:
        """``decoded`` less the events already applied at their stage (counted as
        ``duplicate``); their sightings go into the batch."""
        sifted = await self.member.first_sightings(decoded, sighting_of, session=session)
        for item in sifted.duplicates:
            self.metrics.records.labels(item.record.topic, "duplicate").inc()
        batch.sightings = sifted.sightings
        return sifted.fresh

    def is_copy(self, record: ConsumedRecord, batch: Batch) -> bool:
        """Whether a re-keyed record repeats one already applied: per source partition the
        re-keyed copies arrive in source order, so a source offset below the mark is a copy.
        The mark is kept like an applied offset, under a ``<-`` pseudo topic."""
        source = source_of(record)
        if source is None:
            return False
        origin, offset = source
        mark = TopicPartition(f"{Topic.ENGINE_REKEYED}<-{origin}", record.partition)
        applied = self.applied.get(mark)
        previous = batch.offsets.get(mark, (applied, applied))
        if previous[1] is not None and offset < previous[1]:
            return True
        batch.offsets[mark] = (previous[0], offset + 1)
        return False

    def to_dead_letters(
        self, record: ConsumedRecord, reason: str, batch: Batch, now: datetime
    ) -> None:
        self.metrics.records.labels(record.topic, "dead_letter").inc()
        log_dead_letter(logger, record, reason)
        letter = dead_letter_entry(record, group=self.settings.group_id, reason=reason, now=now)
        batch.outbox.append(letter)

    async def load_for(self, decoded: list[Decoded], session: AsyncSession) -> None:
        """Bring the memberships, states and account facts these records need into the
        cache, in bulk, read in ``session``."""
        users: set[UserKey] = set()
        keys: set[StateKey] = set()
        accounts_wanted: set[AccountKey] = set()
        for item in decoded:
            workspace = item.event.workspace_id if item.event else item.score.workspace_id  # type: ignore[union-attr]
            user = item.event.user_id if item.event else None
            account = item.event.account_id if item.event else item.score.account_id  # type: ignore[union-attr]
            if user is not None and (workspace, user) not in self.memberships:
                users.add((workspace, user))
            if account is not None:
                if (workspace, account) not in self.facts:
                    accounts_wanted.add((workspace, account))
                for published in self.catalog.get(workspace, ()):
                    key = (workspace, account, published.path_id)
                    if key not in self.states:
                        keys.add(key)
        if not users and not keys and not accounts_wanted:
            return
        found_members = await accounts.load_memberships(session, users)
        found_states = await accounts.load_states(session, keys)
        found_facts = await accounts.load_facts(session, accounts_wanted)
        for user_key in users:
            self.memberships[user_key] = found_members.get(user_key)
        for key in keys:
            self.states[key] = found_states.get(key)
        for wanted in accounts_wanted:
            self.facts[wanted] = found_facts.get(wanted, {})

    def handle_event(self, item: Decoded, batch: Batch, now: datetime) -> None:
        event = item.event
        assert event is not None
        record = item.record
        with self.tracing.span(
            "engine apply event", parent=record.headers, attributes={"event.id": event.event_id}
        ) as carry:
            user = (event.workspace_id, event.user_id or "")
            attribution = attribute(event, self.memberships.get(user))
            if attribution.learned is not None and event.user_id is not None:
                self.memberships[user] = batch.memberships[user] = attribution.learned
            account = attribution.account_id
            if account is None:
                self.metrics.records.labels(record.topic, "unattributed").inc()
                return
            if event.account_id is None:
                rekeyed = rekeyed_record(event, account, record, carry)
                batch.outbox.append((f"rekey:{event.event_id}", record.partition, rekeyed))
                self.metrics.records.labels(record.topic, "rekeyed").inc()
                return
            observation = observation_of(event, account, attribution.actor_roles)
            known = self.remember((event.workspace_id, account), observation.facts, batch)
            for published in self.catalog.get(event.workspace_id, ()):
                self.apply(
                    published, account, observation, record.partition, batch, now, carry, known
                )
        self.metrics.records.labels(record.topic, "applied").inc()

    def handle_score(self, item: Decoded, batch: Batch, now: datetime) -> None:
        score = item.score
        assert score is not None
        update = score_update(score)
        self.remember((score.workspace_id, score.account_id), scored_facts(update.values), batch)
        for published in self.catalog.get(score.workspace_id, ()):
            if (
                self.states.get((score.workspace_id, score.account_id, published.path_id))
                is not None
            ):
                self.apply(published, score.account_id, update, item.record.partition, batch, now)
        self.metrics.records.labels(item.record.topic, "applied").inc()

    def remember(
        self, account: AccountKey, stated: Mapping[str, Any], batch: Batch
    ) -> Mapping[str, Any]:
        """Fold ``stated`` into the account's facts (kept whatever its enrolment); returns
        the facts known before."""
        known = self.facts.get(account, {})
        if stated:
            self.facts[account] = batch.facts[account] = fold_facts(known, stated)
        return known

    def apply(
        self,
        published: PublishedPath,
        account: str,
        event: Input,
        partition: int,
        batch: Batch,
        now: datetime,
        carry: Headers = (),
        known: Mapping[str, Any] | None = None,
    ) -> None:
        """Run the pure core for one account on one path and collect its effects; its
        triggers carry the trace context ``carry``; ``known`` are the account's facts from
        before ``event`` (for an enrolment)."""
        key = (published.workspace_id, account, published.path_id)
        state = self.state_of(key)
        decisions: list[tuple[AccountState | None, Decision]] = []
        if (
            state is not None
            and state.path_version != published.current.version
            and published.migration != "pin"
            and not published.paused
        ):
            moved = migrate(
                state,
                to=published.current,
                policy=published.migration,
                node_map=published.node_map,
                now=now,
            )
            decisions.append((state, moved))
            state = moved.state
        path = published.current if state is None else published.versions[state.path_version]
        decision = transition(state, event, path=path, now=now, hold=published.paused, known=known)
        decisions.append((state, decision))
        for before, outcome in decisions:
            self.collect(key, before, outcome, partition, batch, carry)

    def state_of(self, key: StateKey) -> AccountState | None:
        data = self.states.get(key)
        return None if data is None else decode_state(data)

    def collect(
        self,
        key: StateKey,
        before: AccountState | None,
        decision: Decision,
        partition: int,
        batch: Batch,
        carry: Headers,
    ) -> None:
        state = decision.state
        if state is None or (state is before and not decision.transitions):
            return
        encoded = encode_state(state)
        self.states[key] = encoded
        batch.states[key] = (state, encoded)
        for step in decision.transitions:
            batch.history.append((state, step))
            kind = step.trigger_kind
            if kind is not None:
                batch.outbox.append((step.id, partition, trigger_record(state, step, carry)))
                self.metrics.triggers.labels(kind.value).inc()
            elif step.kind.value == "condition_failed":
                self.metrics.condition_failures.inc()
        for timer in decision.timers:
            batch.timers.append((state.workspace_id, state.account_id, partition, timer))

    async def fire_due_timers(self, batch: Batch) -> None:
        """Handle the timers due now on the owned partitions (at most one lookup per
        ``timer_interval_ms``)."""
        interval = self.settings.timer_interval_ms / 1000
        if time.monotonic() - self.timers_checked_at < interval:
            return
        self.timers_checked_at = time.monotonic()
        owned = {tp.partition for tp in self.member.assignment if tp.topic == Topic.EVENTS}
        now = self.clock.now()
        seconds = int(now.timestamp())
        async with self.sessions() as session:
            due = await timers.due(
                session, owned, now=seconds, limit=self.settings.max_timers_per_batch
            )
        if not due:
            return
        keys = {(d.workspace_id, d.account_id, d.timer.path_id) for d in due} - self.states.keys()
        if keys:
            async with self.sessions() as session:
                found = await accounts.load_states(session, keys)
            for key in keys:
                self.states[key] = found.get(key)
        paths = {(p.workspace_id, p.path_id): p for ps in self.catalog.values() for p in ps}
        for entry in due:
            batch.fired.append(entry.timer.id)
            self.metrics.timers_fired.labels(entry.timer.kind.value).inc()
            self.metrics.timer_lag.observe(max(0.0, now.timestamp() - entry.timer.due_at))
            published = paths.get((entry.workspace_id, entry.timer.path_id))
            state = self.state_of((entry.workspace_id, entry.account_id, entry.timer.path_id))
            if published is None or state is None or state.path_version not in published.versions:
                continue
            command: Input = entry.move or TimerFired(entry.timer)
            self.apply(published, entry.account_id, command, entry.partition, batch, now)

    # -- the checkpoint ----------------------------------------------------------------

    async def checkpoint(self, consumer: Consumer, batch: Batch) -> None:
        """Make the batch durable, then publish it, then commit the offsets (see the module
        docstring for why this order is exactly-once)."""
        now = self.clock.now()
        async with self.sessions() as session:
            await accounts.save_states(session, list(batch.states.values()), now=now)
            await accounts.append_transitions(session, batch.history)
            await accounts.save_memberships(session, batch.memberships, now=now)
            await accounts.save_facts(session, batch.facts, now=now)
            await timers.schedule(session, batch.timers)
            if await timers.remove(session, batch.fired) != len(batch.fired):
                raise OffsetConflict("timers were fired by another member")
            await self.member.hold(
                session, batch.offsets, batch.outbox, sightings=batch.sightings, now=now
            )
            await session.commit()
        await self.member.release(consumer, batch.offsets, batch.outbox)
