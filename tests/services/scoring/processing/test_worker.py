"""The scoring consumer on the in-memory bus and on Kafka, with SQLite and PostgreSQL: a
seeded decline raising and clearing signals, the sweep, attribution, dead letters,
exactly-once across a crash, and a rebuild by replay."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.paths.compiled import GrowthPath, compile_path
from services.node_engine.paths.files import GrowthPathFile
from services.node_engine.paths.service import REFERENCE_PATHS, PublishedPath
from services.scoring.accounts.models import ScoreHistoryRow, ScoringAccountRow
from services.scoring.metrics import decode
from shared.attribution.models import MembershipRow
from shared.bus import OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.bus.partitioning import partition_for
from shared.clock import FrozenClock
from shared.consuming.models import AppliedOffsetRow
from shared.contracts import TOPICS, EventType, RiskLevel, ScoreKind, Topic
from shared.contracts.topics import DeadLetter
from shared.definitions import load_definition
from shared.errors import BusUnavailable
from tests.services.scoring.support import T0, Harness, run_until_idle

USERS = ("boss", "admin1", "u1", "u2", "u3")


def reference_path(name: str) -> GrowthPath:
    return compile_path(
        load_definition(REFERENCE_PATHS / f"{name}.yaml", GrowthPathFile), version=1
    )


def published(path: GrowthPath, workspace: str) -> PublishedPath:
    return PublishedPath(
        workspace_id=workspace,
        path_id=path.id,
        current=path,
        paused=False,
        migration="pin",
        node_map=MappingProxyType({}),
        versions=MappingProxyType({1: path}),
    )


ROLES = {"boss": ["decision_maker"], "admin1": ["admin"]}


def seed(h: Harness, days: int) -> list[OutgoingRecord]:
    """An account with a decision maker, an admin and three end users who log in ten times
    a day and export 100 rows a day for ``days`` days up to today, a contract for 10 seats
    renewing in 300 days, and a paid invoice."""
    first = h.clock.now() - timedelta(days=days - 1)
    records = [
        h.event(
            f"g-{user}",
            type=EventType.GROUP,
            user=user,
            at=first,
            context={"traits": {"roles": ROLES.get(user, [])}},
        )
        for user in USERS
    ]
    renewal = (h.clock.now() + timedelta(days=300)).date().isoformat()
    records += [
        h.crm(
            "contract",
            "contract.signed",
            {
                "contract_id": "c1",
                "value": "12000",
                "currency": "EUR",
                "starts_on": first.date().isoformat(),
                "ends_on": renewal,
                "seats": 10,
                "acquisition_cost": "9000",
            },
            at=first,
        ),
        h.crm(
            "invoice",
            "invoice.paid",
            {"invoice_id": "i1", "amount": "1000", "currency": "EUR"},
            at=first,
        ),
    ]
    for day in range(days):
        records += usage(h, f"d{day}", at_days_ago=days - 1 - day)
    return records


def usage(h: Harness, tag: str, *, at_days_ago: int = 0, rows: int = 100) -> list[OutgoingRecord]:
    """A normal day: each user logs in twice, one report of ``rows`` rows is exported."""
    at = h.clock.now() - timedelta(days=at_days_ago)
    logins = [
        h.event(f"{tag}-login-{user}-{n}", event="Logged In", user=user, at=at)
        for user in USERS
        for n in range(2)
    ]
    export = h.event(
        f"{tag}-export", event="Report Exported", user="u1", at=at, properties={"rows": rows}
    )
    return [*logins, export]


async def test_a_seeded_decline_raises_the_right_signals_and_clears_when_usage_recovers(
    harness: Harness,
) -> None:
    h = harness
    day0 = (h.clock.now() - timedelta(days=34)).date()
    await h.publish(seed(h, 35))  # days 0..34, today is day 34
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)
    assert [s.kind for s in await h.scores()] == [ScoreKind.SCORE_CHANGED]

    h.clock.advance(timedelta(days=1))  # day 35: a normal day, and a 20,000-row export
    await h.publish([*usage(h, "d35"), *usage(h, "d35-burst", rows=20_000)[-1:]])
    await run_until_idle(worker, consumer)
    for _ in range(36, 40):  # days 36 to 39: nobody logs in; the sweep re-scores each day
        h.clock.advance(timedelta(days=1))
        await run_until_idle(worker, consumer)
    for day in range(40, 46):  # days 40 to 45: usage recovers
        h.clock.advance(timedelta(days=1))
        await h.publish(usage(h, f"d{day}"))
        await run_until_idle(worker, consumer)

    scores = await h.scores()
    risk = [
        (s.kind, (s.occurred_at.date() - day0).days, s.signals, s)
        for s in scores
        if s.kind in (ScoreKind.RISK_RAISED, ScoreKind.RISK_CLEARED)
    ]
    # a new level is announced once it has held for the dwell (an hour of event time):
    # the day after it was assessed, with that day's sweep or events
    assert [(kind.value, day, signals, s.risk_level) for kind, day, signals, s in risk] == [
        ("risk_raised", 35, ["data_export"], RiskLevel.LOW),
        ("risk_raised", 36, ["data_export"], RiskLevel.HIGH),
        ("risk_raised", 39, ["data_export", "logins_falling"], RiskLevel.HIGH),
        ("risk_cleared", 42, ["logins_falling"], RiskLevel.HIGH),
        ("risk_cleared", 43, ["logins_falling"], RiskLevel.MEDIUM),
        ("risk_cleared", 44, [], RiskLevel.MEDIUM),
        ("risk_cleared", 45, [], RiskLevel.LOW),
    ]
    export, _, falling, export_cleared, _, recovered, _ = (event for *_, event in risk)
    assert export.explanation["assessed_level"] == "high"
    assert export.explanation["signals"]["data_export"]["sentence"] == (
        "A large data export: 20,700 rows exported in the last 7 days, 29.6x the usual "
        "(weekly average 700). Data may be being pulled out."
    )
    assert [r.signal for r in export.reasons] == ["data_export"]
    assert export.reasons[0].figures == {"rows_7d": 20_700, "weekly_average": 700}
    assert falling.explanation["raised"] == ["logins_falling"]
    assert falling.explanation["signals"]["logins_falling"]["sentence"] == (
        "Logins are clearly falling: 30 in the last 7 days against a weekly average of 70 "
        "over 28 days (43% of usual)."
    )
    assert export_cleared.explanation["cleared"] == ["data_export"]
    assert recovered.explanation["cleared"] == ["logins_falling"]
    assert recovered.explanation["north_star"]["metric"] == "orders"
    async with h.sessions() as session:
        row = await session.get(ScoringAccountRow, (h.workspace, "acme"))
        history = (
            await session.scalars(
                select(ScoreHistoryRow.score_event_id)
                .where(ScoreHistoryRow.workspace_id == h.workspace)
                .order_by(ScoreHistoryRow.position)
            )
        ).all()
    assert row is not None
    assert row.risk_level == "low"
    assert row.risk is not None
    assert row.risk["signals"] == []
    assert row.contract_value == 12000
    assert row.acquisition_cost == 9000
    assert history == [s.score_event_id for s in scores]
    await consumer.close()


async def test_the_sweep_raises_a_signal_that_time_alone_brings(harness: Harness) -> None:
    h = harness
    await h.publish(
        [
            h.event(
                "g1",
                type=EventType.GROUP,
                user="boss",
                context={"traits": {"roles": ["decision_maker"]}},
            ),
            h.event("l1", event="Logged In", user="boss"),
        ]
    )
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)
    h.clock.advance(timedelta(days=29))
    await run_until_idle(worker, consumer)
    assert [s for s in await h.scores() if s.kind is not ScoreKind.SCORE_CHANGED] == []
    h.clock.advance(timedelta(days=2))
    await run_until_idle(worker, consumer)

    raised = [s for s in await h.scores() if s.kind is ScoreKind.RISK_RAISED]
    assert [s.signals for s in raised] == [["decision_maker_inactive"]]
    assert raised[0].explanation["signals"]["decision_maker_inactive"]["sentence"] == (
        "The decision maker has not been active for 31 days."
    )
    swept = harness.registry.get_sample_value("milepost_scoring_swept_accounts_total")
    assert swept is not None
    assert swept >= 2
    await consumer.close()


async def test_an_event_with_only_a_user_id_counts_for_the_users_account(
    harness: Harness,
) -> None:
    h = harness
    await h.publish([h.event("g1", type=EventType.GROUP, user="u7")])
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)
    await h.publish(
        [
            h.event("l1", event="Logged In", account=None, user="u7"),
            h.event("l2", event="Logged In", account=None, user="stranger"),
        ]
    )
    await run_until_idle(worker, consumer)

    async with h.sessions() as session:
        row = await session.get(ScoringAccountRow, (h.workspace, "acme"))
        member = await session.get(MembershipRow, (h.workspace, "u7"))
    assert row is not None
    assert member is not None
    assert member.account_id == "acme"
    assert decode(row.metrics).amounts["logins"][-1][1] == 1.0
    assert (
        h.attribution.registry.get_sample_value(
            "milepost_attribution_records_total", {"outcome": "unattributed"}
        )
        == 1
    )
    await consumer.close()


async def test_an_event_published_twice_at_two_offsets_is_folded_once(harness: Harness) -> None:
    """A client's retry after a 503 whose event reached the topic anyway: the copies (the
    same event id, later offsets, in the same batch and in later ones) count once (the
    attribution stage drops them)."""
    h = harness
    await h.publish([h.event("g1", type=EventType.GROUP, user="u7")])
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)
    login = h.event("l1", event="Logged In", account=None, user="u7")
    await h.publish([login, login])
    await run_until_idle(worker, consumer)
    await h.publish([login])
    await run_until_idle(worker, consumer)

    async with h.sessions() as session:
        row = await session.get(ScoringAccountRow, (h.workspace, "acme"))
    assert row is not None
    assert decode(row.metrics).amounts["logins"][-1][1] == 1.0
    duplicates = h.attribution.registry.get_sample_value(
        "milepost_attribution_records_total", {"outcome": "duplicate"}
    )
    assert duplicates == 2
    await consumer.close()


async def test_malformed_records_go_to_the_dead_letter_topic_and_the_consumer_goes_on(
    harness: Harness,
) -> None:
    h = harness
    await h.publish(
        [
            OutgoingRecord(
                Topic.ACCOUNT_EVENTS, f"{h.workspace}/a/acme".encode(), b'{"not": "an event"}'
            ),
            h.event("e1", event="Report Exported", properties={"rows": "lots"}),
            h.event("e2", event="Logged In"),
        ]
    )
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)

    letters = [d for d in await h.read(Topic.EVENTS_DLQ, DeadLetter) if d.consumer_group == h.group]
    assert sorted(d.reason for d in letters) == [
        "not a valid account event: event_id: Field required; workspace_id: Field required; "
        "message_id: Field required; type: Field required; account_id: Field required",
        "property 'rows' is 'lots', not a number",
    ]
    assert h.registry.get_sample_value("milepost_scoring_dead_letters_total") == 2
    async with h.sessions() as session:
        row = await session.get(ScoringAccountRow, (h.workspace, "acme"))
    assert row is not None
    store = decode(row.metrics)
    assert "report_exports" not in store.amounts  # the bad event counted nowhere
    assert store.amounts["logins"][-1][1] == 1.0
    await consumer.close()


async def test_a_crash_after_the_database_commit_publishes_nothing_twice(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    await h.publish(seed(h, 30))
    crashing, consumer = h.worker(), await h.subscribe()
    real_publish = h.bus.publish

    async def lost_publish(records: Any) -> None:
        raise BusUnavailable("crash between the database commit and the publish")

    monkeypatch.setattr(h.bus, "publish", lost_publish)
    for _ in range(5):
        await crashing.step(consumer)
    await consumer.close()
    monkeypatch.setattr(h.bus, "publish", real_publish)
    assert await h.scores() == []

    h.clock.advance(timedelta(days=1))
    await h.publish(usage(h, "next", rows=50_000))
    survivor, consumer = h.worker(), await h.subscribe()
    await run_until_idle(survivor, consumer)

    scores = await h.scores()
    ids = [s.score_event_id for s in scores]
    assert len(ids) == len(set(ids))
    assert [s.kind for s in scores][-1] is ScoreKind.RISK_RAISED
    async with h.sessions() as session:
        history = (
            await session.scalars(
                select(ScoreHistoryRow.score_event_id).where(
                    ScoreHistoryRow.workspace_id == h.workspace
                )
            )
        ).all()
    assert sorted(history) == sorted(ids)
    await consumer.close()


async def test_lost_state_is_rebuilt_by_replaying_the_topic_with_the_same_scores(
    harness: Harness,
) -> None:
    h = harness
    await h.publish(seed(h, 40))
    await h.publish(usage(h, "burst", rows=30_000))
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    async def state() -> tuple[Any, ...]:
        async with h.sessions() as session:
            row = await session.get(ScoringAccountRow, (h.workspace, "acme"))
        assert row is not None
        return (
            decode(row.metrics),
            row.facts,
            row.health,
            row.band,
            row.risk_level,
            row.risk,
            row.north_star,
            row.contract_value,
        )

    before = await state()
    assert before[4] == "high"
    async with h.sessions() as session:  # the state is lost
        for model in (ScoringAccountRow, ScoreHistoryRow):
            await session.execute(delete(model).where(model.workspace_id == h.workspace))
        await session.execute(
            delete(AppliedOffsetRow).where(AppliedOffsetRow.consumer_group == h.group)
        )
        await session.commit()
    h.group += "-replay"  # and the consumer group starts from the beginning
    replaying, consumer = h.worker(), await h.subscribe()
    await run_until_idle(replaying, consumer)

    assert await state() == before
    await consumer.close()


async def test_the_lag_is_reported_per_partition(harness: Harness) -> None:
    h = harness
    await h.publish([h.event("m1", event="Logged In")])
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)
    await h.publish([h.event("m2", event="Logged In", account="other")])
    worker.stream.lag.reported_at = float("-inf")
    await worker.stream.report_lag()

    lags = [
        h.registry.get_sample_value(
            "milepost_scoring_consumer_lag", {"topic": tp.topic, "partition": str(tp.partition)}
        )
        for tp in consumer.assignment()
    ]
    assert sum(lag or 0 for lag in lags) == 1
    assert h.registry.get_sample_value("milepost_scoring_records_total", {"outcome": "scored"}) == 1
    assert (
        h.registry.get_sample_value(
            "milepost_scoring_score_events_total", {"kind": "score_changed"}
        )
        == 1
    )
    await consumer.close()


def merchant(h: Harness, account: str, *, listings: int, orders: int, amount: int) -> list[Any]:
    """A merchant that joins (the platform-merchant path enrols it), publishes listings and
    completes orders of ``amount`` each; the engine's trigger puts it on the path."""
    return [
        h.event(f"{account}-g", type=EventType.GROUP, account=account, user=f"{account}-u"),
        h.enrolled(account, "platform-merchant"),
        *(
            h.event(f"{account}-l{i}", event="Listing Published", account=account)
            for i in range(listings)
        ),
        *(
            h.event(
                f"{account}-o{i}",
                event="Order Completed",
                account=account,
                properties={"amount": amount},
            )
            for i in range(orders)
        ),
    ]


