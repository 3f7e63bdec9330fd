"""The node engine's consumer: attributed events and scores in; triggers out.

A handler of the stream runtime (:mod:`shared.consuming.stream`, which states the
checkpoint order that makes every effect exactly-once): decode -> transition, with due
timers fired between polls. Events come attributed to their account, once each, from the
attribution stage (:mod:`shared.attribution`) on ``milepost.accounts.events``, keyed by
account like the scores, so partition p of both belongs to one member. A checkpoint's
transaction stores the new account states, their history, new timers, the removal of fired
timers, account facts and the outgoing records (triggers, dead letters) in the outbox.
Trigger ids are deterministic, so a trigger published twice carries the same id and
subscribers drop it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts import repository as accounts
from services.node_engine.accounts.encoding import decode_state, encode_state
from services.node_engine.accounts.identity import observation_of
from services.node_engine.accounts.repository import AccountKey, StateKey
from services.node_engine.core.facts import fold_facts, scored_facts
from services.node_engine.core.migration import migrate
from services.node_engine.core.state import (
    AccountState,
    Decision,
    Input,
    Timer,
    TimerFired,
    Transition,
    TransitionKind,
)
from services.node_engine.core.transition import transition
from services.node_engine.paths.service import PublishedPath
from services.node_engine.processing.models import OutboxRow
from services.node_engine.processing.steps import (
    Decoded,
    decode,
    score_update,
    sighting_of,
    trigger_record,
)
from services.node_engine.settings import EngineSettings
from services.node_engine.timers import repository as timers
from services.node_engine.timers.repository import DueTimer
from shared.bus import Bus, ConsumedRecord
from shared.clock import Clock
from shared.consuming.metrics import lag_gauge, retries_counter, steps_histogram
from shared.consuming.offsets import OffsetConflict
from shared.consuming.seen import Sighting
from shared.consuming.stream import Batch as StreamBatch
from shared.consuming.stream import ServiceHandler, uncached
from shared.contracts import Topic
from shared.observability.tracing import Headers, Tracing

logger = logging.getLogger(__name__)

INPUT_TOPICS = (Topic.ACCOUNT_EVENTS, Topic.SCORES)
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
        self.steps = steps_histogram("milepost_engine_step_seconds", registry)
        self.children: dict[tuple[str, ...], Counter] = {}

    def records_of(self, topic: str, outcome: str) -> Counter:
        """The ``records`` counter of (topic, outcome), looked up once (``labels()``
        validates its arguments on every call: microseconds per record)."""
        return self.child(self.records, "records", topic, outcome)

    def triggers_of(self, kind: str) -> Counter:
        """The ``triggers`` counter of ``kind``, looked up once."""
        return self.child(self.triggers, "triggers", kind)

    def child(self, counter: Counter, name: str, *labels: str) -> Counter:
        found = self.children.get((name, *labels))
        if found is None:
            found = self.children[(name, *labels)] = counter.labels(*labels)
        return found


@dataclass
class Effects:
    """Everything one checkpoint writes besides the stream's own bookkeeping."""

    states: dict[StateKey, tuple[AccountState, bytes]] = field(default_factory=dict)
    history: list[tuple[AccountState, Transition, int]] = field(default_factory=list)
    """The transitions, each with the state after it and its input partition."""
    timers: list[tuple[str, str, int, Timer]] = field(default_factory=list)
    due: list[DueTimer] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    facts: dict[AccountKey, dict[str, Any]] = field(default_factory=dict)
    applied: Tally[str] = field(default_factory=Tally)
    """Records applied per input topic, counted into the metrics once per batch."""
    triggered: Tally[str] = field(default_factory=Tally)
    """Triggers emitted per kind, counted into the metrics once per batch."""

    def __bool__(self) -> bool:
        return bool(self.fired)


Batch = StreamBatch[Effects]


