"""The engine's consumer on the in-memory bus and on Kafka, with SQLite and PostgreSQL:
attribution, dead letters, timers, manual moves, pause, and exactly-once across a crash
between the database commit and the offset commit."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts.encoding import decode_state
from services.node_engine.accounts.models import AccountFactsRow, AccountStateRow, TransitionRow
from services.node_engine.accounts.service import queue_move
from services.node_engine.paths.compiled import GrowthPath, compile_path
from services.node_engine.paths.files import GrowthPathFile
from services.node_engine.paths.service import MigrationPolicy, PublishedPath
from services.node_engine.processing.worker import INPUT_TOPICS, EngineMetrics, EngineWorker
from services.node_engine.settings import EngineSettings
from services.node_engine.timers.models import TimerRow
from shared.bus import Bus, Consumer, OutgoingRecord
from shared.clock import FrozenClock
from shared.contracts import (
    EventType,
    RiskLevel,
    ScoreEnvelope,
    ScoreKind,
    SignalReason,
    Topic,
    TriggerEnvelope,
)
from shared.contracts.events import event_id_for
from shared.contracts.topics import DeadLetter
from shared.db import create_engine, create_session_factory
from shared.definitions import load_definition
from shared.errors import BusUnavailable
from tests.services.node_engine.support import build, document, node, stage
from tests.shared.attribution.support import Attributing
from tests.shared.bus.support import event_record, read_to_end
from tests.shared.consuming.support import step_until_applied

REFERENCE = Path(__file__).parents[4] / "services" / "node_engine" / "paths" / "reference"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def reference_path(name: str, version: int = 1) -> GrowthPath:
    return compile_path(
        load_definition(REFERENCE / f"{name}.yaml", GrowthPathFile), version=version
    )


@dataclass
class Harness:
    bus: Bus
    sessions: async_sessionmaker[AsyncSession]
    clock: FrozenClock
    workspace: str
    group: str
    attribution: Attributing
    paused: bool = False
    path: GrowthPath = field(default_factory=lambda: reference_path("platform-merchant"))
    older: tuple[GrowthPath, ...] = ()
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    """The metrics of the latest worker."""
    migration: MigrationPolicy = "pin"

    def catalog(self) -> Mapping[str, tuple[PublishedPath, ...]]:
        versions = {p.version: p for p in (*self.older, self.path)}
        published = PublishedPath(
            workspace_id=self.workspace,
            path_id=self.path.id,
            current=self.path,
            paused=self.paused,
            migration=self.migration,
            node_map=MappingProxyType({}),
            versions=MappingProxyType(versions),
        )
        return {self.workspace: (published,)}

    def new_registry(self) -> CollectorRegistry:
        self.registry = CollectorRegistry()
        return self.registry

    def worker(self) -> EngineWorker:
        async def load(_session: AsyncSession) -> Mapping[str, tuple[PublishedPath, ...]]:
            return self.catalog()

        settings = EngineSettings(
            group_id=self.group, catalog_refresh_seconds=0.001, timer_interval_ms=10
        )
        return EngineWorker(
            bus=self.bus,
            sessions=self.sessions,
            clock=self.clock,
            settings=settings,
            load_catalog=load,
            metrics=EngineMetrics(self.new_registry()),
        )

    def event(self, message: str, **fields: Any) -> OutgoingRecord:
        return event_record(self.workspace, message, self.clock.now(), **fields)

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Publish ``records``; the events among them reach the engine's input attributed."""
        await self.attribution.publish(records)

    async def triggers(self) -> list[TriggerEnvelope]:
        """This workspace's triggers on the topic, in order."""
        return [
            t
            for t in await self.read(Topic.TRIGGERS, TriggerEnvelope)
            if t.workspace_id == self.workspace
        ]

    async def read(self, topic: str, model: type[Any]) -> list[Any]:
        """Every record on ``topic`` up to its current end, parsed."""
        return [item for _, _, item in await read_to_end(self.bus, topic, model)]


