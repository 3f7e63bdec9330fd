"""Tasks for account owners: created once per (trigger, step) and at most one open per
account and kind (the playbook step that creates it: a trigger whose step already has an
open or escalated task for the account adds none), escalated when not done in time, and pushed to the CRM as signed webhooks through the delivery service (so a push is
retried, rate limited and dead-lettered like any delivery).

A push is a delivery on the ``webhook`` channel to the CRM URL with the event type
``task.created``, ``task.escalated`` or ``task.updated`` and the task as data; its key is
(trigger id, owner, ``task:{task_id}:{version}``), so each change is pushed once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.deliveries.cursors import decode_cursor, encode_cursor
from services.messaging.deliveries.message import Message
from services.messaging.deliveries.service import queue_delivery
from services.messaging.errors import MessagingError
from services.messaging.tasks import repository
from services.messaging.tasks.models import TaskRow
from services.messaging.tasks.planned import PlannedTask
from shared.clock import Clock
from shared.errors import Conflict, NotFound

logger = logging.getLogger(__name__)

TaskStatus = Literal["open", "done", "escalated", "cancelled"]
FINAL: frozenset[str] = frozenset({"done", "cancelled"})


class TaskNotFound(MessagingError, NotFound):
    """No task by that id in the workspace."""

    field = "task_id"


class TaskClosed(MessagingError, Conflict):
    """The task is done or cancelled; it cannot change any more."""

    field = "status"


def task_id_of(trigger_id: str, step_id: str) -> str:
    digest = hashlib.sha256(f"{trigger_id}\x1f{step_id}".encode()).hexdigest()
    return f"tsk_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    task_id: str
    created: bool
    """False when the (trigger, step) already had its task, or the account already has an
    open task of this kind (``task_id`` is that one): nothing was written."""


async def create_task(
    session: AsyncSession, planned: PlannedTask, *, crm_url: str | None = None
) -> TaskOutcome:
    """Store ``planned`` as an open task (once per trigger and step, and unless the account
    has an open task of its kind) and, with ``crm_url``, queue its ``task.created`` push.
    Flushes only."""
    task_id = task_id_of(planned.trigger_id, planned.step_id)
    if await repository.get(session, planned.workspace_id, task_id) is not None:
        return TaskOutcome(task_id, created=False)
    kept = await repository.open_of_kind(
        session, planned.workspace_id, planned.account_id, planned.step_id
    )
    if kept is not None:
        return TaskOutcome(kept.task_id, created=False)
    await repository.insert_task(
        session,
        {
            "task_id": task_id,
            "workspace_id": planned.workspace_id,
            "account_id": planned.account_id,
            "trigger_id": planned.trigger_id,
            "step_id": planned.step_id,
            "playbook_id": planned.playbook_id,
            "playbook_version": planned.playbook_version,
            "owner_contact_id": planned.owner_contact_id,
            "title": planned.title[:500],
            "description": planned.description,
            "priority": planned.priority,
            "status": "open",
            "version": 1,
            "note": None,
            "due_at": planned.due_at,
            "escalate_at": planned.escalate_at,
            "escalate_to": planned.escalate_to,
            "escalated_at": None,
            "created_at": planned.planned_at,
            "updated_at": planned.planned_at,
        },
    )
    if crm_url:
        task = await repository.get(session, planned.workspace_id, task_id)
        assert task is not None
        await _push(session, task, "task.created", crm_url, planned.planned_at)
    return TaskOutcome(task_id, created=True)


async def update_task(
    session: AsyncSession,
    workspace_id: str,
    task_id: str,
    *,
    status: TaskStatus | None,
    note: str | None,
    now: datetime,
    crm_url: str | None,
) -> TaskRow:
    """Close (``done``, ``cancelled``) or annotate a task; raises :class:`TaskNotFound` or
    :class:`TaskClosed`. The change is pushed as ``task.updated``."""
    task = await repository.get(session, workspace_id, task_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id!r}")
    if task.status in FINAL:
        raise TaskClosed(f"task {task_id} is {task.status}")
    if status is not None:
        task.status = status
    if note is not None:
        task.note = note
    await _changed(session, task, "task.updated", crm_url=crm_url, now=now)
    return task


async def escalate_due(
    session: AsyncSession, *, now: datetime, crm_url: str | None, limit: int = 500
) -> list[str]:
    """Mark open tasks past their ``escalate_at`` as ``escalated`` and push
    ``task.escalated`` (to ``escalate_to`` in the data); returns their ids."""
    escalated = []
    for task in await repository.due_for_escalation(session, now, limit):
        task.status = "escalated"
        task.escalated_at = now
        await _changed(session, task, "task.escalated", crm_url=crm_url, now=now)
        escalated.append(task.task_id)
    return escalated


async def assign_owners(
    session: AsyncSession,
    owners: Mapping[tuple[str, str], str],
    *,
    now: datetime,
    crm_url: str | None,
) -> list[str]:
    """Give the open tasks planned before their account had an owner to the owner now
    known (``owners`` by workspace id and account id), pushing each as ``task.updated``;
    returns their ids."""
    assigned = []
    for task in await repository.ownerless(session, owners.keys()):
        task.owner_contact_id = owners[(task.workspace_id, task.account_id)]
        await _changed(session, task, "task.updated", crm_url=crm_url, now=now)
        assigned.append(task.task_id)
    return assigned


async def _changed(
    session: AsyncSession, task: TaskRow, event_type: str, *, crm_url: str | None, now: datetime
) -> None:
    """Record a change of ``task`` as its next version (flushed) and, with ``crm_url``,
    queue its push as ``event_type``."""
    task.version += 1
    task.updated_at = now
    await session.flush()
    if crm_url:
        await _push(session, task, event_type, crm_url, now)


def task_data(task: TaskRow) -> dict[str, Any]:
    """The task as the API and the CRM push show it."""
    return {
        "task_id": task.task_id,
        "workspace_id": task.workspace_id,
        "account_id": task.account_id,
        "trigger_id": task.trigger_id,
        "step_id": task.step_id,
        "playbook_id": task.playbook_id,
        "playbook_version": task.playbook_version,
        "owner_contact_id": task.owner_contact_id,
        "title": task.title,
        "description": task.description,
        "priority": task.priority,
        "status": task.status,
        "version": task.version,
        "note": task.note,
        "due_at": task.due_at.isoformat(),
        "escalate_at": task.escalate_at.isoformat() if task.escalate_at else None,
        "escalate_to": task.escalate_to,
        "escalated_at": task.escalated_at.isoformat() if task.escalated_at else None,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
    }


async def _push(
    session: AsyncSession, task: TaskRow, event_type: str, crm_url: str, now: datetime
) -> None:
    await queue_delivery(
        session,
        Message(
            workspace_id=task.workspace_id,
            account_id=task.account_id,
            trigger_id=task.trigger_id,
            playbook_id=task.playbook_id,
            playbook_version=task.playbook_version,
            step_id=f"task:{task.task_id}:{task.version}",
            contact_id=task.owner_contact_id or "",
            channel="webhook",
            target={"url": crm_url, "event_type": event_type},
            subject=task.title,
            body=json.dumps(task_data(task)),
            category="task",
            priority=task.priority,
            planned_at=now,
            not_before=now,
        ),
    )


@dataclass(frozen=True, slots=True)
class TaskPage:
    items: list[TaskRow]
    next_cursor: str | None


async def list_tasks(
    session: AsyncSession,
    workspace_id: str,
    *,
    account_id: str | None = None,
    owner_contact_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> TaskPage:
    """A page of the workspace's tasks, newest first; raises ``BadCursor``."""
    rows = await repository.page(
        session,
        workspace_id,
        account_id=account_id,
        owner_contact_id=owner_contact_id,
        status=status,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    last = rows[limit - 1] if len(rows) > limit else None
    return TaskPage(
        rows[:limit], encode_cursor(last.created_at, last.task_id) if last is not None else None
    )


async def get_task(session: AsyncSession, workspace_id: str, task_id: str) -> TaskRow:
    task = await repository.get(session, workspace_id, task_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id!r}")
    return task


async def escalate_forever(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    *,
    interval_seconds: float,
    crm_url: str | None,
) -> None:
    """Every ``interval_seconds``: escalate the open tasks past their escalation time."""
    while True:
        try:
            async with sessions() as session:
                escalated = await escalate_due(session, now=clock.now(), crm_url=crm_url)
                await session.commit()
            if escalated:
                logger.info("tasks escalated", extra={"count": len(escalated)})
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("task escalation failed; retrying", extra={"error": str(exc)})
        await asyncio.sleep(interval_seconds)
