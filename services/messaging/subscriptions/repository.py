"""Every query on subscriptions and the triggers they have seen. Flushes; never commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.subscriptions.models import SeenTriggerRow, SubscriptionRow
from shared.db.statements import insert_ignoring_duplicates


async def add(session: AsyncSession, row: dict[str, Any]) -> None:
    session.add(SubscriptionRow(**row))
    await session.flush()


async def get(
    session: AsyncSession, workspace_id: str, subscription_id: str
) -> SubscriptionRow | None:
    row = await session.get(SubscriptionRow, subscription_id)
    return row if row is not None and row.workspace_id == workspace_id else None


async def delete(session: AsyncSession, row: SubscriptionRow) -> None:
    await session.delete(row)
    await session.flush()


async def page(
    session: AsyncSession, workspace_id: str, *, after: str | None, limit: int
) -> list[SubscriptionRow]:
    """By id, from after ``after``."""
    query = select(SubscriptionRow).where(SubscriptionRow.workspace_id == workspace_id)
    if after is not None:
        query = query.where(SubscriptionRow.subscription_id > after)
    return list(await session.scalars(query.order_by(SubscriptionRow.subscription_id).limit(limit)))


async def active_of(session: AsyncSession, workspace_ids: Iterable[str]) -> list[SubscriptionRow]:
    wanted = sorted(set(workspace_ids))
    if not wanted:
        return []
    rows = await session.scalars(
        select(SubscriptionRow).where(
            SubscriptionRow.workspace_id.in_(wanted), SubscriptionRow.active.is_(True)
        )
    )
    return list(rows)


async def secrets_of(session: AsyncSession, subscription_ids: Sequence[str]) -> dict[str, str]:
    if not subscription_ids:
        return {}
    rows = await session.execute(
        select(SubscriptionRow.subscription_id, SubscriptionRow.secret).where(
            SubscriptionRow.subscription_id.in_(subscription_ids)
        )
    )
    return {row.subscription_id: row.secret for row in rows}


async def remember_triggers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_ignoring_duplicates(session, SeenTriggerRow, rows)


async def triggers_between(
    session: AsyncSession,
    workspace_id: str,
    *,
    since: datetime,
    until: datetime,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[SeenTriggerRow]:
    """The workspace's triggers with ``since <= occurred_at < until``, oldest first, from
    after ``after`` (``occurred_at``, ``trigger_id``)."""
    query = select(SeenTriggerRow).where(
        SeenTriggerRow.workspace_id == workspace_id,
        SeenTriggerRow.occurred_at >= since,
        SeenTriggerRow.occurred_at < until,
    )
    if after is not None:
        at, trigger_id = after
        query = query.where(
            (SeenTriggerRow.occurred_at > at)
            | ((SeenTriggerRow.occurred_at == at) & (SeenTriggerRow.trigger_id > trigger_id))
        )
    query = query.order_by(SeenTriggerRow.occurred_at, SeenTriggerRow.trigger_id).limit(limit)
    return list(await session.scalars(query))


async def forget_triggers_before(session: AsyncSession, before: datetime) -> int:
    """Drop the remembered triggers that occurred before ``before``; how many went."""
    result = await session.execute(
        delete_rows(SeenTriggerRow).where(SeenTriggerRow.occurred_at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