@contextlib.asynccontextmanager
async def harness_on(
    bus: Bus, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Harness]:
    """A harness of its own workspace and groups on ``bus`` and ``sessions``."""
    tag, clock = uuid.uuid4().hex[:10], FrozenClock(T0)
    attribution = Attributing(bus, sessions, clock, f"attribution-{tag}")
    yield Harness(bus, sessions, clock, f"ws{tag}", f"engine-{tag}", attribution)
    await attribution.close()


@pytest.fixture
async def harness(bus: Bus, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Harness]:
    async with harness_on(bus, sessions) as harness:
        yield harness


async def run_until_idle(worker: EngineWorker, consumer: Consumer, *, rounds: int = 200) -> None:
    """Step until every owned input partition is applied, then twice more (for due
    timers), as the engine runs (:func:`step_until_applied`)."""
    await step_until_applied(worker, consumer, rounds=rounds, then=2, what="the engine")


async def subscribe(harness: Harness) -> Consumer:
    return await harness.bus.subscribe(list(INPUT_TOPICS), group_id=harness.group)


async def test_a_group_call_enrols_the_account_and_publishes_its_triggers(harness: Harness) -> None:
    await harness.publish(
        [
            harness.event(
                "m1",
                type=EventType.GROUP,
                user="boss",
                context={"traits": {"roles": ["decision_maker"]}},
            )
        ]
    )
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)

    triggers = await harness.triggers()
    assert [(t.kind.value, t.stage, t.node) for t in triggers] == [
        ("stage_entered", "settle_in", None),
        ("node_entered", "settle_in", "application_approved"),
    ]
    assert triggers[1].target_roles == ["account_owner"]
    assert triggers[0].causing_event_id == event_id_for(harness.workspace, "m1")
    async with harness.sessions() as session:
        row = await session.scalar(
            select(AccountStateRow).where(AccountStateRow.workspace_id == harness.workspace)
        )
        assert row is not None
        assert (row.stage, row.node) == ("settle_in", "application_approved")
        kinds = (
            await session.scalars(
                select(TransitionRow.kind)
                .where(TransitionRow.workspace_id == harness.workspace)
                .order_by(TransitionRow.position)
            )
        ).all()
        assert kinds == ["enrolled", "stage_entered", "node_entered"]
    await consumer.close()


async def test_an_event_with_only_a_user_id_is_re_keyed_to_the_users_account(
    harness: Harness,
) -> None:
    await harness.publish(
        [
            harness.event(
                "m1", type=EventType.GROUP, user="admin-1", context={"traits": {"role": "admin"}}
            ),
        ]
    )
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    await harness.publish(
        [harness.event("m2", event="Merchant Approved", account=None, user="admin-1")]
    )
    await run_until_idle(worker, consumer)

    triggers = await harness.triggers()
    completed = [t for t in triggers if t.kind.value == "node_completed"]
    assert [(t.node, t.account_id) for t in completed] == [("application_approved", "acme")]
    assert completed[0].causing_event_id == event_id_for(harness.workspace, "m2")
    await consumer.close()


def counting_path() -> GrowthPath:
    """Enrols on a group call; its first node completes on the second order."""
    return build(
        document(
            [
                stage(
                    "orders",
                    node("two_orders", 'count("Order Completed") >= 2'),
                    node("done"),
                )
            ]
        )
    )


