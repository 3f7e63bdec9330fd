"""The plan ledger: what the trigger worker decided for each (trigger, contact, step).

A message's plan is its delivery (``messaging_deliveries``, the one store of a message's
key): a delivery with a ``role``, whose attempt 0 holds the planned status and reason. A
task's plan is a row of ``messaging_task_plans``. Repositories flush, never commit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.messaging.deliveries.message import MessageKey, delivery_id_of
from services.messaging.deliveries.models import AttemptRow, DeliveryRow
from services.messaging.playbooks.files import PRIORITIES, Priority
from services.messaging.policies.budgets import Planned, priority_of
from services.messaging.policies.cooldowns import StepPlanned
from services.messaging.processing.models import TaskPlanRow
from services.messaging.processing.planning import COUNTED, OWNER
from shared.db.statements import KEYS, among_keys, insert_ignoring_duplicates

CHUNK = 200
PlanKey = MessageKey
TASK = "task"
"""A task plan's status when it was handed to the task service; it starts the step's
cooldown, as queued and deferred messages do."""

_queueing = aliased(AttemptRow)
"""A delivery's attempt 0: its queueing, with the planned status and reason."""


def _planned(*columns: Any) -> Select[Any]:
    """``columns`` of the trigger worker's messages, joined to their attempt 0."""
    return (
        select(*columns)
        .join(
            _queueing,
            (_queueing.delivery_id == DeliveryRow.delivery_id) & (_queueing.attempt == 0),
        )
        .where(DeliveryRow.role.is_not(None))
    )


_DELIVERED = select(DeliveryRow.trigger_id, DeliveryRow.contact_id, DeliveryRow.step_id).where(
    DeliveryRow.delivery_id.in_(bindparam("ids", expanding=True))
)
_TASKED = select(TaskPlanRow.trigger_id, TaskPlanRow.owner_id, TaskPlanRow.step_id).where(
    among_keys(TaskPlanRow.trigger_id, TaskPlanRow.owner_id, TaskPlanRow.step_id)
)


async def planned_keys(session: AsyncSession, keys: Collection[PlanKey]) -> set[PlanKey]:
    """Which of ``keys`` are planned already: a delivery or a task plan has them."""
    wanted = list(dict.fromkeys(keys))
    found: set[PlanKey] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        delivered = await session.execute(
            _DELIVERED, {"ids": [delivery_id_of(*key) for key in chunk]}
        )
        tasked = await session.execute(_TASKED, {KEYS: chunk})
        found.update((t, c, s) for t, c, s in [*delivered, *tasked])
    return found


async def planned_in_window(
    session: AsyncSession,
    *,
    contacts: Collection[tuple[str, str]],
    accounts: Collection[tuple[str, str]],
    since: datetime,
) -> list[Planned]:
    """Messages planned queued or deferred to go out after ``since`` to any of ``contacts``
    or to any contact of ``accounts`` (each a (workspace id, id) pair)."""
    found: dict[str, Planned] = {}
    counted = _planned(DeliveryRow).where(
        _queueing.status.in_(COUNTED), DeliveryRow.not_before > since
    )
    for pairs, columns in (
        (list(contacts), among_keys(DeliveryRow.workspace_id, DeliveryRow.contact_id)),
        (list(accounts), among_keys(DeliveryRow.workspace_id, DeliveryRow.account_id)),
    ):
        among = counted.where(columns)
        for start in range(0, len(pairs), CHUNK):
            rows = await session.execute(among, {KEYS: pairs[start : start + CHUNK]})
            for row in rows.scalars():
                found[row.delivery_id] = Planned(
                    row.workspace_id,
                    row.account_id,
                    row.contact_id,
                    row.role or "",
                    row.not_before,
                    priority_of(row.priority),
                )
    return list(found.values())


