"""Queueing planned deliveries: once per (trigger, contact, step), in a batch or one by one;
suppressed and failed ones kept with their reason."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.deliveries import repository
from services.messaging.deliveries.message import delivery_id_of
from services.messaging.deliveries.models import AttemptRow, DeliveryRow
from services.messaging.deliveries.service import queue_deliveries, queue_delivery
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


async def test_a_batch_queues_each_key_once_and_answers_in_its_order(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session:
        await queue_delivery(session, planned(contact_id="c-known"))
        outcomes = await queue_deliveries(
            session,
            [
                planned(contact_id="c-1", trace={"traceparent": "00-ab-cd-01"}),
                planned(contact_id="c-known"),
                planned(contact_id="c-2", status="deferred", not_before=T0.replace(hour=9)),
                planned(contact_id="c-1", body="a repeat within the batch"),
            ],
        )
        await session.commit()
        assert [o.status for o in outcomes] == ["queued", "duplicate", "deferred", "duplicate"]
        assert outcomes[0].delivery_id == outcomes[3].delivery_id
        rows = {
            row.contact_id: row
            for row in await session.scalars(select(DeliveryRow).order_by(DeliveryRow.contact_id))
        }
        assert sorted(rows) == ["c-1", "c-2", "c-known"]
        assert (rows["c-1"].body, rows["c-1"].trace) == (
            "Two steps left.",
            {"traceparent": "00-ab-cd-01"},
        )
        assert rows["c-known"].trace == {}
        assert await session.scalar(select(func.count()).select_from(AttemptRow)) == 3
        assert await queue_deliveries(session, []) == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [("suppressed", "consent: onboarding refused"), ("failed", "template nudge: undefined")],
)
async def test_a_suppressed_or_failed_plan_is_recorded_with_its_reason_and_never_due(
    own_sessions: async_sessionmaker[AsyncSession], status: str, reason: str
) -> None:
    async with own_sessions() as session:
        outcome = await queue_delivery(session, planned(status=status, reason=reason))
        await session.commit()
        row = await repository.get(session, "ws_test", outcome.delivery_id)
        assert row is not None
        assert (row.status, row.reason, row.due_at, row.finished_at) == (status, reason, None, T0)
        attempts = await session.scalars(select(AttemptRow.status))
        assert list(attempts) == [status]


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