async def test_an_event_published_twice_at_two_offsets_is_applied_once(harness: Harness) -> None:
    """A broker restart: ingest answered 503 to an event that reached the topic anyway,
    and the client's retry (same message id, so the same event id) published it again.
    Both copies of each order, the one with an account and the one of a user, count
    once: the attribution stage drops the copies, so the engine sees each event once."""
    harness.path = counting_path()
    worker, consumer = harness.worker(), await subscribe(harness)
    await harness.publish([harness.event("g1", type=EventType.GROUP, user="boss")])
    await run_until_idle(worker, consumer)
    order = harness.event("o1", event="Order Completed")
    by_user = harness.event("o2", event="Order Completed", account=None, user="boss")
    await harness.publish([order, order])
    await harness.publish([order])
    await run_until_idle(worker, consumer)
    assert [t.kind.value for t in await harness.triggers()] == ["stage_entered", "node_entered"]

    await harness.publish([by_user])
    await run_until_idle(worker, consumer)
    await harness.publish([by_user, order])
    await run_until_idle(worker, consumer)
    completed = [t.node for t in await harness.triggers() if t.kind.value == "node_completed"]
    assert completed == ["two_orders"]
    duplicates = {
        Topic.EVENTS: harness.attribution.registry.get_sample_value(
            "milepost_attribution_records_total", {"outcome": "duplicate"}
        ),
        Topic.ACCOUNT_EVENTS: harness.registry.get_sample_value(
            "milepost_engine_records_total",
            {"topic": Topic.ACCOUNT_EVENTS, "outcome": "duplicate"},
        ),
    }
    assert duplicates == {Topic.EVENTS: 4, Topic.ACCOUNT_EVENTS: None}
    await consumer.close()


async def test_a_malformed_record_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(
    harness: Harness,
) -> None:
    await harness.publish(
        [
            OutgoingRecord(
                Topic.ACCOUNT_EVENTS,
                f"{harness.workspace}/a/acme".encode(),
                b'{"not": "an envelope"}',
            ),
            harness.event("m1", type=EventType.GROUP),
        ]
    )
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)

    letters = [
        d
        for d in await harness.read(Topic.EVENTS_DLQ, DeadLetter)
        if d.consumer_group == harness.group
    ]
    assert len(letters) == 1
    assert letters[0].topic == Topic.ACCOUNT_EVENTS
    assert "event_id: Field required" in letters[0].reason
    assert letters[0].value == '{"not": "an envelope"}'
    assert [t.kind.value for t in await harness.triggers()] == ["stage_entered", "node_entered"]
    await consumer.close()


async def test_due_timers_fire_overdue_then_escalation_triggers(harness: Harness) -> None:
    await harness.publish(
        [
            harness.event("m1", type=EventType.GROUP),
            harness.event("m2", event="Merchant Approved"),
        ]
    )
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    harness.clock.advance(timedelta(days=1, hours=1))
    await run_until_idle(worker, consumer)
    harness.clock.advance(timedelta(days=2))
    await run_until_idle(worker, consumer)

    fired = [
        (t.kind.value, t.node, t.target_roles)
        for t in await harness.triggers()
        if t.kind.value in ("node_overdue", "escalation")
    ]
    assert fired == [
        ("node_overdue", "complete_profile", ["admin"]),
        ("escalation", "complete_profile", ["account_owner"]),
    ]
    async with harness.sessions() as session:
        kinds = set(
            (
                await session.scalars(
                    select(TimerRow.kind).where(TimerRow.workspace_id == harness.workspace)
                )
            ).all()
        )
    assert kinds == {"review"}  # the first node's due date fired stale and left nothing
    await consumer.close()


@pytest.fixture
async def postgres_harness(bus: Bus, postgres_url: str) -> AsyncIterator[Harness]:
    """A harness on PostgreSQL alone, where checkpoints overlap the next batch."""
    engine = create_engine(postgres_url)
    async with harness_on(bus, create_session_factory(engine)) as harness:
        yield harness
    await engine.dispose()


