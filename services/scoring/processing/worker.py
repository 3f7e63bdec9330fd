"""The scoring consumer: attributed events and the engine's triggers in, score events out.

A handler of the stream runtime (:mod:`shared.consuming.stream`, which states the
checkpoint order that makes every effect exactly-once): decode -> fold -> score, with a
sweep that re-scores accounts no event touched for a while. A checkpoint's transaction
stores the touched accounts (metric store, facts, current score; fenced by their
revision), their new score events in the history and the outgoing records (score events,
dead letters) in the outbox. Score event ids are deterministic, so a record published twice
carries the same id.

Attribution: events come attributed to their account, once each, from the attribution
stage (:mod:`shared.attribution`) on ``milepost.accounts.events``, keyed by account, with
the acting user's roles; scoring keeps no memberships of its own. Each account row carries
a revision, and a write that finds another revision (another member wrote the account
first) rolls the batch back and retries it.

Enrolment: an account is on a growth path once the node engine says so, by publishing a
trigger of that path for it on ``milepost.triggers`` (keyed by the account, like its
events); scoring keeps the bound paths an account is on with its facts and never runs the
engine's code.

State lost is rebuilt by replaying ``milepost.accounts.events`` from the start into an
empty database: folding is order-independent within a day bucket, so the metrics and the current
scores come out the same (docs/scoring.md, Operations).
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec
import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.accounts import repository as accounts
from services.scoring.accounts.repository import AccountKey, StoredAccount
from services.scoring.catalog.service import PublishedDefinitions, reference_definitions
from services.scoring.definitions import MetricEvent
from services.scoring.diagnostics import PeerStanding
from services.scoring.errors import EventValueInvalid, StoreCorrupt
from services.scoring.evaluation.evaluate import (
    Evaluation,
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
from shared.bus import Bus, ConsumedRecord, OutgoingRecord
from shared.clock import Clock
from shared.consuming.decoding import RecordDecoder
from shared.consuming.metrics import lag_gauge, retries_counter, steps_histogram
from shared.consuming.seen import Sighting
from shared.consuming.stream import Batch as StreamBatch
from shared.consuming.stream import ServiceHandler, uncached
from shared.contracts import AccountEvent, Topic, TriggerEnvelope
from shared.contracts.events import AccountEventRecord
from shared.contracts.scores import ScoreRecord
from shared.contracts.tiers import TierLadder
from shared.contracts.triggers import TriggerRecord
from shared.db.types import json_column_text

logger = logging.getLogger(__name__)

SWEEP_CHECK_SECONDS = 60.0
INPUT_TOPICS = (Topic.ACCOUNT_EVENTS, Topic.TRIGGERS)
CatalogLoader = Callable[[AsyncSession], Awaitable[Mapping[str, PublishedDefinitions]]]


class PathVersion(Protocol):
    """What scoring reads of a growth path's current version."""

    @property
    def tiers(self) -> TierLadder | None:
        """Its tier ladder (``None``: none), as :func:`evaluate` places accounts on it."""


class RunningPath(Protocol):
    """What scoring reads of a published growth path (the engine's catalog entry)."""

    @property
    def path_id(self) -> str: ...

    @property
    def paused(self) -> bool: ...

    @property
    def current(self) -> PathVersion: ...


PathLoader = Callable[[AsyncSession], Awaitable[Mapping[str, Sequence[RunningPath]]]]


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "milepost_scoring_records",
            "Input records by outcome (scored, enrolled, skipped, replayed, duplicate, "
            "dead_letter).",
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
        self.steps = steps_histogram("milepost_scoring_step_seconds", registry)


@dataclass(slots=True)
class Account:
    """An account held in memory: its state, and the revision stored in the database."""

    stored_revision: int | None
    partition: int
    store: MetricStore
    facts: AccountFacts
    findings: Findings


class Received(msgspec.Struct, frozen=True, gc=False):
    """An attributed event as read from its record."""

    record: ConsumedRecord
    event: AccountEventRecord

    @property
    def account(self) -> AccountKey:
        return self.event.workspace_id, self.event.account_id


class Joined(msgspec.Struct, frozen=True, gc=False):
    """A trigger of the engine: its account is on its path."""

    record: ConsumedRecord
    trigger: TriggerRecord


Item = Received | Joined
read_event = RecordDecoder(AccountEventRecord, AccountEvent, name="account event")
read_trigger = RecordDecoder(TriggerRecord, TriggerEnvelope, name="trigger envelope")


