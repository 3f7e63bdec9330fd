"""The scoring consumer: events in, score events out.

One loop per process: poll -> decode -> attribute -> fold -> score -> checkpoint, with a
sweep between polls that re-scores accounts no event touched for a while.
:meth:`ScoringWorker.checkpoint` spells out the order that makes every effect exactly-once:

1. one database transaction stores the touched accounts (metric store, facts, current
   score; fenced by their revision), their new score events in the history, the
   memberships learned, the outgoing records (score events, dead letters) in the outbox,
   the ids of the events applied and each input partition's applied offset, fenced
   against another member having moved it;
2. the outbox records are published and acknowledged by the bus;
3. the consumer offsets are committed;
4. the acknowledged outbox rows are deleted (with the next transaction).

A crash after 1 leaves the outbox to the partition's next owner, who publishes it before
anything else; records below the applied offset are skipped, so a replay folds nothing
twice and emits nothing new; an event published twice by ingest (at two offsets) is folded
once, its ``event_id`` being recorded (``shared.consuming.seen``). Score event ids are deterministic, so a record published twice
(a crash between 2 and 4) carries the same id.

Attribution: an event with an account id belongs to that account. An event with only a
user id belongs to the account the user joined, learned from group calls, identify calls
that name an account and CRM contacts (the same rules as the node engine's); an event of a
user not known yet is counted as ``unattributed`` and left out. Such an event arrives on the
user's partition, so its account may be written by two members: each account row carries a
revision, and a write that finds another revision rolls the batch back and retries it.

State lost is rebuilt by replaying ``milepost.events`` from the start into an empty
database: folding is order-independent within a day bucket, so the metrics and the current
scores come out the same (docs/scoring.md, Operations).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts.identity import Membership, attribute, observation_of
from services.node_engine.core.transition import transition
from services.node_engine.paths.compiled import GrowthPath
from services.node_engine.paths.service import PublishedPath
from services.scoring.accounts import repository as accounts
from services.scoring.accounts.repository import AccountKey, AccountMoved, StoredAccount, UserKey
from services.scoring.catalog.service import PublishedDefinitions, reference_definitions
from services.scoring.definitions import MetricEvent
from services.scoring.diagnostics import PeerStanding
from services.scoring.errors import EventValueInvalid, StoreCorrupt
from services.scoring.evaluation.evaluate import (
    Findings,
    ScoringConfig,
    evaluate,
    risk_from_json,
    risk_to_json,
)
from services.scoring.evaluation.facts import (
    AccountFacts,
    facts_from_json,
    facts_to_json,
    numeric,
    stated_facts,
    with_event,
)
from services.scoring.evaluation.peers import PeerBook
from services.scoring.health import Band
from services.scoring.metrics import MetricStore, encode, fold, prune
from services.scoring.metrics import decode as decode_store
from services.scoring.processing.models import ScoringOutboxRow
from services.scoring.settings import ScoringSettings
from shared.bus import Bus, ConsumedRecord, Consumer, OutgoingRecord, TopicPartition
from shared.bus.lag import LagGauge
from shared.clock import Clock
from shared.consuming.dead_letters import dead_letter_entry, log_dead_letter
from shared.consuming.decoding import decode_json
from shared.consuming.member import PARTITION_MOVED, PASSING, FencedMember, consume
from shared.consuming.metrics import lag_gauge, retries_counter
from shared.consuming.outbox import OutboxEntry
from shared.consuming.seen import Sighting
from shared.contracts import EventEnvelope, ScoreEnvelope, Topic
from shared.errors import InvalidMessage

logger = logging.getLogger(__name__)

SWEEP_CHECK_SECONDS = 60.0
INPUT_TOPICS = (Topic.EVENTS,)
CatalogLoader = Callable[[AsyncSession], Awaitable[Mapping[str, PublishedDefinitions]]]
PathLoader = Callable[[AsyncSession], Awaitable[Mapping[str, tuple[PublishedPath, ...]]]]


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "milepost_scoring_records",
            "Input records by outcome (scored, unattributed, replayed, duplicate, dead_letter).",
            ["outcome"],
            registry=registry,
        )
        self.score_events = Counter(
            "milepost_scoring_score_events",
            "Score events emitted by kind.",
            ["kind"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "milepost_scoring_dead_letters",
            "Records sent to the dead-letter topic.",
            registry=registry,
        )
        self.lag = lag_gauge("milepost_scoring_consumer_lag", registry)
        self.batch_seconds = Histogram(
            "milepost_scoring_batch_seconds",
            "Time to fold, score and checkpoint one batch.",
            registry=registry,
        )
        self.event_age = Histogram(
            "milepost_scoring_event_age_seconds",
            "From an event's receipt by ingest to its score being durable.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
        self.swept = Counter(
            "milepost_scoring_swept_accounts",
            "Accounts re-scored by the sweep (no new event).",
            registry=registry,
        )
        self.retries = retries_counter("milepost_scoring_batch_retries", registry)


@dataclass
class Account:
    """An account held in memory: its state, and the revision stored in the database."""

    stored_revision: int | None
    partition: int
    store: MetricStore
    facts: AccountFacts
    findings: Findings


@dataclass
class Batch:
    """Everything one checkpoint makes durable."""

    touched: dict[AccountKey, str] = field(default_factory=dict)
    """Account -> the cause of its evaluation (the last event's id, or the sweep)."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[AccountKey, int | None] = field(default_factory=dict)
    history: list[ScoreEnvelope] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    memberships: dict[UserKey, Membership] = field(default_factory=dict)
    offsets: dict[TopicPartition, tuple[int | None, int]] = field(default_factory=dict)
    received: list[datetime] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.offsets or self.rows)