async def test_a_lookup_leaves_out_the_timers_the_checkpoint_in_flight_fired(
    postgres_harness: Harness,
) -> None:
    harness = postgres_harness
    await harness.publish(
        [
            harness.event("m1", type=EventType.GROUP),
            harness.event("m2", event="Merchant Approved"),
        ]
    )
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    gate, write = asyncio.Event(), worker.write

    async def gated_write(session: AsyncSession, batch: Any) -> None:
        await gate.wait()
        await write(session, batch)

    worker.write = gated_write  # type: ignore[method-assign]
    harness.clock.advance(timedelta(days=1, hours=1))
    await asyncio.sleep(0.02)  # the harness looks timers up every 10 ms
    assert await worker.stream.step(consumer, overlap=True) > 0  # fires the due timers
    assert worker.stream.in_flight is not None
    assert worker.firing
    await asyncio.sleep(0.02)
    looked_up_at = worker.timers_checked_at
    second = asyncio.create_task(worker.stream.step(consumer, overlap=True))
    await asyncio.sleep(0.3)
    assert worker.timers_checked_at > looked_up_at  # looked up with the first in flight
    assert not second.done()  # its hand-off waits for the first checkpoint
    gate.set()
    assert await second == 0  # nothing due but the timers in flight: none fired twice
    await worker.stream.settle()  # a timer fired twice would fail this checkpoint
    overdue = [t for t in await harness.triggers() if t.kind.value == "node_overdue"]
    assert [t.node for t in overdue] == ["complete_profile"]
    await consumer.close()


async def test_a_manual_move_is_applied_in_order_and_audited(harness: Harness) -> None:
    await harness.publish([harness.event("m1", type=EventType.GROUP)])
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    async with harness.sessions() as session:
        await queue_move(
            session,
            workspace_id=harness.workspace,
            account_id="acme",
            path_id="platform-merchant",
            target="nurturing",
            actor="ops@example.com",
            note="migrated from the old CRM",
            now=harness.clock.now(),
        )
        await session.commit()
    await run_until_idle(worker, consumer)

    async with harness.sessions() as session:
        moved = (
            await session.scalars(
                select(TransitionRow).where(
                    TransitionRow.workspace_id == harness.workspace, TransitionRow.kind == "moved"
                )
            )
        ).one()
    assert moved.payload["actor"] == "ops@example.com"
    assert "migrated from the old CRM" in moved.reason
    assert [(t.kind.value, t.node) for t in await harness.triggers()][-2:] == [
        ("stage_entered", None),
        ("node_entered", "first_listing"),
    ]
    await consumer.close()


async def test_a_paused_path_counts_events_but_fires_nothing(harness: Harness) -> None:
    harness.paused = True
    await harness.publish([harness.event("m1", type=EventType.GROUP)])
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    assert await harness.triggers() == []
    await consumer.close()


