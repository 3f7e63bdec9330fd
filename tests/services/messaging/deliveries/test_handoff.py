"""The handoff: deliveries leased at their planning reach this process's dispatcher in
order, without a claim; one waiting past half its lease is left to the claim, and one
whose channel has no token left is given back unleased."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.deliveries import repository
from services.messaging.deliveries.handoff import Handed, Handoff
from services.messaging.deliveries.service import queue_deliveries
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from tests.services.messaging.deliveries.support import (
    LEASE,
    T0,
    ScriptedChannel,
    dispatcher,
    planned,
)

SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


def handed(n: int) -> Handed:
    return Handed(planned(contact_id=f"c-{n}", attempt=1), T0 + LEASE)


def test_handed_deliveries_come_in_order_and_those_past_half_their_lease_are_dropped() -> None:
    wake = asyncio.Event()
    handoff = Handoff(lease=LEASE, backlog=3, wake=wake)
    handoff.hand([])
    assert not wake.is_set()
    handoff.hand([handed(1), handed(2), handed(3)])
    assert wake.is_set()
    assert not handoff.accepts()
    assert [m.contact_id for m in handoff.take(2, now=T0)] == ["c-1", "c-2"]
    assert handoff.take(5, now=T0 + LEASE / 2) == []  # half its lease gone: the claim's
    assert handoff.accepts()


async def test_a_rate_limited_handed_delivery_is_given_back_unleased(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, channel = FrozenClock(T0), ScriptedChannel()
    messages = [planned(contact_id=f"c-{n}", signing_secret=SECRET) for n in range(2)]
    async with own_sessions() as session:
        await queue_deliveries(session, messages, leased_until=T0 + LEASE)
        await session.commit()
    handoff = Handoff(lease=LEASE, backlog=10, wake=asyncio.Event())
    handoff.hand([Handed(replace(m, attempt=1), T0 + LEASE) for m in messages])
    worker = dispatcher(
        own_sessions,
        InMemoryBus(),
        clock,
        {"webhook": channel},
        rates={"webhook": 1.0},
        handoff=handoff,
    )
    assert await worker.step() == 2
    assert [(m.contact_id, m.attempt) for m in channel.sent] == [("c-0", 1)]
    async with own_sessions() as session:
        given_back = await repository.get(session, "ws_test", messages[1].delivery_id)
        assert given_back is not None
        assert (given_back.attempts, given_back.leased_until, given_back.due_at) == (
            0,
            None,
            T0 + timedelta(seconds=1),
        )


async def test_a_step_with_handed_deliveries_still_claims_those_due_in_the_database(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, channel = FrozenClock(T0), ScriptedChannel()
    leased = planned(contact_id="c-handed", signing_secret=SECRET)
    due = planned(contact_id="c-due")
    async with own_sessions() as session:
        await queue_deliveries(session, [leased], leased_until=T0 + LEASE)
        await queue_deliveries(session, [due])
        await session.commit()
    handoff = Handoff(lease=LEASE, backlog=10, wake=asyncio.Event())
    handoff.hand([Handed(replace(leased, attempt=1), T0 + LEASE)])
    worker = dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": channel}, handoff=handoff)
    assert await worker.step() == 2
    assert sorted((m.contact_id, m.attempt) for m in channel.sent) == [
        ("c-due", 1),
        ("c-handed", 1),
    ]
