"""The attribution stage on the in-memory bus and on Kafka, with SQLite and PostgreSQL:
group, identify and track calls attributed, unknown users left out, copies dropped, dead
letters, memberships kept across restarts, and each event published once across a crash
between the database commit and the publish."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.attribution.models import AttributionOutboxRow, MembershipRow
from shared.attribution.stage import INPUT_TOPICS, account_event_record
from shared.bus import Bus, OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.bus.partitioning import partition_for
from shared.clock import FrozenClock
from shared.consuming.origins import origin_of
from shared.contracts import TOPICS, AccountEvent, ContactRole, EventEnvelope, EventType, Topic
from shared.contracts.events import EventRecord, event_id_for
from shared.contracts.topics import DeadLetter
from shared.errors import BusUnavailable
from shared.identity import Attribution, Membership
from tests.shared.attribution.support import Attributing, step_until_applied
from tests.shared.bus.support import event_record, read_to_end, records_to_end

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


class Harness(Attributing):
    workspace: str = ""

    def event(self, message: str, **fields: Any) -> OutgoingRecord:
        return event_record(self.workspace, message, T0, **fields)

    async def attributed(self) -> list[AccountEvent]:
        """This workspace's events on ``milepost.accounts.events``."""
        found = await read_to_end(self.bus, Topic.ACCOUNT_EVENTS, AccountEvent)
        return [e for _, _, e in found if e.workspace_id == self.workspace]

    def outcome(self, name: str) -> float | None:
        return self.registry.get_sample_value(
            "milepost_attribution_records_total", {"outcome": name}
        )


@pytest.fixture
async def harness(bus: Bus, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Harness]:
    tag = uuid.uuid4().hex[:10]
    harness = Harness(bus, sessions, FrozenClock(T0), f"attribution-{tag}")
    harness.workspace = f"ws{tag}"
    yield harness
    await harness.close()


def by_message(events: Sequence[AccountEvent], workspace: str) -> dict[str, AccountEvent]:
    found = {e.message_id: e for e in events}
    assert all(e.event_id == event_id_for(workspace, m) for m, e in found.items())
    return found


async def test_group_identify_and_track_calls_are_published_on_their_account(
    harness: Harness,
) -> None:
    h = harness
    await h.publish(
        [
            h.event(
                "g1",
                type=EventType.GROUP,
                user="boss",
                context={"traits": {"roles": ["decision_maker"]}},
            ),
            h.event(
                "i1",
                type=EventType.IDENTIFY,
                account="globex",
                user="ada",
                traits={"role": "admin"},
            ),
        ]
    )
    await h.publish(  # a user's partition is not ordered with its account's: later
        [
            h.event("t1", event="Report Exported", account=None, user="boss"),
            h.event("t2", event="Logged In", account=None, user="ada"),
            h.event("t3", event="Order Completed", account="acme", user="ada"),
        ]
    )

    found = by_message(await h.attributed(), h.workspace)
    assert {m: (e.account_id, e.actor_roles, e.joined) for m, e in found.items()} == {
        "g1": ("acme", [ContactRole.DECISION_MAKER], True),
        "i1": ("globex", [ContactRole.ADMIN], True),
        "t1": ("acme", [ContactRole.DECISION_MAKER], False),
        "t2": ("globex", [ContactRole.ADMIN], False),
        "t3": ("acme", [], False),  # ada acts outside her account: no roles there
    }
    assert found["t1"].event == "Report Exported"
    assert h.outcome("attributed") == 5
    async with h.sessions() as session:
        rows = (
            await session.scalars(
                select(MembershipRow).where(MembershipRow.workspace_id == h.workspace)
            )
        ).all()
    assert sorted((r.user_id, r.account_id, r.roles) for r in rows) == [
        ("ada", "globex", ["admin"]),
        ("boss", "acme", ["decision_maker"]),
    ]


async def test_an_event_of_an_unknown_user_is_counted_and_left_out(harness: Harness) -> None:
    h = harness
    await h.publish(
        [
            h.event("t1", event="Logged In", account=None, user="stranger"),
            h.event("t2", event="Logged In", account=None, user=None, anonymous_id="anon-1"),
        ]
    )
    await h.publish([h.event("g1", type=EventType.GROUP, user="stranger")])

    assert [e.message_id for e in await h.attributed()] == ["g1"]
    assert h.outcome("unattributed") == 2


async def test_memberships_are_kept_for_the_next_run(harness: Harness) -> None:
    h = harness
    traits = {"traits": {"roles": ["decision_maker", "influencer"]}}
    await h.publish([h.event("g1", type=EventType.GROUP, user="boss", context=traits)])
    await h.close()
    h.stage = h.consumer = None  # a restart: the next stage knows only what was stored

    await h.publish(
        [
            h.event("t1", event="Logged In", account=None, user="boss"),
            h.event("t2", event="Logged In", account=None, user="stranger"),
        ]
    )

    found = by_message(await h.attributed(), h.workspace)
    assert found["t1"].account_id == "acme"
    assert sorted(found) == ["g1", "t1"]  # the stranger is no one's member
    assert sorted(found["t1"].actor_roles) == [ContactRole.DECISION_MAKER, ContactRole.INFLUENCER]


async def test_an_event_published_twice_at_two_offsets_is_attributed_once(
    harness: Harness,
) -> None:
    h = harness
    await h.publish([h.event("g1", type=EventType.GROUP, user="boss")])
    login = h.event("t1", event="Logged In", account=None, user="boss")
    await h.publish([login, login])
    await h.publish([login])

    assert sorted(e.message_id for e in await h.attributed()) == ["g1", "t1"]
    assert h.outcome("duplicate") == 2


