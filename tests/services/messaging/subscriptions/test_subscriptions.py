"""Subscriptions: filters, the consumer that fans triggers out (memory bus and Kafka),
signed webhooks a receiver verifies, replays of a time range, and the API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.messaging.channels.http import HttpChannel, http_client
from services.messaging.channels.webhooks import WebhookFormat
from services.messaging.deliveries.handoff import Handoff
from services.messaging.deliveries.message import delivery_id_of
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.processing.consumer import ConsumerMetrics
from services.messaging.processing.received import ReceivedTrigger
from services.messaging.subscriptions import service
from services.messaging.subscriptions.consumer import SubscriptionsConsumer
from services.messaging.subscriptions.models import SeenTriggerRow
from services.messaging.subscriptions.service import Filters, matches
from shared.bus import Bus, Consumer, OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import Topic, TriggerEnvelope
from shared.contracts.topics import DeadLetter
from shared.errors import CommitFailed
from tests.services.messaging.api import delivery_api
from tests.services.messaging.channels.support import INTERNAL_URLS
from tests.services.messaging.channels.support import OPEN_GUARD as OPEN
from tests.services.messaging.deliveries.support import LEASE, ScriptedChannel, dispatcher
from tests.services.messaging.http_sink import running_sink
from tests.services.messaging.support import RISK_AT, read, risk_payload, trigger_envelope

T0 = datetime.now(UTC).replace(microsecond=0)


def overdue(n: int, workspace: str = "ws_test", **changes: Any) -> TriggerEnvelope:
    changes.setdefault("at", T0 + timedelta(minutes=n))
    return trigger_envelope(
        trigger_id=f"{workspace}:t-{n}",
        workspace=workspace,
        **changes,
    )


def received(
    *triggers: TriggerEnvelope, trace: Mapping[str, str] | None = None
) -> list[ReceivedTrigger]:
    """Triggers as the subscriptions consumer decodes them."""
    return [ReceivedTrigger(read(t), trace or {}) for t in triggers]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(), True),
        (Filters(kinds=("node_overdue",)), True),
        (Filters(kinds=("stage_entered",)), False),
        (Filters(paths=("platform-merchant",), nodes=("complete_profile",)), True),
        (Filters(nodes=("first_order",)), False),
        (Filters(roles=("decision_maker", "admin")), True),
        (Filters(roles=("decision_maker",)), False),
    ],
)
def test_filters(filters: Filters, expected: bool) -> None:
    assert matches(filters, read(overdue(1))) is expected


async def subscribe(
    sessions: async_sessionmaker[AsyncSession], url: str, workspace: str = "ws_test", **filters: Any
) -> tuple[str, str]:
    async with sessions() as session:
        row = await service.create_subscription(
            session,
            workspace,
            url=url,
            filters=Filters(**filters),
            description=None,
            guard=OPEN,
            now=T0,
        )
        await session.commit()
    return row.subscription_id, row.secret


async def test_a_subscription_delivery_carries_the_trace_of_its_trigger(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    context = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    await subscribe(own_sessions, "https://crm.example/hooks")
    async with own_sessions() as session:
        await service.fan_out(session, received(overdue(1), trace=context), T0)
        await service.fan_out(session, received(overdue(2)), T0)
        await session.commit()
        rows = await session.scalars(select(DeliveryRow).order_by(DeliveryRow.trigger_id))
        assert [row.trace for row in rows] == [context, {}]


async def test_matching_triggers_arrive_signed_with_the_subscriptions_secret(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FrozenClock(T0)
    async with running_sink() as sink, http_client(2.0, OPEN) as client:
        _, secret = await subscribe(own_sessions, f"{sink.url}/crm", kinds=("node_overdue",))
        await subscribe(own_sessions, f"{sink.url}/other", kinds=("stage_entered",))
        async with own_sessions() as session:
            fanned = await service.fan_out(session, received(overdue(1), overdue(1)), T0)
            again = await service.fan_out(session, received(overdue(1)), T0)
            await session.commit()
        assert (fanned.queued, again.queued) == (1, 0)
        channel = HttpChannel(WebhookFormat(), client=client, guard=OPEN, clock=clock)
        assert (
            await dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": channel}).step() == 1
        )

    (request,) = sink.received
    assert request.path == "/crm"
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "trigger.node_overdue"
    assert TriggerEnvelope.model_validate(payload["data"]) == overdue(1)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0").verify(request.body, request.headers)


async def test_bodies_and_the_remembered_trigger_are_its_json_as_the_engine_writes_it(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A subscriber receives, live or replayed, the bytes the engine's envelope writes."""
    risk = overdue(
        1,
        kind="risk_changed",
        node=None,
        reason="Risk rose to high: 数据导出",
        at=RISK_AT,
        payload=risk_payload("A large data export"),
    )
    subscription_id, _ = await subscribe(own_sessions, "http://crm.example.com/hook")
    async with own_sessions() as session:
        await service.fan_out(session, received(risk), T0)
        await service.replay(
            session,
            "ws_test",
            subscription_id,
            since=risk.occurred_at,
            until=T0 + timedelta(days=1),
            now=T0,
        )
        await session.commit()
        bodies = list(await session.scalars(select(DeliveryRow.body)))
        remembered = list(await session.scalars(select(SeenTriggerRow.envelope)))
    assert bodies == [risk.model_dump_json()] * 2
    assert remembered == [risk.model_dump_json()]