class EngineWorker(ServiceHandler[Decoded, Effects]):
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
        self.facts: dict[AccountKey, dict[str, Any]] = {}
        """Facts of the owned accounts (empty: none known), whatever their enrolment."""
        self.timers_checked_at = float("-inf")
        self.firing: frozenset[str] = frozenset()
        """The timers the last batch fired: its checkpoint, maybe still in flight, deletes
        them, so the next due-timer lookup leaves them out."""
        self.attach_stream(INPUT_TOPICS, OutboxRow, settings, metrics)

    # -- the stream's hooks ------------------------------------------------------------

    def effects(self) -> Effects:
        return Effects()

    def decode(self, record: ConsumedRecord) -> Decoded:
        return decode(record)

    def sighting(self, record: ConsumedRecord, item: Decoded) -> Sighting | None:
        return sighting_of(item)

    def batch_limit(self) -> int:
        return self.settings.max_batch_records

    def batch_wait_ms(self) -> int:
        return self.settings.batch_wait_ms

    def poll_timeout_ms(self) -> int:
        """Wait for records no longer than until the next due-timer lookup."""
        interval = self.settings.timer_interval_ms / 1000
        until_timers = self.timers_checked_at + interval - time.monotonic()
        return max(1, min(self.settings.poll_timeout_ms, int(max(0.0, until_timers) * 1000)))

    def count(self, record: ConsumedRecord, outcome: str, n: int = 1) -> None:
        self.metrics.records_of(record.topic, outcome).inc(n)

    def reset(self) -> None:
        self.states.clear()
        self.facts.clear()
        self.firing = frozenset()

    def overlaps_checkpoints(self) -> bool:
        """Yes: the cache holds every effect until it is durable (:meth:`load` forgets only
        once the checkpoint in flight committed, and looks up due timers leaving out those
        that checkpoint fired)."""
        return True

    def committed(self, batch: Batch) -> None:
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)

    def spent(self, effects: Effects) -> tuple[list[Any] | dict[Any, Any], ...]:
        """The batch's rows: the cache keeps the states and facts it needs, not these."""
        return effects.history, effects.states, effects.timers, effects.facts, effects.due

    def cache_full(self) -> bool:
        limit = self.settings.state_cache_size
        return len(self.states) > limit or len(self.facts) > limit

    def bound_cache(self) -> None:
        """Forget the least recently loaded half of the states when the cache is full (with
        no checkpoint in flight every cached state is durable, so forgetting loses
        nothing)."""
        if len(self.states) > self.settings.state_cache_size:
            for key in list(itertools.islice(self.states, len(self.states) // 2)):
                del self.states[key]
        if len(self.facts) > self.settings.state_cache_size:
            for account in list(itertools.islice(self.facts, len(self.facts) // 2)):
                del self.facts[account]

    async def reported(self) -> None:
        """Set the timer backlog of the owned partitions (with the lag)."""
        owned = {tp.partition for tp in self.member.assignment if tp.topic == Topic.ACCOUNT_EVENTS}
        async with self.sessions() as session:
            backlog = await timers.overdue(session, owned, now=int(self.clock.now().timestamp()))
        self.metrics.timer_backlog.set(backlog)

    async def refresh(self) -> None:
        await self.refresh_catalog()

    async def refresh_catalog(self) -> None:
        if time.monotonic() - self.catalog_loaded_at < self.settings.catalog_refresh_seconds:
            return
        async with self.sessions() as session:
            self.catalog = await self.load_catalog(session)
        self.catalog_loaded_at = time.monotonic()

    # -- handling ----------------------------------------------------------------------

    async def load(self, session: AsyncSession, items: Sequence[Decoded], batch: Batch) -> None:
        """The timers due now (at most one lookup per ``timer_interval_ms``), then the
        states and facts of ``items`` and of those timers, in bulk. Forgetting part of a
        full cache first waits for the checkpoint in flight (its states are durable only
        once it is done); the lookup does not: it leaves out the timers that checkpoint
        fired and deletes (:attr:`firing`), and a timer it schedules is found by a later
        lookup."""
        if self.cache_full():
            await self.stream.wait_committed()
            self.bound_cache()
        batch.effects.due = await self.due_timers(session) if self.timers_due() else []
        batch.handled += len(batch.effects.due)
        keys = {(d.workspace_id, d.account_id, d.timer.path_id) for d in batch.effects.due}
        await self.load_for(items, session, keys)

    def timers_due(self) -> bool:
        """Whether ``timer_interval_ms`` passed since the last lookup of due timers."""
        interval = self.settings.timer_interval_ms / 1000
        return time.monotonic() - self.timers_checked_at >= interval

    async def due_timers(self, session: AsyncSession) -> list[DueTimer]:
        self.timers_checked_at = time.monotonic()
        owned = {tp.partition for tp in self.member.assignment if tp.topic == Topic.ACCOUNT_EVENTS}
        seconds = int(self.clock.now().timestamp())
        return await timers.due(
            session,
            owned,
            now=seconds,
            limit=self.settings.max_timers_per_batch,
            fired=self.firing,
        )

    async def load_for(
        self, decoded: Sequence[Decoded], session: AsyncSession, keys: Set[StateKey] = frozenset()
    ) -> None:
        """Bring the states and account facts these records need (and the states ``keys``)
        into the cache, in bulk, read in ``session``."""
        wanted = uncached(keys, self.states)
        accounts_wanted: set[AccountKey] = set()
        for item in decoded:
            source = item.event or item.score
            assert source is not None
            workspace, account = source.workspace_id, source.account_id
            if (workspace, account) not in self.facts:
                accounts_wanted.add((workspace, account))
            for published in self.catalog.get(workspace, ()):
                key = (workspace, account, published.path_id)
                if key not in self.states:
                    wanted.add(key)
        if not wanted and not accounts_wanted:
            return
        found_states = await accounts.load_states(session, wanted)
        found_facts = await accounts.load_facts(session, accounts_wanted)
        for key in wanted:
            self.states[key] = found_states.get(key)
        for account_key in accounts_wanted:
            self.facts[account_key] = found_facts.get(account_key, {})

    async def handle(self, items: Sequence[Decoded], batch: Batch) -> None:
        """Fire the due timers, then apply the records in order; count what was applied
        and triggered (once per batch: a labelled counter's increment takes a lock)."""
        await self.fire(batch)
        self.firing = frozenset(batch.effects.fired)
        for item in items:
            await batch.pause()
            if item.event is not None:
                self.handle_event(item, batch)
            elif item.score is not None:
                self.handle_score(item, batch)
        effects = batch.effects
        for topic, n in effects.applied.items():
            self.metrics.records_of(topic, "applied").inc(n)
        for kind, n in effects.triggered.items():
            self.metrics.triggers_of(kind).inc(n)

    def handle_event(self, item: Decoded, batch: Batch) -> None:
        event = item.event
        assert event is not None
        record = item.record
        with self.tracing.span(
            "engine apply event", parent=record.headers, attributes={"event.id": event.event_id}
        ) as carry:
            account = event.account_id
            observation = observation_of(event, account, frozenset(event.actor_roles))
            known = self.remember((event.workspace_id, account), observation.facts, batch)
            for published in self.catalog.get(event.workspace_id, ()):
                self.apply(published, account, observation, record.partition, batch, carry, known)
        batch.effects.applied[record.topic] += 1

    def handle_score(self, item: Decoded, batch: Batch) -> None:
        score = item.score
        assert score is not None
        update = score_update(score)
        self.remember((score.workspace_id, score.account_id), scored_facts(update.values), batch)
        for published in self.catalog.get(score.workspace_id, ()):
            if (
                self.states.get((score.workspace_id, score.account_id, published.path_id))
                is not None
            ):
                self.apply(published, score.account_id, update, item.record.partition, batch)
        batch.effects.applied[item.record.topic] += 1

    def remember(
        self, account: AccountKey, stated: Mapping[str, Any], batch: Batch
    ) -> Mapping[str, Any]:
        """Fold ``stated`` into the account's facts (kept whatever its enrolment); returns
        the facts known before."""
        known = self.facts.get(account, {})
        if stated:
            self.facts[account] = batch.effects.facts[account] = fold_facts(known, stated)
        return known

    def apply(
        self,
        published: PublishedPath,
        account: str,
        event: Input,
        partition: int,
        batch: Batch,
        carry: Headers = (),
        known: Mapping[str, Any] | None = None,
    ) -> None:
        """Run the pure core for one account on one path and collect its effects; its
        triggers carry the trace context ``carry``; ``known`` are the account's facts from
        before ``event`` (for an enrolment)."""
        key = (published.workspace_id, account, published.path_id)
        now = batch.now
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
        batch.effects.states[key] = (state, encoded)
        for step in decision.transitions:
            batch.effects.history.append((state, step, partition))
            kind = step.trigger_kind
            if kind is not None:
                batch.outbox.append((step.id, partition, trigger_record(state, step, carry)))
                batch.effects.triggered[kind] += 1
            elif step.kind is TransitionKind.CONDITION_FAILED:
                self.metrics.condition_failures.inc()
        for timer in decision.timers:
            batch.effects.timers.append((state.workspace_id, state.account_id, partition, timer))

    async def fire(self, batch: Batch) -> None:
        """Apply the batch's due timers (and manual moves) to their accounts."""
        paths = {(p.workspace_id, p.path_id): p for ps in self.catalog.values() for p in ps}
        now = batch.now
        for entry in batch.effects.due:
            await batch.pause()
            batch.effects.fired.append(entry.timer.id)
            self.metrics.timers_fired.labels(entry.timer.kind.value).inc()
            self.metrics.timer_lag.observe(max(0.0, now.timestamp() - entry.timer.due_at))
            published = paths.get((entry.workspace_id, entry.timer.path_id))
            state = self.state_of((entry.workspace_id, entry.account_id, entry.timer.path_id))
            if published is None or state is None or state.path_version not in published.versions:
                continue
            command: Input = entry.move or TimerFired(entry.timer)
            self.apply(published, entry.account_id, command, entry.partition, batch)

    # -- the checkpoint ----------------------------------------------------------------

    async def write(self, session: AsyncSession, batch: Batch) -> None:
        """The batch's states, history, facts and timers; a timer another member fired
        first loses this one the partition."""
        effects, now = batch.effects, batch.now
        await accounts.save_states(session, list(effects.states.values()), now=now)
        await accounts.append_transitions(session, effects.history)
        await accounts.save_facts(session, effects.facts, now=now)
        await timers.schedule(session, effects.timers)
        if await timers.remove(session, effects.fired) != len(effects.fired):
            raise OffsetConflict("timers were fired by another member")
