"""Queueing planned deliveries: once per (trigger, contact, step), suppressed ones kept."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.deliveries import repository
from services.messaging.deliveries.models import AttemptRow, DeliveryRow
from services.messaging.deliveries.service import delivery_id_of, queue_delivery
from tests.services.messaging.deliveries.support import T0, planned


async def test_a_replayed_plan_queues_nothing_twice(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session:
        first = await queue_delivery(session, planned())
        again = await queue_delivery(session, planned(body="changed"))
        other_step = await queue_delivery(session, planned(step_id="onboarding/later"))
        await session.commit()

    assert first.status == "queued"
    assert again.status == "duplicate"
    assert (
        again.delivery_id
        == first.delivery_id
        == delivery_id_of("t-1", "c-admin", "onboarding/nudge")
    )
    assert other_step.status == "queued"
    async with own_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DeliveryRow)) == 2
        row = await repository.get(session, "ws_test", first.delivery_id)
        assert row is not None
        assert row.body == "Two steps left."
        assert row.due_at == T0
        (attempt,) = await repository.attempts_of(session, first.delivery_id)
        assert (attempt.attempt, attempt.status) == (0, "queued")


async def test_a_suppressed_plan_is_recorded_with_its_reason_and_never_due(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session:
        outcome = await queue_delivery(
            session, planned(status="suppressed", reason="consent: onboarding refused")
        )
        await session.commit()
        row = await repository.get(session, "ws_test", outcome.delivery_id)
        assert row is not None
        assert (row.status, row.reason, row.due_at, row.finished_at) == (
            "suppressed",
            "consent: onboarding refused",
            None,
            T0,
        )
        attempts = await session.scalars(select(AttemptRow.status))
        assert list(attempts) == ["suppressed"]


async def test_a_deferred_plan_is_due_at_its_not_before(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    later = T0.replace(hour=12)
    async with own_sessions() as session:
        outcome = await queue_delivery(
            session, planned(status="deferred", reason="quiet hours", not_before=later)
        )
        await session.commit()
        row = await repository.get(session, "ws_test", outcome.delivery_id)
        assert row is not None
        assert (row.status, row.due_at) == ("deferred", later)