async def test_a_replay_sends_the_range_again(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    subscription_id, _ = await subscribe(
        own_sessions, "http://crm.example.com/hook", roles=("admin",)
    )
    async with own_sessions() as session:
        await service.fan_out(
            session,
            received(*(overdue(n) for n in range(6)), overdue(9, roles=("decision_maker",))),
            T0,
        )
        await session.commit()
        replay_id, queued = await service.replay(
            session,
            "ws_test",
            subscription_id,
            since=T0 + timedelta(minutes=2),
            until=T0 + timedelta(minutes=5),
            now=T0 + timedelta(hours=1),
        )
        await session.commit()
        assert queued == 3
        rows = await session.scalars(
            select(DeliveryRow.trigger_id).where(DeliveryRow.step_id == f"replay:{replay_id}")
        )
        assert sorted(rows) == ["ws_test:t-2", "ws_test:t-3", "ws_test:t-4"]
        with pytest.raises(service.SubscriptionNotFound):
            await service.replay(session, "other", subscription_id, since=T0, until=T0, now=T0)


async def test_triggers_older_than_the_retention_are_forgotten(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session:
        await service.fan_out(
            session, received(overdue(0, at=T0 - timedelta(days=3)), overdue(1), overdue(2)), T0
        )
        await session.commit()
    consumer = SubscriptionsConsumer(
        bus=InMemoryBus(),
        sessions=own_sessions,
        clock=FrozenClock(T0),
        group_id="subs",
        retention=timedelta(days=2),
        metrics=ConsumerMetrics(CollectorRegistry()),
    )
    await consumer.refresh()
    async with own_sessions() as session:
        kept = await session.scalars(select(SeenTriggerRow.trigger_id))
        assert sorted(kept) == ["ws_test:t-1", "ws_test:t-2"]


async def run_until_idle(worker: SubscriptionsConsumer, consumer: Consumer) -> None:
    for _ in range(200):
        await worker.step(consumer)
        owned = consumer.assignment()
        if not owned:
            continue
        ends = await worker.bus.end_offsets(sorted(owned, key=str))
        if all(worker.applied.get(tp, 0) >= end for tp, end in ends.items() if end):
            return
    raise AssertionError("the subscriptions consumer did not catch up")


def subscriptions_consumer(
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    group: str,
    *,
    registry: CollectorRegistry | None = None,
    handoff: Handoff | None = None,
) -> SubscriptionsConsumer:
    return SubscriptionsConsumer(
        bus=bus,
        sessions=sessions,
        clock=FrozenClock(T0),
        group_id=group,
        retention=timedelta(days=90),
        metrics=ConsumerMetrics(registry or CollectorRegistry()),
        handoff=handoff,
    )


async def test_the_consumer_fans_out_once_and_dead_letters_malformed_records(
    bus: Bus, sessions: async_sessionmaker[AsyncSession]
) -> None:
    workspace, group = f"ws{uuid.uuid4().hex[:10]}", f"subs-{uuid.uuid4().hex[:8]}"
    await subscribe(sessions, "http://crm.example.com/hook", workspace=workspace)
    records = [
        OutgoingRecord(Topic.TRIGGERS, t.key.encode(), t.model_dump_json().encode())
        for t in (overdue(1, workspace), overdue(2, workspace), overdue(1, workspace))
    ]
    records.append(OutgoingRecord(Topic.TRIGGERS, f"{workspace}/a/acme".encode(), b"{}"))
    await bus.publish(records)

    first = subscriptions_consumer(bus, sessions, group)
    consumer = await bus.subscribe([Topic.TRIGGERS], group_id=group)
    await run_until_idle(first, consumer)
    await consumer.close()

    async with sessions() as session:
        queued = await session.scalars(
            select(DeliveryRow.trigger_id).where(DeliveryRow.workspace_id == workspace)
        )
        assert sorted(queued) == [f"{workspace}:t-1", f"{workspace}:t-2"]

    reader = await bus.subscribe([Topic.TRIGGERS_DLQ], group_id=f"reader-{group}")
    letters: list[DeadLetter] = []
    for _ in range(50):
        letters += [
            DeadLetter.model_validate_json(r.value) for r in await reader.poll(timeout_ms=200)
        ]
        if any(letter.consumer_group == group for letter in letters):
            break
    await reader.close()
    (letter,) = [letter for letter in letters if letter.consumer_group == group]
    assert letter.reason.startswith("not a valid trigger envelope")


async def test_a_crash_before_the_offset_commit_queues_nothing_twice(
    bus: Bus, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, group = f"ws{uuid.uuid4().hex[:10]}", f"subs-{uuid.uuid4().hex[:8]}"
    await subscribe(sessions, "http://crm.example.com/hook", workspace=workspace)
    await bus.publish(
        [
            OutgoingRecord(Topic.TRIGGERS, t.key.encode(), t.model_dump_json().encode())
            for t in (overdue(n, workspace) for n in range(3))
        ]
    )
    crashing = subscriptions_consumer(bus, sessions, group)
    consumer = await bus.subscribe([Topic.TRIGGERS], group_id=group)

    async def lost_commit(_offsets: Any) -> None:
        raise CommitFailed("crash between the database commit and the offset commit")

    monkeypatch.setattr(consumer, "commit", lost_commit)
    for _ in range(5):
        await crashing.step(consumer)
    await consumer.close()

    registry = CollectorRegistry()
    survivor = subscriptions_consumer(bus, sessions, group, registry=registry)
    consumer = await bus.subscribe([Topic.TRIGGERS], group_id=group)
    await run_until_idle(survivor, consumer)
    await consumer.close()
    async with sessions() as session:
        queued = await session.scalars(
            select(DeliveryRow.trigger_id).where(DeliveryRow.workspace_id == workspace)
        )
        assert sorted(queued) == [f"{workspace}:t-{n}" for n in range(3)]
    replayed = registry.get_sample_value(
        "milepost_messaging_records_total", {"group": group, "outcome": "replayed"}
    )
    assert replayed == 3


async def test_a_delivery_leased_at_planning_is_sent_by_the_handoff_not_claimed(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, handoff = FrozenClock(T0), Handoff(lease=LEASE, backlog=10, wake=asyncio.Event())
    async with running_sink() as sink, http_client(2.0, OPEN) as client:
        _, secret = await subscribe(own_sessions, f"{sink.url}/crm")
        async with own_sessions() as session:
            fanned = await service.fan_out(
                session, received(overdue(1)), T0, leased_until=T0 + LEASE
            )
            await session.commit()
        (leased,) = fanned.leased
        assert await stored(own_sessions, leased.message.delivery_id) == ("queued", 1, T0 + LEASE)
        handoff.hand(fanned.leased)
        channel = HttpChannel(WebhookFormat(), client=client, guard=OPEN, clock=clock)
        worker = dispatcher(
            own_sessions, InMemoryBus(), clock, {"webhook": channel}, handoff=handoff
        )
        assert await worker.step() == 1  # its claim found it leased: the handoff sent it

    (request,) = sink.received
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "trigger.node_overdue"
    assert await stored(own_sessions, leased.message.delivery_id) == ("sent", 1, None)


async def test_a_delivery_leased_but_never_handed_is_claimed_when_its_lease_ends(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, channel = FrozenClock(T0), ScriptedChannel()
    await subscribe(own_sessions, "https://crm.example/hooks")
    async with own_sessions() as session:
        await service.fan_out(session, received(overdue(1)), T0, leased_until=T0 + LEASE)
        await session.commit()  # and the process died before handing it over
    survivor = dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": channel})
    assert await survivor.step() == 0
    clock.advance(LEASE + timedelta(seconds=1))
    assert await survivor.step() == 1
    assert [m.attempt for m in channel.sent] == [2]


async def test_the_consumer_hands_over_what_it_leased_once_committed_unless_the_handoff_is_full(
    bus: Bus, sessions: async_sessionmaker[AsyncSession]
) -> None:
    workspace = f"ws{uuid.uuid4().hex[:10]}"
    subscription_id, _ = await subscribe(
        sessions, "http://crm.example.com/hook", workspace=workspace
    )
    open_handoff = Handoff(lease=LEASE, backlog=10, wake=asyncio.Event())
    full_handoff = Handoff(lease=LEASE, backlog=0, wake=asyncio.Event())
    for n, handoff in ((1, open_handoff), (2, full_handoff)):
        group = f"subs-{uuid.uuid4().hex[:8]}"
        trigger = overdue(n, workspace)
        await bus.publish(
            [
                OutgoingRecord(
                    Topic.TRIGGERS, trigger.key.encode(), trigger.model_dump_json().encode()
                )
            ]
        )
        worker = subscriptions_consumer(bus, sessions, group, handoff=handoff)
        consumer = await bus.subscribe([Topic.TRIGGERS], group_id=group)
        await run_until_idle(worker, consumer)
        await consumer.close()
    (handed,) = [h for h in open_handoff.waiting if h.message.workspace_id == workspace]
    assert handed.message.trigger_id == f"{workspace}:t-1"
    assert await stored(sessions, handed.message.delivery_id) == ("queued", 1, T0 + LEASE)
    assert not full_handoff.waiting
    unleased = delivery_id_of(f"{workspace}:t-2", f"subscription:{subscription_id}", "subscription")
    assert await stored(sessions, unleased) == ("queued", 0, None)


async def stored(
    sessions: async_sessionmaker[AsyncSession], delivery_id: str
) -> tuple[str, int, datetime | None]:
    async with sessions() as session:
        row = await session.get(DeliveryRow, delivery_id)
        assert row is not None
        return row.status, row.attempts, row.leased_until


async def test_the_api_registers_lists_changes_replays_and_deletes(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with delivery_api(own_sessions, FrozenClock(T0), allow_loopback_targets=False) as api:
        base = f"/api/messaging/workspaces/{api.workspace}/subscriptions"

        refused = await api.client.post(
            base, json={"url": "http://127.0.0.1:9/x"}, headers=api.admin
        )
        assert refused.status_code == 422
        assert refused.json()["detail"]["field"] == "url"
        assert "loopback" in refused.json()["detail"]["message"]

        bad_kind = await api.client.post(
            base, json={"url": "https://93.184.215.14/x", "kinds": ["nope"]}, headers=api.admin
        )
        assert bad_kind.status_code == 422

        created = await api.client.post(
            base,
            json={
                "url": "https://93.184.215.14/hook",
                "kinds": ["node_overdue"],
                "roles": ["admin"],
            },
            headers=api.admin,
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_")
        sub = body["subscription_id"]

        listed = (await api.client.get(base, headers=api.admin)).json()
        assert [s["subscription_id"] for s in listed["items"]] == [sub]
        assert "secret" not in listed["items"][0]

        paused = await api.client.patch(
            f"{base}/{sub}",
            json={"active": False, "nodes": ["complete_profile"]},
            headers=api.admin,
        )
        assert (paused.json()["active"], paused.json()["nodes"]) == (False, ["complete_profile"])

        async with own_sessions() as session:
            await service.fan_out(session, received(overdue(1, api.workspace_id)), T0)
            await session.commit()
        replay = await api.client.post(
            f"{base}/{sub}/replay",
            json={
                "since": (T0 - timedelta(days=1)).isoformat(),
                "until": (T0 + timedelta(days=1)).isoformat(),
            },
            headers=api.admin,
        )
        assert replay.status_code == 202, replay.text
        assert replay.json()["queued"] == 1

        backwards = await api.client.post(
            f"{base}/{sub}/replay",
            json={"since": T0.isoformat(), "until": T0.isoformat()},
            headers=api.admin,
        )
        assert backwards.status_code == 422
        assert "until must be after since" in backwards.text

        assert (await api.client.delete(f"{base}/{sub}", headers=api.admin)).status_code == 204
        gone = await api.client.get(f"{base}/{sub}", headers=api.admin)
        assert gone.status_code == 404
        assert gone.json()["detail"]["field"] == "subscription_id"


@pytest.mark.parametrize(
    "url",
    INTERNAL_URLS,
)
async def test_metadata_and_other_internal_urls_are_refused_where_loopback_is_allowed(
    own_sessions: async_sessionmaker[AsyncSession], url: str
) -> None:
    async with delivery_api(own_sessions, FrozenClock(T0), allow_loopback_targets=True) as api:
        base = f"/api/messaging/workspaces/{api.workspace}/subscriptions"
        refused = await api.client.post(base, json={"url": url}, headers=api.admin)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"]["field"] == "url"

        created = await api.client.post(
            base, json={"url": "http://127.0.0.1:9/hook"}, headers=api.admin
        )
        assert created.status_code == 201, created.text
        changed = await api.client.patch(
            f"{base}/{created.json()['subscription_id']}", json={"url": url}, headers=api.admin
        )
        assert changed.status_code == 422, changed.text