async def test_a_malformed_record_goes_to_the_dead_letter_topic_and_the_stage_goes_on(
    harness: Harness,
) -> None:
    h = harness
    await h.publish(
        [
            OutgoingRecord(Topic.EVENTS, f"{h.workspace}/a/acme".encode(), b'{"not": "an event"}'),
            h.event("g1", type=EventType.GROUP),
        ]
    )

    letters = [
        d
        for d in await read_to_end(h.bus, Topic.EVENTS_DLQ, DeadLetter)
        if d[2].consumer_group == h.group
    ]
    assert len(letters) == 1
    assert letters[0][2].topic == Topic.EVENTS
    assert "not a valid event envelope: event_id: Field required" in letters[0][2].reason
    assert [e.message_id for e in await h.attributed()] == ["g1"]


async def test_a_crash_after_the_database_commit_publishes_each_event_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    await h.publish([h.event("g1", type=EventType.GROUP, user="boss")])
    await h.close()
    await h.bus.publish(
        [h.event(f"t{i}", event="Logged In", account=None, user="boss") for i in range(5)]
    )
    crashing = h.new_stage()
    consumer = await h.bus.subscribe(list(INPUT_TOPICS), group_id=h.group)
    real_publish = h.bus.publish

    async def lost_publish(records: Any) -> None:
        raise BusUnavailable("crash between the database commit and the publish")

    monkeypatch.setattr(h.bus, "publish", lost_publish)
    for _ in range(50):
        await crashing.step(consumer)
        async with h.sessions() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(AttributionOutboxRow)
                .where(AttributionOutboxRow.record_id.like("attributed:%"))
                .where(
                    AttributionOutboxRow.partition.in_([tp.partition for tp in crashing.applied])
                )
            )
        if waiting:
            break
    assert waiting, "the crashing stage committed nothing"
    await consumer.close()
    monkeypatch.setattr(h.bus, "publish", real_publish)
    assert [e.message_id for e in await h.attributed()] == ["g1"]

    h.stage = None
    await h.drain()  # the next owner publishes the outbox first, then goes on
    await h.publish([h.event("t9", event="Logged In", account=None, user="boss")])

    messages = [e.message_id for e in await h.attributed()]
    assert sorted(messages) == ["g1", "t0", "t1", "t2", "t3", "t4", "t9"]


async def test_each_attributed_event_carries_its_input_record_as_its_origin(
    harness: Harness,
) -> None:
    h = harness
    await h.publish([h.event("g1", type=EventType.GROUP, user="boss")])
    await h.publish([h.event("t1", event="Logged In", account=None, user="boss")])
    inputs = {
        envelope.message_id: (f"{Topic.EVENTS}:{partition}", (offset, 0))
        for partition, offset, envelope in await read_to_end(h.bus, Topic.EVENTS, EventEnvelope)
        if envelope.workspace_id == h.workspace
    }
    attributed = {
        AccountEvent.model_validate_json(r.value).message_id: origin_of(r)
        for r in await records_to_end(h.bus, Topic.ACCOUNT_EVENTS)
        if AccountEvent.model_validate_json(r.value).workspace_id == h.workspace
    }
    assert attributed == inputs
    assert len(inputs) == 2


def test_an_account_event_record_is_keyed_by_its_account_and_carries_the_trace() -> None:
    event = EventEnvelope.model_validate_json(
        event_record("ws", "m1", T0, event="Logged In", account=None, user="boss").value
    )
    read = EventRecord(**event.model_dump())
    attribution = Attribution(None, "acme", frozenset({"admin", "decision_maker"}))
    trace = (("traceparent", b"00-ab-cd-01"),)

    record = account_event_record(read, attribution, trace)

    assert (record.topic, record.key, record.headers) == (Topic.ACCOUNT_EVENTS, b"ws/a/acme", trace)
    attributed = AccountEvent.model_validate_json(record.value)
    assert attributed == AccountEvent(
        **{
            **dict(event),
            "account_id": "acme",
            "actor_roles": [ContactRole.ADMIN, ContactRole.DECISION_MAKER],
        }
    )
    joined = account_event_record(
        read, Attribution(Membership("acme", frozenset()), "acme", frozenset())
    )
    assert AccountEvent.model_validate_json(joined.value).joined


async def test_a_membership_learned_by_another_member_counts_from_the_next_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The group call is on the account's partition, the user's events on the user's: two
    members; the one owning the user learns the membership from the database."""
    tag = uuid.uuid4().hex[:8]
    bus = InMemoryBus()
    await bus.ensure_topics([replace(s, partitions=2) for s in TOPICS], replication_factor=1)
    h = Harness(bus, sessions, FrozenClock(T0), f"attribution-{tag}")
    h.workspace = f"ws{tag}"
    members = [h.new_stage(), h.new_stage()]
    consumers = [await bus.subscribe(list(INPUT_TOPICS), group_id=h.group) for _ in members]
    account = partition_for(f"{h.workspace}/a/acme".encode(), 2)
    user = next(
        u
        for u in (f"u{n}" for n in range(50))
        if partition_for(f"{h.workspace}/u/{u}".encode(), 2) != account
    )

    async def settle(records: list[OutgoingRecord]) -> None:
        await bus.publish(records)
        for stage, consumer in zip(members, consumers, strict=True):
            await step_until_applied(stage, consumer)

    await settle([h.event("t1", event="Logged In", account=None, user=user)])
    await settle([h.event("g1", type=EventType.GROUP, user=user)])
    await settle([h.event("t2", event="Logged In", account=None, user=user)])

    assert sorted(e.message_id for e in await h.attributed()) == ["g1", "t2"]
    for consumer in consumers:
        await consumer.close()