@dataclass
class Effects:
    """Everything one checkpoint writes besides the stream's own bookkeeping."""

    received: list[Received] = field(default_factory=list)
    joined: list[Joined] = field(default_factory=list)
    due: list[AccountKey] = field(default_factory=list)
    """Accounts the sweep re-scores (unless an event touched them)."""
    touched: dict[AccountKey, str] = field(default_factory=dict)
    """Account -> the cause of its evaluation (the last event's id, or the sweep)."""
    event_times: dict[AccountKey, int] = field(default_factory=dict)
    """Account -> the latest time of its events in the batch (for the risk level's dwell)."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[AccountKey, int | None] = field(default_factory=dict)
    history: list[ScoreRecord] = field(default_factory=list)
    received_at: list[datetime] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows)


Batch = StreamBatch[Effects]


class ScoringWorker(ServiceHandler[Item, Effects]):
    """Consumes ``milepost.accounts.events`` and the engine's triggers in its own
    consumer group until cancelled."""

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
        self.bound: Mapping[str, frozenset[str]] = {}
        """Per workspace: its running (not paused) growth paths that its metric definitions
        bind tiers or diagnostics to."""
        self.ladders: Mapping[str, Mapping[str, TierLadder]] = {}
        """Per workspace: the tier ladders of those paths, by path id."""
        self.peers: PeerBook | None = None
        self.peers_loaded_at = float("-inf")
        self.accounts: dict[AccountKey, Account] = {}
        self.sweep_at = float("-inf")
        """Clock seconds of the next sweep lookup."""
        self.attach_stream(INPUT_TOPICS, ScoringOutboxRow, settings, metrics)

    # -- the stream's hooks ------------------------------------------------------------

    def effects(self) -> Effects:
        return Effects()

    def decode(self, record: ConsumedRecord) -> Item:
        if record.topic == Topic.TRIGGERS:
            return Joined(record, read_trigger(record))
        return Received(record, read_event(record))

    def sighting(self, record: ConsumedRecord, item: Item) -> Sighting | None:
        """An event's id; ``None`` for a trigger (applying one twice changes nothing)."""
        return Sighting.of(record, item.event.event_id) if isinstance(item, Received) else None

    def batch_limit(self) -> int:
        return self.settings.max_batch_records

    def poll_timeout_ms(self) -> int:
        return self.settings.poll_timeout_ms

    def batch_wait_ms(self) -> int:
        return self.settings.batch_wait_ms

    def count(self, record: ConsumedRecord, outcome: str, n: int = 1) -> None:
        self.metrics.records.labels(outcome).inc(n)
        if outcome == "dead_letter":
            self.metrics.dead_letters.inc(n)

    def reset(self) -> None:
        """Drop the cached accounts; the peer book is rebuilt before the next poll (a batch
        rolled back may have moved it)."""
        self.peers_loaded_at = float("-inf")
        self.accounts.clear()
        self.sweep_at = float("-inf")

    def overlaps_checkpoints(self) -> bool:
        """Yes: an account's revision moves on as it is scored, the cache holds every
        effect until it is durable, and the sweep's lookup, the peer book's rebuild and
        forgetting part of a full cache each wait for the checkpoint in flight."""
        return True

    def committed(self, batch: Batch) -> None:
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        durable = self.clock.now()
        for received in batch.effects.received_at:
            self.metrics.event_age.observe(max(0.0, (durable - received).total_seconds()))

    def bound_cache(self) -> None:
        """Forget the least recently loaded half of the accounts when the cache is full
        (with no checkpoint in flight every cached account is durable)."""
        if len(self.accounts) > self.settings.account_cache_size:
            for key in list(itertools.islice(self.accounts, len(self.accounts) // 2)):
                del self.accounts[key]

    async def refresh(self) -> None:
        await self.refresh_catalog()
        await self.refresh_peers()

    async def refresh_catalog(self) -> None:
        if time.monotonic() - self.catalog_loaded_at < self.settings.definitions_refresh_seconds:
            return
        async with self.sessions() as session:
            self.catalog = await self.load_catalog(session)
            published = await self.load_paths(session)
        bound: dict[str, frozenset[str]] = {}
        ladders: dict[str, dict[str, TierLadder]] = {}
        for workspace_id, items in published.items():
            definitions = self.definitions_of(workspace_id).definitions
            wanted = {b.path for b in definitions.tier_sources}
            wanted |= {d.path for d in definitions.diagnostics}
            running = [p for p in items if p.path_id in wanted and not p.paused]
            bound[workspace_id] = frozenset(p.path_id for p in running)
            ladders[workspace_id] = {
                p.path_id: p.current.tiers for p in running if p.current.tiers is not None
            }
        self.bound, self.ladders = bound, ladders
        self.catalog_loaded_at = time.monotonic()

    async def refresh_peers(self) -> None:
        """Rebuild the peer book from the stored accounts when it is missing, inconsistent
        or older than ``peers_refresh_seconds``."""
        fresh = time.monotonic() - self.peers_loaded_at < self.settings.peers_refresh_seconds
        if self.peers is not None and self.peers.consistent and fresh:
            return
        await self.stream.wait_committed()
        async with self.sessions() as session:
            stored = await accounts.peer_standings(session)
        self.peers = PeerBook.of(
            (workspace_id, PeerStanding.from_json(standing))
            for workspace_id, peers in stored
            for standing in peers.get("standings", ())
        )
        self.peers_loaded_at = time.monotonic()

    # -- loading -----------------------------------------------------------------------

    async def load(self, session: AsyncSession, items: Sequence[Item], batch: Batch) -> None:
        """The accounts the events, the triggers and the sweep's due accounts need, in
        bulk. The sweep's lookup and forgetting part of a full cache first wait for the
        checkpoint in flight (it moves accounts' last scores, and its accounts are
        durable only once it is done)."""
        effects = batch.effects
        for item in items:
            if isinstance(item, Received):
                effects.received.append(item)
            else:
                effects.joined.append(item)
        sweep_due = self.clock.now().timestamp() >= self.sweep_at
        if sweep_due or len(self.accounts) > self.settings.account_cache_size:
            await self.stream.wait_committed()
            self.bound_cache()
        effects.due = await self.due_for_sweep(session) if sweep_due else []
        wanted = {r.account for r in effects.received} | set(effects.due)
        wanted |= {(j.trigger.workspace_id, j.trigger.account_id) for j in effects.joined}
        await self.load_accounts(session, wanted)

    async def due_for_sweep(self, session: AsyncSession) -> list[AccountKey]:
        """The owned accounts whose last score is older than the sweep interval; sets when
        the next lookup is due (:meth:`load` asks only then): a minute of clock time later,
        or at once while accounts remain."""
        seconds = self.clock.now().timestamp()
        owned = {tp.partition for tp in self.member.assignment if tp.topic == Topic.ACCOUNT_EVENTS}
        before = self.clock.now() - timedelta(seconds=self.settings.sweep_interval_seconds)
        limit = self.settings.max_sweep_accounts
        due = await accounts.due_for_sweep(session, owned, before=before, limit=limit)
        self.sweep_at = seconds + (0 if len(due) >= limit else SWEEP_CHECK_SECONDS)
        return due

    async def load_accounts(self, session: AsyncSession, keys: set[AccountKey]) -> None:
        """Bring these accounts into the cache, in bulk (new ones start empty)."""
        missing = uncached(keys, self.accounts)
        if not missing:
            return
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

    # -- handling ----------------------------------------------------------------------

    async def handle(self, items: Sequence[Item], batch: Batch) -> None:
        """Fold the events into their accounts, enrol the accounts the triggers put on a
        bound path, score the accounts touched, then sweep; the records scored and the
        score events are counted once per batch (a labelled counter's increment takes a
        lock)."""
        effects, now = batch.effects, batch.now
        scored = 0
        for item in effects.received:
            await batch.pause()
            try:
                self.apply(item, now)
            except EventValueInvalid as exc:
                batch.reject(item.record, str(exc))
                continue
            effects.touched[item.account] = item.event.event_id
            at = int(item.event.timestamp.timestamp())
            effects.event_times[item.account] = max(at, effects.event_times.get(item.account, at))
            effects.received_at.append(item.event.received_at)
            scored += 1
        for joined in effects.joined:
            await batch.pause()
            self.join(joined, batch)
        for key, cause in effects.touched.items():
            await batch.pause()
            self.score(key, cause, batch)
        await self.sweep(batch)
        self.metrics.records.labels("scored").inc(scored)
        kinds = collections.Counter(envelope.kind.value for envelope in effects.history)
        for kind, n in kinds.items():
            self.metrics.score_events.labels(kind).inc(n)

    def definitions_of(self, workspace_id: str) -> PublishedDefinitions:
        return self.catalog.get(workspace_id) or reference_definitions()

    def apply(self, item: Received, now: datetime) -> None:
        """Fold the event into its account's metrics and facts (the contacts it names: its
        user's roles when it stated the user's membership); raises
        :class:`EventValueInvalid` leaving the account as it was."""
        key, record, event = item.account, item.record, item.event
        roles = frozenset(event.actor_roles)
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
        contacts = roles if event.joined else frozenset()
        account.store = store
        account.facts = with_event(account.facts, event, stated, contacts)
        account.partition = record.partition
        self.accounts[key] = account

    def join(self, item: Joined, batch: Batch) -> None:
        """Put the trigger's account on its path when the path is bound and the account is
        not on it yet (``enrolled``; otherwise ``skipped``)."""
        trigger = item.trigger
        key = (trigger.workspace_id, trigger.account_id)
        account = self.accounts.get(key)
        if trigger.path_id not in self.bound.get(key[0], ()) or (
            account is not None and trigger.path_id in account.facts.paths
        ):
            self.count(item.record, "skipped")
            return
        if account is None:
            account = Account(
                None, item.record.partition, MetricStore(), AccountFacts(), Findings()
            )
        account.partition = item.record.partition
        account.facts = msgspec.structs.replace(
            account.facts, paths=account.facts.paths | {trigger.path_id}
        )
        self.accounts[key] = account
        batch.effects.touched.setdefault(key, trigger.causing_event_id or trigger.trigger_id)
        self.count(item.record, "enrolled")

    def score(self, key: AccountKey, cause: str, batch: Batch) -> None:
        """Evaluate the account and collect its row, history and score events."""
        account = self.accounts[key]
        workspace_id, account_id, now = *key, batch.now
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
            ladders=self.ladders.get(workspace_id, {}),
            peers=self.peers,
            at=batch.effects.event_times.get(key),
        )
        account.findings = evaluation.findings
        batch.effects.expected.setdefault(key, account.stored_revision)
        row = _row(key, account, evaluation, now)
        batch.effects.rows.append(row)
        account.stored_revision = row["revision"]  # stored with the batch, or dropped
        for envelope in evaluation.events:
            batch.effects.history.append(envelope)
            batch.outbox.append(
                (
                    f"score:{envelope.score_event_id}",
                    account.partition,
                    OutgoingRecord(Topic.SCORES, envelope.key.encode(), envelope.to_json()),
                )
            )

    async def sweep(self, batch: Batch) -> None:
        """Re-score the due accounts no event of the batch touched."""
        seconds = int(batch.now.timestamp())
        cause = f"sweep:{seconds}"
        for key in batch.effects.due:
            await batch.pause()
            account = self.accounts.get(key)
            if key in batch.effects.touched or account is None:
                continue
            account.store = prune(account.store, now=seconds)
            self.score(key, cause, batch)
            self.metrics.swept.inc()
            batch.handled += 1

    # -- the checkpoint ----------------------------------------------------------------

    async def write(self, session: AsyncSession, batch: Batch) -> None:
        """The batch's accounts (fenced by revision: another member's write loses this one
        the partition) and score history."""
        effects = batch.effects
        await accounts.save_accounts(session, effects.rows, effects.expected)
        await accounts.append_history(session, effects.history)


def _row(
    key: AccountKey, account: Account, evaluation: Evaluation, now: datetime
) -> dict[str, Any]:
    """The account's row as evaluated at ``now``, one revision after the stored one."""
    workspace_id, account_id = key
    revision = 0 if account.stored_revision is None else account.stored_revision
    findings, facts = evaluation.findings, account.facts
    renewal = facts.number("crm.renewal_at")
    return {
        "workspace_id": workspace_id,
        "account_id": account_id,
        "partition": account.partition,
        "revision": revision + 1,
        "metrics": encode(account.store),
        "facts": _encoded(facts_to_json(facts)),
        "health": findings.health,
        "band": None if findings.band is None else findings.band.value,
        "risk_level": None if findings.risk is None else findings.risk.level.value,
        "risk": None if findings.risk is None else _encoded(risk_to_json(findings.risk)),
        "tier": findings.tier,
        "peers": _encoded(
            {
                "standings": [standing.to_json() for standing in findings.standings],
                "diagnosis": findings.diagnosis,
            }
        )
        if findings.standings or findings.diagnosis
        else None,
        "explanation": orjson.Fragment(evaluation.account_explanation()),
        "north_star": evaluation.north_star.value,
        "contract_value": facts.number("crm.contract_value"),
        "acquisition_cost": facts.number("crm.acquisition_cost"),
        "currency": _text(facts.values.get("crm.currency")),
        "renewal_at": None if renewal is None else datetime.fromtimestamp(renewal, UTC),
        "evaluated_at": now,
        "updated_at": now,
    }


def _encoded(value: object) -> orjson.Fragment:
    """A JSON column's value encoded as the row is built, while its objects are still in
    the processor's cache (the checkpoint writes it as it is)."""
    return orjson.Fragment(json_column_text(value))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