async def planned_steps(
    session: AsyncSession,
    *,
    steps: Collection[tuple[str, str, str]],
    since: datetime,
) -> list[StepPlanned]:
    """Plans made after ``since`` that start a cooldown (messages planned queued or
    deferred, tasks handed over), of the (workspace id, account id, ``playbook/step``) in
    ``steps``."""
    wanted = list(dict.fromkeys(steps))
    found: list[StepPlanned] = []
    cooling_messages = _planned(
        DeliveryRow.workspace_id,
        DeliveryRow.account_id,
        DeliveryRow.step_id,
        DeliveryRow.trigger_id,
        DeliveryRow.planned_at,
    ).where(
        among_keys(DeliveryRow.workspace_id, DeliveryRow.account_id, DeliveryRow.step_id),
        _queueing.status.in_(COUNTED),
        DeliveryRow.planned_at > since,
    )
    cooling_tasks = select(
        TaskPlanRow.workspace_id,
        TaskPlanRow.account_id,
        TaskPlanRow.step_id,
        TaskPlanRow.trigger_id,
        TaskPlanRow.planned_at,
    ).where(
        among_keys(TaskPlanRow.workspace_id, TaskPlanRow.account_id, TaskPlanRow.step_id),
        TaskPlanRow.status == TASK,
        TaskPlanRow.planned_at > since,
    )
    for start in range(0, len(wanted), CHUNK):
        chunk = {KEYS: wanted[start : start + CHUNK]}
        messages = await session.execute(cooling_messages, chunk)
        tasks = await session.execute(cooling_tasks, chunk)
        found.extend(StepPlanned(*row) for row in [*messages, *tasks])
    return found


async def record_tasks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add task plans (one already there is kept as it is)."""
    await insert_ignoring_duplicates(session, TaskPlanRow, rows)
    await session.flush()


@dataclass(frozen=True, slots=True)
class Plan:
    """One decision of the trigger worker, as the plans API shows it: a message's
    (``queued``, ``deferred``, ``suppressed`` or ``failed``, as planned) or a task's
    (``task`` or ``suppressed``; its ``contact_id`` is the owner, its ``not_before`` the
    task's due date)."""

    trigger_id: str
    contact_id: str
    step_id: str
    account_id: str
    role: str
    channel: str | None
    priority: Priority
    category: str
    status: str
    reason: str | None
    planned_at: datetime
    not_before: datetime


async def page(
    session: AsyncSession,
    workspace_id: str,
    *,
    account_id: str | None,
    trigger_id: str | None,
    limit: int,
) -> list[Plan]:
    """The latest plans of the workspace, newest first (then by step)."""
    messages = _planned(DeliveryRow, _queueing.status, _queueing.reason).where(
        DeliveryRow.workspace_id == workspace_id
    )
    tasks = select(TaskPlanRow).where(TaskPlanRow.workspace_id == workspace_id)
    if account_id is not None:
        messages = messages.where(DeliveryRow.account_id == account_id)
        tasks = tasks.where(TaskPlanRow.account_id == account_id)
    if trigger_id is not None:
        messages = messages.where(DeliveryRow.trigger_id == trigger_id)
        tasks = tasks.where(TaskPlanRow.trigger_id == trigger_id)
    newest = (DeliveryRow.planned_at.desc(), DeliveryRow.step_id)
    plans = [
        _message_plan(row, status, reason)
        for row, status, reason in await session.execute(messages.order_by(*newest).limit(limit))
    ]
    tasks = tasks.order_by(TaskPlanRow.planned_at.desc(), TaskPlanRow.step_id).limit(limit)
    plans += [_task_plan(row) for row in await session.scalars(tasks)]
    plans.sort(key=lambda plan: plan.step_id)
    plans.sort(key=lambda plan: plan.planned_at, reverse=True)
    return plans[:limit]


def _message_plan(row: DeliveryRow, status: str, reason: str | None) -> Plan:
    return Plan(
        trigger_id=row.trigger_id,
        contact_id=row.contact_id,
        step_id=row.step_id,
        account_id=row.account_id,
        role=row.role or "",
        channel=row.channel,
        priority=priority_of(row.priority),
        category=row.category,
        status=status,
        reason=reason,
        planned_at=row.planned_at,
        not_before=row.not_before,
    )


def _task_plan(row: TaskPlanRow) -> Plan:
    return Plan(
        trigger_id=row.trigger_id,
        contact_id=row.owner_id,
        step_id=row.step_id,
        account_id=row.account_id,
        role=OWNER,
        channel=None,
        priority=_priority(row.priority),
        category=TASK,
        status=row.status,
        reason=row.reason,
        planned_at=row.planned_at,
        not_before=row.due_at,
    )


def _priority(value: str) -> Priority:
    """A stored priority (one the planner wrote; anything else counts as normal)."""
    return next((p for p in PRIORITIES if p == value), "normal")
