"""The trigger worker: ``milepost.triggers`` in (group ``milepost-messaging``), planned
deliveries and tasks out.

Per trigger: match the workspace's playbooks -> resolve roles to contacts with fallbacks
-> render -> consent, timing, budgets -> hand each message to the delivery service
(queued, deferred or suppressed with its reason, or failed for a template error) and each
task to the task service. All of a batch's effects and its applied offsets are written in
one transaction (see :mod:`services.messaging.processing.consumer`), and every plan is
keyed by (trigger id, contact id, step id): a replayed trigger plans nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contacts import repository as contacts
from services.messaging.contacts.directory import Contact
from services.messaging.playbooks.service import PublishedPlaybook
from services.messaging.processing import repository as ledger
from services.messaging.processing.consumer import FencedConsumer, validation_problems
from services.messaging.processing.planning import (
    MessagePlan,
    Policies,
    TaskPlan,
    plan_trigger,
    with_budget,
)
from shared.bus import ConsumedRecord
from shared.contracts import Topic, TriggerEnvelope
from shared.errors import InvalidMessage

logger = logging.getLogger(__name__)

UnsubscribeLink = Callable[[Contact, str, datetime], str | None]
"""A contact's unsubscribe link for a category, at a moment (``None``: no link)."""
CatalogLoader = Callable[[AsyncSession], Awaitable[Mapping[str, tuple[PublishedPlaybook, ...]]]]


class Outbound(Protocol):
    """Where plans go: the delivery and task services, inside the worker's transaction."""

    async def deliver(self, session: AsyncSession, plan: MessagePlan) -> None: ...

    async def create_task(self, session: AsyncSession, plan: TaskPlan) -> None: ...


class TriggerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.triggers = Counter(
            "milepost_messaging_triggers",
            "Triggers handled, by outcome (planned, unmatched).",
            ["outcome"],
            registry=registry,
        )
        self.planned = Counter(
            "milepost_messaging_planned_deliveries",
            "Messages planned, by status (queued, deferred, suppressed, failed).",
            ["status"],
            registry=registry,
        )
        self.tasks = Counter(
            "milepost_messaging_tasks_planned",
            "Tasks planned for account owners.",
            registry=registry,
        )


class TriggerWorker(FencedConsumer[TriggerEnvelope]):
    """Consumes triggers until cancelled; see the module docstring."""

    topics = (Topic.TRIGGERS,)

    def __init__(
        self,
        *,
        load_catalog: CatalogLoader,
        outbound: Outbound,
        policies: Policies,
        unsubscribe_link: UnsubscribeLink,
        trigger_metrics: TriggerMetrics,
        catalog_refresh_seconds: float = 2.0,
        **consumer: Any,
    ) -> None:
        super().__init__(**consumer)
        self.load_catalog = load_catalog
        self.outbound = outbound
        self.policies = policies
        self.unsubscribe_link = unsubscribe_link
        self.metrics = trigger_metrics
        self.catalog_refresh_seconds = catalog_refresh_seconds
        self.catalog: Mapping[str, tuple[PublishedPlaybook, ...]] = {}
        self.catalog_loaded_at = float("-inf")

    async def refresh(self) -> None:
        if time.monotonic() - self.catalog_loaded_at < self.catalog_refresh_seconds:
            return
        async with self.sessions() as session:
            self.catalog = await self.load_catalog(session)
        self.catalog_loaded_at = time.monotonic()

    def decode(self, record: ConsumedRecord) -> TriggerEnvelope:
        try:
            return TriggerEnvelope.model_validate_json(record.value)
        except ValidationError as exc:
            raise InvalidMessage(
                f"not a valid trigger envelope: {validation_problems(exc)}"
            ) from exc

    async def apply(
        self, session: AsyncSession, items: list[TriggerEnvelope], now: datetime
    ) -> None:
        for trigger in items:
            await self.handle(session, trigger, now)

    async def handle(self, session: AsyncSession, trigger: TriggerEnvelope, now: datetime) -> None:
        playbooks = self.catalog.get(trigger.workspace_id, ())
        people = await contacts.of_account(session, trigger.workspace_id, trigger.account_id)
        plans = plan_trigger(
            trigger,
            playbooks,
            people,
            policies=self.policies,
            now=now,
            unsubscribe_url=lambda contact, category: self.unsubscribe_link(contact, category, now),
        )
        if not plans.messages and not plans.tasks:
            self.metrics.triggers.labels("unmatched").inc()
            return
        done = await ledger.planned_keys(
            session,
            [(m.trigger_id, m.contact_id, m.step_id) for m in plans.messages]
            + [(t.trigger_id, _owner_id(t), t.step_id) for t in plans.tasks],
        )
        for message in plans.messages:
            if (message.trigger_id, message.contact_id, message.step_id) in done:
                continue
            pressure = await ledger.pressure(
                session,
                workspace_id=message.workspace_id,
                contact_id=message.contact_id,
                account_id=message.account_id,
                role=message.role,
                since=message.not_before - self.policies.budgets.window,
            )
            final = with_budget(message, pressure, self.policies.budgets)
            await ledger.record(session, [_ledger_row(final)])
            await self.outbound.deliver(session, final)
            self.metrics.planned.labels(final.status).inc()
        for task in plans.tasks:
            if (task.trigger_id, _owner_id(task), task.step_id) in done:
                continue
            await ledger.record(session, [_task_row(task)])
            await self.outbound.create_task(session, task)
            self.metrics.tasks.inc()
        self.metrics.triggers.labels("planned").inc()


def _owner_id(task: TaskPlan) -> str:
    return task.owner.contact_id if task.owner else ""


def _ledger_row(plan: MessagePlan) -> dict[str, Any]:
    return {
        "trigger_id": plan.trigger_id,
        "contact_id": plan.contact_id,
        "step_id": plan.step_id,
        "workspace_id": plan.workspace_id,
        "account_id": plan.account_id,
        "role": plan.role,
        "channel": plan.channel,
        "priority": plan.priority,
        "category": plan.category,
        "status": plan.status,
        "reason": plan.reason,
        "planned_at": plan.planned_at,
        "not_before": plan.not_before,
    }


def _task_row(plan: TaskPlan) -> dict[str, Any]:
    return {
        "trigger_id": plan.trigger_id,
        "contact_id": _owner_id(plan),
        "step_id": plan.step_id,
        "workspace_id": plan.workspace_id,
        "account_id": plan.account_id,
        "role": "account_owner",
        "channel": None,
        "priority": plan.priority,
        "category": "task",
        "status": "task",
        "reason": plan.failure,
        "planned_at": plan.planned_at,
        "not_before": plan.due_at,
    }
