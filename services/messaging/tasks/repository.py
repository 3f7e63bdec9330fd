"""Every query on tasks. Flushes; never commits."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.tasks.models import TaskRow
from shared.db.statements import KEYS, among_keys, insert_ignoring_duplicates, on_postgresql

OPEN = ("open", "escalated")
"""Statuses of a task not done yet."""


async def insert_task(session: AsyncSession, row: dict[str, Any]) -> None:
    await insert_ignoring_duplicates(session, TaskRow, [row])


async def get(session: AsyncSession, workspace_id: str, task_id: str) -> TaskRow | None:
    row = await session.get(TaskRow, task_id)
    return row if row is not None and row.workspace_id == workspace_id else None


async def open_of_kind(
    session: AsyncSession, workspace_id: str, account_id: str, step_id: str
) -> TaskRow | None:
    """The account's task of this kind (its playbook step) that is still open or escalated."""
    query = select(TaskRow).where(
        TaskRow.workspace_id == workspace_id,
        TaskRow.account_id == account_id,
        TaskRow.step_id == step_id,
        TaskRow.status.in_(OPEN),
    )
    return await session.scalar(query.order_by(TaskRow.created_at).limit(1))


_OWNERLESS = (
    select(TaskRow)
    .where(
        among_keys(TaskRow.workspace_id, TaskRow.account_id),
        TaskRow.owner_contact_id.is_(None),
        TaskRow.status.in_(OPEN),
    )
    .order_by(TaskRow.created_at, TaskRow.task_id)
)


async def ownerless(session: AsyncSession, accounts: Collection[tuple[str, str]]) -> list[TaskRow]:
    """The open or escalated tasks without an owner of these (workspace id, account id)."""
    if not accounts:
        return []
    return list(await session.scalars(_OWNERLESS, {KEYS: sorted(accounts)}))


async def due_for_escalation(session: AsyncSession, now: datetime, limit: int) -> list[TaskRow]:
    query = (
        select(TaskRow)
        .where(TaskRow.status == "open", TaskRow.escalate_at <= now)
        .order_by(TaskRow.escalate_at)
        .limit(limit)
    )
    if on_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    return list(await session.scalars(query))


async def page(
    session: AsyncSession,
    workspace_id: str,
    *,
    account_id: str | None,
    owner_contact_id: str | None,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[TaskRow]:
    """Newest first, from after ``after`` (``created_at``, ``task_id``)."""
    query = select(TaskRow).where(TaskRow.workspace_id == workspace_id)
    if account_id is not None:
        query = query.where(TaskRow.account_id == account_id)
    if owner_contact_id is not None:
        query = query.where(TaskRow.owner_contact_id == owner_contact_id)
    if status is not None:
        query = query.where(TaskRow.status == status)
    if after is not None:
        at, task_id = after
        query = query.where(
            or_(TaskRow.created_at < at, and_(TaskRow.created_at == at, TaskRow.task_id < task_id))
        )
    query = query.order_by(TaskRow.created_at.desc(), TaskRow.task_id.desc())
    return list(await session.scalars(query.limit(limit)))
