"""Plans handed to the delivery and task services, in the trigger worker's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.deliveries.message import Message
from services.messaging.deliveries.service import queue_deliveries
from services.messaging.policies.budgets import PRIORITY_RANK
from services.messaging.processing.planning import TaskPlan
from services.messaging.tasks.planned import PlannedTask
from services.messaging.tasks.service import create_task


def planned_task(plan: TaskPlan) -> PlannedTask:
    return PlannedTask(
        workspace_id=plan.workspace_id,
        account_id=plan.account_id,
        trigger_id=plan.trigger_id,
        playbook_id=plan.playbook_id,
        playbook_version=plan.playbook_version,
        step_id=plan.step_id,
        owner_contact_id=plan.owner.contact_id if plan.owner else None,
        title=plan.title,
        description=plan.description,
        priority=PRIORITY_RANK[plan.priority],
        due_at=plan.due_at,
        escalate_at=plan.escalate_at,
        escalate_to=plan.escalate_to,
        planned_at=plan.planned_at,
    )


class DeliveryServices:
    """The worker's :class:`~services.messaging.processing.worker.Outbound`: the delivery
    and task services of this package (idempotent on their own keys too). Tasks are pushed
    to ``crm_url`` when one is set."""

    def __init__(self, *, crm_url: str | None = None) -> None:
        self.crm_url = crm_url

    async def deliver(self, session: AsyncSession, messages: Sequence[Message]) -> None:
        await queue_deliveries(session, messages)

    async def create_task(self, session: AsyncSession, plan: TaskPlan) -> None:
        await create_task(session, planned_task(plan), crm_url=self.crm_url)