async def test_a_crash_after_the_database_commit_publishes_nothing_twice(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.publish(
        [harness.event("m1", type=EventType.GROUP)]
        + [
            harness.event(f"o{i}", event=name)
            for i, name in enumerate(
                ["Merchant Approved", "Profile Completed", "Payout Account Connected"]
            )
        ]
    )
    crashing, consumer = harness.worker(), await subscribe(harness)
    real_publish = harness.bus.publish

    async def lost_publish(records: Any) -> None:
        raise BusUnavailable("crash between the database commit and the publish")

    monkeypatch.setattr(harness.bus, "publish", lost_publish)
    await crashing.step(consumer)
    await crashing.step(consumer)
    await consumer.close()
    monkeypatch.setattr(harness.bus, "publish", real_publish)
    assert await harness.triggers() == []

    survivor, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(survivor, consumer)
    triggers = await harness.triggers()
    ids = [t.trigger_id for t in triggers]
    assert len(ids) == len(set(ids))
    assert [(t.kind.value, t.node) for t in triggers][-1] == ("node_entered", "first_listing")
    async with harness.sessions() as session:
        history = (
            await session.scalars(
                select(TransitionRow.transition_id).where(
                    TransitionRow.workspace_id == harness.workspace
                )
            )
        ).all()
    assert len(history) == len(set(history))
    published_kinds = {"stage_entered", "node_entered", "node_completed"}
    async with harness.sessions() as session:
        expected = (
            await session.scalars(
                select(TransitionRow.transition_id).where(
                    TransitionRow.workspace_id == harness.workspace,
                    TransitionRow.kind.in_(published_kinds),
                )
            )
        ).all()
    assert sorted(ids) == sorted(expected)
    await consumer.close()


async def test_a_risk_raised_by_scoring_becomes_a_risk_changed_trigger(harness: Harness) -> None:
    await harness.publish([harness.event("m1", type=EventType.GROUP)])
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    score = ScoreEnvelope(
        score_event_id="s1",
        workspace_id=harness.workspace,
        account_id="acme",
        kind=ScoreKind.RISK_RAISED,
        health=31.5,
        risk_level=RiskLevel.HIGH,
        signals=["logins_falling"],
        reasons=[
            SignalReason(
                signal="logins_falling",
                severity=RiskLevel.HIGH,
                sentence="Logins are clearly falling: 12 in the last 7 days against a "
                "weekly average of 40 over 28 days (30% of usual).",
                measure=0.3,
                threshold=0.5,
                figures={"logins_7d": 12, "weekly_average": 40},
            )
        ],
        occurred_at=harness.clock.now(),
    )
    key = score.key.encode()
    await harness.publish(
        [
            OutgoingRecord(Topic.SCORES, key, score.model_dump_json().encode()),
            OutgoingRecord(Topic.SCORES, key, b"{}"),
        ]
    )
    await run_until_idle(worker, consumer)

    (risk,) = [t for t in await harness.triggers() if t.kind.value == "risk_changed"]
    assert risk.target_roles == ["account_owner", "decision_maker"]
    assert risk.payload == {
        "from": None,
        "to": "high",
        "signals": ["logins_falling"],
        "reasons": [
            {
                "signal": "logins_falling",
                "severity": "high",
                "sentence": "Logins are clearly falling: 12 in the last 7 days against a "
                "weekly average of 40 over 28 days (30% of usual).",
                "measure": 0.3,
                "threshold": 0.5,
                "figures": {"logins_7d": 12.0, "weekly_average": 40.0},
            }
        ],
    }
    assert risk.causing_event_id == "s1"
    letters = await harness.read(Topic.SCORES_DLQ, DeadLetter)
    assert [d.topic for d in letters if d.consumer_group == harness.group] == [Topic.SCORES]
    await consumer.close()


async def test_facts_and_scores_from_before_enrolment_are_known_once_enrolled(
    harness: Harness,
) -> None:
    """The CRM account record (size 800) and a first score come before the deal that enrols
    the account on the SaaS path: it enrols knowing them, and they are stored per account."""
    harness.path = reference_path("saas-account")
    crm = EventType.CRM
    record = {"account_id": "acme", "name": "Acme", "size": 800}
    score = ScoreEnvelope(
        score_event_id="s0",
        workspace_id=harness.workspace,
        account_id="acme",
        kind=ScoreKind.SCORE_CHANGED,
        health=72.0,
        risk_level=RiskLevel.LOW,
        occurred_at=harness.clock.now(),
    )
    await harness.publish(
        [
            harness.event("m1", type=crm, event="milepost.crm.account.upserted", properties=record),
            OutgoingRecord(Topic.SCORES, score.key.encode(), score.model_dump_json().encode()),
        ]
    )
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    deal = {"deal_id": "d1", "stage": "qualified", "amount": 5000}
    await harness.publish(
        [harness.event("m2", type=crm, event="milepost.crm.deal.stage_changed", properties=deal)]
    )
    await run_until_idle(worker, consumer)

    async with harness.sessions() as session:
        row = await session.scalar(
            select(AccountStateRow).where(AccountStateRow.workspace_id == harness.workspace)
        )
        stored = await session.get(AccountFactsRow, (harness.workspace, "acme"))
    assert row is not None
    assert stored is not None
    facts = decode_state(row.state).facts
    assert (facts["account.size"], facts["score.health"], facts["crm.deal_stage"]) == (
        800,
        72.0,
        "qualified",
    )
    assert stored.facts == facts
    assert not [t for t in await harness.triggers() if t.kind.value == "risk_changed"]
    await consumer.close()


async def test_accounts_on_an_older_version_restart_on_the_new_one_when_it_says_so(
    harness: Harness,
) -> None:
    await harness.publish(
        [
            harness.event("m1", type=EventType.GROUP),
            harness.event("m2", event="Merchant Approved"),
        ]
    )
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    harness.older = (harness.path,)
    harness.path = reference_path("platform-merchant", version=2)
    harness.migration = "restart"
    await harness.publish([harness.event("m3", event="Profile Completed")])
    await run_until_idle(worker, consumer)

    async with harness.sessions() as session:
        row = await session.scalar(
            select(AccountStateRow).where(AccountStateRow.workspace_id == harness.workspace)
        )
        kinds = (
            await session.scalars(
                select(TransitionRow.kind)
                .where(
                    TransitionRow.workspace_id == harness.workspace, TransitionRow.path_version == 2
                )
                .order_by(TransitionRow.position)
            )
        ).all()
    assert row is not None
    assert row.path_version == 2
    assert kinds[0] == "migrated"
    assert (row.stage, row.node) == ("account_setup", "payout_account")
    await consumer.close()


async def test_a_full_cache_forgets_states_that_are_durable_and_reloads_them(
    harness: Harness,
) -> None:
    await harness.publish(
        [harness.event(f"g{i}", type=EventType.GROUP, account=f"a{i}") for i in range(6)]
    )
    worker, consumer = harness.worker(), await subscribe(harness)
    worker.settings = worker.settings.model_copy(update={"state_cache_size": 4})
    await run_until_idle(worker, consumer)
    assert len(worker.states) <= 4
    await harness.publish(
        [harness.event(f"m{i}", event="Merchant Approved", account=f"a{i}") for i in range(6)]
    )
    await run_until_idle(worker, consumer)

    completed = [t.account_id for t in await harness.triggers() if t.kind.value == "node_completed"]
    assert sorted(completed) == [f"a{i}" for i in range(6)]
    await consumer.close()


async def test_the_lag_and_the_timer_backlog_are_reported(harness: Harness) -> None:
    await harness.publish([harness.event("m1", type=EventType.GROUP)])
    worker, consumer = harness.worker(), await subscribe(harness)
    await run_until_idle(worker, consumer)
    harness.clock.advance(timedelta(days=3))
    await harness.publish([harness.event("m2", event="Nothing Relevant", account="other")])
    worker.stream.lag.reported_at = float("-inf")
    await worker.stream.report_lag()

    def sample(name: str, **labels: str) -> float | None:
        return harness.registry.get_sample_value(name, labels)

    events = [tp for tp in consumer.assignment() if tp.topic == Topic.ACCOUNT_EVENTS]
    now = int(harness.clock.now().timestamp())
    async with harness.sessions() as session:
        ours = await session.scalar(
            select(func.count()).where(
                TimerRow.workspace_id == harness.workspace, TimerRow.due_at <= now
            )
        )
        due = await session.scalar(  # other tests' timers share the PostgreSQL database
            select(func.count()).where(
                TimerRow.partition.in_([tp.partition for tp in events]), TimerRow.due_at <= now
            )
        )
    assert ours == 2  # the first node's due date and a review
    assert sample("milepost_engine_timer_backlog") == due
    lags = [
        sample("milepost_engine_consumer_lag", topic=tp.topic, partition=str(tp.partition))
        for tp in events
    ]
    assert sum(lag or 0 for lag in lags) == 1
    await consumer.close()


def test_the_labelled_counters_are_looked_up_once_and_count_into_their_series() -> None:
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)

    assert metrics.records_of("milepost.accounts.events", "applied") is metrics.records_of(
        "milepost.accounts.events", "applied"
    )
    metrics.records_of("milepost.accounts.events", "applied").inc(3)
    metrics.triggers_of("node_entered").inc()

    labels = {"topic": "milepost.accounts.events", "outcome": "applied"}
    assert registry.get_sample_value("milepost_engine_records_total", labels) == 3
    assert (
        registry.get_sample_value("milepost_engine_triggers_total", {"kind": "node_entered"}) == 1
    )