class ScoringWorker:
    """Consumes ``milepost.events`` in its own consumer group until cancelled."""

    def __init__(
        self,
        *,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: ScoringSettings,
        load_catalog: CatalogLoader,
        load_paths: PathLoader,
        metrics: ScoringMetrics,
        config: ScoringConfig | None = None,
    ) -> None:
        self.bus = bus
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.load_catalog = load_catalog
        self.load_paths = load_paths
        self.metrics = metrics
        self.config = config or ScoringConfig()
        self.catalog: Mapping[str, PublishedDefinitions] = {}
        self.catalog_loaded_at = float("-inf")
        self.paths: Mapping[str, tuple[GrowthPath, ...]] = {}
        """The current version of each workspace's running (not paused) growth paths that
        its metric definitions bind tiers or diagnostics to."""
        self.peers: PeerBook | None = None
        self.peers_loaded_at = float("-inf")
        self.accounts: dict[AccountKey, Account] = {}
        self.memberships: dict[UserKey, Membership | None] = {}
        self.member = FencedMember(
            bus=bus, sessions=sessions, group_id=settings.group_id, outbox=ScoringOutboxRow
        )
        self.sweep_at = float("-inf")
        """Clock seconds of the next sweep lookup."""
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
        """One poll, the sweep if due, and their checkpoint; returns how many records and
        swept accounts it handled. A passing failure (database or bus down, partition or
        account moved) rolls the batch back: the cache is dropped and the consumer rewinds
        to its committed offsets."""
        try:
            await self.refresh_catalog()
            await self.refresh_peers()
            records = await consumer.poll(
                max_records=self.settings.max_batch_records,
                timeout_ms=self.settings.poll_timeout_ms,
            )
            if await self.member.sync_assignment(consumer):
                self.accounts.clear()
                self.memberships.clear()
                self.sweep_at = float("-inf")
            started = time.perf_counter()
            batch = Batch()
            await self.handle_records(records, batch)
            swept = await self.sweep(batch)
            if batch:
                await self.checkpoint(consumer, batch)
                self.bound_cache()
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
            else:
                await self.member.forget_acknowledged()
            self.ready.set()
            await self.report_lag()
            return len(records) + swept
        except (*PARTITION_MOVED, AccountMoved) as exc:
            await self.roll_back(consumer, "partition_moved", exc)
        except PASSING as exc:
            await self.roll_back(consumer, type(exc).__name__, exc)
            await asyncio.sleep(0.5)
        return 0

    def bound_cache(self) -> None:
        """Forget the least recently loaded half of the accounts when the cache is full
        (every cached account is durable after a checkpoint)."""
        if len(self.accounts) > self.settings.account_cache_size:
            for key in list(itertools.islice(self.accounts, len(self.accounts) // 2)):
                del self.accounts[key]
        if len(self.memberships) > self.settings.account_cache_size:
            self.memberships.clear()

    async def roll_back(self, consumer: Consumer, reason: str, exc: Exception) -> None:
        logger.warning(
            "scoring batch rolled back; retrying", extra={"reason": reason, "error": str(exc)}
        )
        self.metrics.retries.labels(reason).inc()
        self.peers = None
        self.accounts.clear()
        self.memberships.clear()
        await self.member.rewind(consumer)

    async def report_lag(self) -> None:
        """Set the lag gauge per owned input partition (at most every few seconds)."""
        await self.lag.report(self.member.assignment, self.applied)

    async def refresh_catalog(self) -> None:
        if time.monotonic() - self.catalog_loaded_at < self.settings.definitions_refresh_seconds:
            return
        async with self.sessions() as session:
            self.catalog = await self.load_catalog(session)
            published = await self.load_paths(session)
        paths: dict[str, tuple[GrowthPath, ...]] = {}
        for workspace_id, items in published.items():
            definitions = self.definitions_of(workspace_id).definitions
            bound = {b.path for b in definitions.tier_sources}
            bound |= {d.path for d in definitions.diagnostics}
            paths[workspace_id] = tuple(
                p.current for p in items if p.path_id in bound and not p.paused
            )
        self.paths = paths
        self.catalog_loaded_at = time.monotonic()

    async def refresh_peers(self) -> None:
        """Rebuild the peer book from the stored accounts when it is missing, inconsistent
        or older than ``peers_refresh_seconds``."""
        fresh = time.monotonic() - self.peers_loaded_at < self.settings.peers_refresh_seconds
        if self.peers is not None and self.peers.consistent and fresh:
            return
        async with self.sessions() as session:
            stored = await accounts.peer_standings(session)
        self.peers = PeerBook.of(
            (workspace_id, PeerStanding.from_json(standing))
            for workspace_id, peers in stored
            for standing in peers.get("standings", ())
        )
        self.peers_loaded_at = time.monotonic()

    # -- handling ----------------------------------------------------------------------

    async def handle_records(self, records: list[ConsumedRecord], batch: Batch) -> None:
        now = self.clock.now()
        decoded: list[tuple[ConsumedRecord, EventEnvelope]] = []
        for record in records:
            if not self.member.admit(record, batch.offsets):
                self.metrics.records.labels("replayed").inc()
                continue
            try:
                event = decode_json(EventEnvelope, record, name="event envelope")
            except InvalidMessage as exc:
                self.to_dead_letters(record, str(exc), batch, now)
                continue
            decoded.append((record, event))
        sifted = await self.member.first_sightings(
            decoded, lambda d: Sighting.of(d[0], d[1].event_id)
        )
        self.metrics.records.labels("duplicate").inc(len(sifted.duplicates))
        batch.sightings, decoded = sifted.sightings, sifted.fresh
        await self.load_memberships(event for _, event in decoded)
        attributed: list[
            tuple[ConsumedRecord, EventEnvelope, str, frozenset[str], Membership | None]
        ] = []
        for record, event in decoded:
            user = (event.workspace_id, event.user_id or "")
            attribution = attribute(event, self.memberships.get(user))
            if attribution.learned is not None and event.user_id is not None:
                self.memberships[user] = batch.memberships[user] = attribution.learned
            if attribution.account_id is None:
                self.metrics.records.labels("unattributed").inc()
                continue
            attributed.append(
                (
                    record,
                    event,
                    attribution.account_id,
                    attribution.actor_roles,
                    attribution.learned,
                )
            )
        await self.load_accounts({(e.workspace_id, a) for _, e, a, _, _ in attributed})
        for record, event, account, roles, learned in attributed:
            key = (event.workspace_id, account)
            try:
                self.apply(key, record, event, roles, learned, now)
            except EventValueInvalid as exc:
                self.to_dead_letters(record, str(exc), batch, now)
                continue
            batch.touched[key] = event.event_id
            batch.received.append(event.received_at)
            self.metrics.records.labels("scored").inc()
        for key, cause in batch.touched.items():
            self.score(key, cause, batch, now)

    def to_dead_letters(
        self, record: ConsumedRecord, reason: str, batch: Batch, now: datetime
    ) -> None:
        self.metrics.records.labels("dead_letter").inc()
        self.metrics.dead_letters.inc()
        log_dead_letter(logger, record, reason)
        letter = dead_letter_entry(record, group=self.settings.group_id, reason=reason, now=now)
        batch.outbox.append(letter)

    async def load_memberships(self, events: Iterable[EventEnvelope]) -> None:
        wanted = {
            (e.workspace_id, e.user_id)
            for e in events
            if e.user_id is not None and (e.workspace_id, e.user_id) not in self.memberships
        }
        if not wanted:
            return
        async with self.sessions() as session:
            found = await accounts.load_memberships(session, wanted)
        for key in wanted:
            self.memberships[key] = found.get(key)

    async def load_accounts(self, keys: set[AccountKey]) -> None:
        """Bring these accounts into the cache, in bulk (new ones start empty)."""
        missing = keys - self.accounts.keys()
        if not missing:
            return
        async with self.sessions() as session:
            found = await accounts.load_accounts(session, missing)
        for key in missing:
            stored = found.get(key)
            if stored is not None:
                self.accounts[key] = self.restore(key, stored)

    def restore(self, key: AccountKey, stored: StoredAccount) -> Account:
        try:
            store = decode_store(stored.metrics)
        except StoreCorrupt:
            logger.error(
                "stored metrics do not decode; the account's metrics start again "
                "(replay the events topic to rebuild them)",
                extra={"workspace_id": key[0], "account_id": key[1]},
            )
            store = MetricStore()
        return Account(
            stored_revision=stored.revision,
            partition=stored.partition,
            store=store,
            facts=facts_from_json(stored.facts),
            findings=Findings(
                health=stored.health,
                band=None if stored.band is None else Band(stored.band),
                risk=None if stored.risk is None else risk_from_json(stored.risk),
                tier=stored.tier,
                diagnosis=(stored.peers or {}).get("diagnosis"),
                standings=tuple(
                    PeerStanding.from_json(item)
                    for item in (stored.peers or {}).get("standings", ())
                ),
            ),
        )

    def definitions_of(self, workspace_id: str) -> PublishedDefinitions:
        return self.catalog.get(workspace_id) or reference_definitions()

    def apply(
        self,
        key: AccountKey,
        record: ConsumedRecord,
        event: EventEnvelope,
        roles: frozenset[str],
        learned: Membership | None,
        now: datetime,
    ) -> None:
        """Fold ``event`` into the account's metrics and facts; raises
        :class:`EventValueInvalid` leaving the account as it was."""
        account = self.accounts.get(key)
        if account is None:
            account = Account(None, record.partition, MetricStore(), AccountFacts(), Findings())
        definitions = self.definitions_of(key[0]).definitions
        stated = stated_facts(event)
        metric_event = MetricEvent(
            name=event.event or event.type.value,
            occurred_at=int(event.timestamp.timestamp()),
            user_id=event.user_id,
            actor_roles=roles,
            properties=event.properties,
            facts=numeric(stated),
        )
        store = fold(account.store, metric_event, definitions, now=int(now.timestamp()))
        contacts = learned.roles if learned is not None and learned.account_id == key[1] else ()
        account.store = store
        account.facts = self.enrolled(
            key, with_event(account.facts, event, stated, contacts), event, roles, now
        )
        if event.account_id is not None:
            account.partition = record.partition
        self.accounts[key] = account

    def enrolled(
        self,
        key: AccountKey,
        facts: AccountFacts,
        event: EventEnvelope,
        roles: frozenset[str],
        now: datetime,
    ) -> AccountFacts:
        """``facts`` with the growth paths ``event`` enrols the account on: the bound paths
        it is not on yet whose ``enrol_when`` holds, as the node engine decides."""
        joined = set()
        for path in self.paths.get(key[0], ()):
            if path.id in facts.paths:
                continue
            observation = observation_of(event, key[1], roles)
            if transition(None, observation, path=path, now=now).state is not None:
                joined.add(path.id)
        return replace(facts, paths=facts.paths | joined) if joined else facts

    def score(self, key: AccountKey, cause: str, batch: Batch, now: datetime) -> None:
        """Evaluate the account and collect its row, history and score events."""
        account = self.accounts[key]
        workspace_id, account_id = key
        evaluation = evaluate(
            workspace_id=workspace_id,
            account_id=account_id,
            store=account.store,
            facts=account.facts,
            definitions=self.definitions_of(workspace_id).definitions,
            previous=account.findings,
            now=now,
            cause=cause,
            config=self.config,
            ladders={p.id: p.tiers for p in self.paths.get(workspace_id, ()) if p.tiers},
            peers=self.peers,
        )
        account.findings = evaluation.findings
        revision = 0 if account.stored_revision is None else account.stored_revision
        batch.expected.setdefault(key, account.stored_revision)
        findings, facts = evaluation.findings, account.facts
        renewal = facts.number("crm.renewal_at")
        batch.rows.append(
            {
                "workspace_id": workspace_id,
                "account_id": account_id,
                "partition": account.partition,
                "revision": revision + 1,
                "metrics": encode(account.store),
                "facts": facts_to_json(facts),
                "health": findings.health,
                "band": None if findings.band is None else findings.band.value,
                "risk_level": None if findings.risk is None else findings.risk.level.value,
                "risk": None if findings.risk is None else risk_to_json(findings.risk),
                "tier": findings.tier,
                "peers": {
                    "standings": [standing.to_json() for standing in findings.standings],
                    "diagnosis": findings.diagnosis,
                }
                if findings.standings or findings.diagnosis
                else None,
                "explanation": evaluation.explanation(),
                "north_star": evaluation.north_star.value,
                "contract_value": facts.number("crm.contract_value"),
                "acquisition_cost": facts.number("crm.acquisition_cost"),
                "currency": _text(facts.values.get("crm.currency")),
                "renewal_at": None if renewal is None else datetime.fromtimestamp(renewal, UTC),
                "evaluated_at": now,
                "updated_at": now,
            }
        )
        for envelope in evaluation.events:
            batch.history.append(envelope)
            batch.outbox.append(
                (
                    f"score:{envelope.score_event_id}",
                    account.partition,
                    OutgoingRecord(
                        Topic.SCORES, envelope.key.encode(), envelope.model_dump_json().encode()
                    ),
                )
            )
            self.metrics.score_events.labels(envelope.kind.value).inc()

    async def sweep(self, batch: Batch) -> int:
        """Re-score the owned accounts whose last score is older than the sweep interval
        (at most one lookup per minute of clock time, sooner while accounts remain)."""
        now = self.clock.now()
        seconds = now.timestamp()
        if seconds < self.sweep_at:
            return 0
        owned = {tp.partition for tp in self.member.assignment if tp.topic == Topic.EVENTS}
        before = now - timedelta(seconds=self.settings.sweep_interval_seconds)
        limit = self.settings.max_sweep_accounts
        async with self.sessions() as session:
            due = await accounts.due_for_sweep(session, owned, before=before, limit=limit)
        due = [key for key in due if key not in batch.touched]
        self.sweep_at = seconds + (0 if len(due) >= limit else SWEEP_CHECK_SECONDS)
        if not due:
            return 0
        await self.load_accounts(set(due))
        cause = f"sweep:{int(seconds)}"
        for key in due:
            account = self.accounts.get(key)
            if account is None:
                continue
            account.store = prune(account.store, now=int(seconds))
            self.score(key, cause, batch, now)
            self.metrics.swept.inc()
        return len(due)

    # -- the checkpoint ----------------------------------------------------------------

    async def checkpoint(self, consumer: Consumer, batch: Batch) -> None:
        """Make the batch durable, then publish it, then commit the offsets (see the module
        docstring for why this order is exactly-once)."""
        now = self.clock.now()
        async with self.sessions() as session:
            await accounts.save_accounts(session, batch.rows, batch.expected)
            await accounts.append_history(session, batch.history)
            await accounts.save_memberships(session, batch.memberships, now=now)
            await self.member.hold(
                session, batch.offsets, batch.outbox, sightings=batch.sightings, now=now
            )
            await session.commit()
        for row in batch.rows:
            self.accounts[(row["workspace_id"], row["account_id"])].stored_revision = row[
                "revision"
            ]
        await self.member.release(consumer, batch.offsets, batch.outbox)
        durable = self.clock.now()
        for received in batch.received:
            self.metrics.event_age.observe(max(0.0, (durable - received).total_seconds()))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