async def test_tiers_and_the_core_problem_among_tier_peers(harness: Harness) -> None:
    h = harness
    h.paths = (published(reference_path("platform-merchant"), h.workspace),)
    peers = [
        record
        for n in range(1, 21)
        for record in merchant(h, f"m{n}", listings=5, orders=10, amount=100)
    ]
    await h.publish(peers)
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)
    await h.publish(merchant(h, "m0", listings=40, orders=1, amount=100))
    await h.publish(
        [h.event("m1-big", event="Order Completed", account="m1", properties={"amount": 20_000})]
    )
    await run_until_idle(worker, consumer)

    scores = await h.scores()
    tiers = [
        (s.account_id, s.explanation["sentence"])
        for s in scores
        if s.kind is ScoreKind.TIER_CHANGED
    ]
    assert ("m1", "Promotion: L1 -> L2; 28-day GMV was 21000, which reached 10000.") in tiers
    assert ("m0", "Placement: no tier -> L1; 28-day GMV was 100, which reached 0.") in tiers
    assert len(tiers) == 22
    (diagnosis,) = [s for s in scores if s.kind is ScoreKind.DIAGNOSIS]
    assert diagnosis.account_id == "m0"
    assert diagnosis.tier == "L1"
    assert diagnosis.explanation["playbook"] == "merchant-listing-conversion"
    assert diagnosis.explanation["sentence"] == (
        "Listings are published but few of them sell: by listings published (28 days) the "
        "account is in the top half of L1 (98th percentile), but by orders per listing "
        "published (28 days) it is in the bottom 20% of L1 (2nd percentile)."
    )
    async with h.sessions() as session:
        row = await session.get(ScoringAccountRow, (h.workspace, "m1"))
    assert row is not None
    assert row.tier == "L2"
    await consumer.close()


async def test_an_account_written_by_two_members_is_fenced_and_retried(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The triggers topic may have another partition count than the events (the operator's
    choice): a trigger enrolling an account is folded by the member owning its trigger
    partition; the member owning the account's events finds another revision, rolls back
    and retries."""
    tag = uuid.uuid4().hex[:8]
    h = Harness(InMemoryBus(), sessions, FrozenClock(T0), f"ws{tag}", f"scoring-{tag}")
    h.paths = (published(reference_path("platform-merchant"), h.workspace),)
    specs = [replace(s, partitions=5 if s.topic == Topic.TRIGGERS else 4) for s in TOPICS]
    await h.bus.ensure_topics(specs, replication_factor=1)
    first, one = h.worker(), await h.subscribe()
    registries = {id(first): h.registry}
    second, two = h.worker(), await h.subscribe()
    registries[id(second)] = h.registry
    consumers = {id(first): one, id(second): two}

    def parts(account: str) -> tuple[int, int]:
        key = f"{h.workspace}/a/{account}".encode()
        return partition_for(key, 4), partition_for(key, 5)

    account = next(a for a in (f"a{n}" for n in range(50)) if len({p % 2 for p in parts(a)}) == 2)
    owns = any(tp.partition == parts(account)[0] for tp in one.assignment())
    owner = first if owns else second

    async def settle() -> None:
        for _ in range(3):
            for worker in (first, second):
                await run_until_idle(worker, consumers[id(worker)])

    await h.publish([h.event("l1", event="Logged In", account=account)])
    await settle()
    await h.publish([h.enrolled(account, "platform-merchant")])
    await settle()
    await h.publish([h.event("l2", event="Logged In", account=account)])
    await settle()

    async with h.sessions() as session:
        row = await session.get(ScoringAccountRow, (h.workspace, account))
    assert row is not None
    assert decode(row.metrics).amounts["logins"][-1][1] == 2.0
    retried = registries[id(owner)].get_sample_value(
        "milepost_scoring_batch_retries_total", {"reason": "partition_moved"}
    )
    assert retried == 1
    await one.close()
    await two.close()
