"""The trigger worker: ``milepost.triggers`` in (group ``milepost-messaging``), planned
deliveries and tasks out.

Per trigger: match the workspace's playbooks -> resolve roles to contacts with fallbacks
-> render (in a thread, within the template limits) -> consent, timing, budgets -> hand each message to the delivery service
(queued, deferred or suppressed with its reason, or failed for a template error) and each
task to the task service. All of a batch's effects and its applied offsets are written in
one transaction (see :mod:`services.messaging.processing.consumer`), and every plan is
keyed by (trigger id, contact id, step id), held once: a message's by its delivery, a
task's by its task plan. A replayed trigger plans nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contacts import repository as contacts
from services.messaging.contacts.directory import Contact
from services.messaging.deliveries.message import Message
from services.messaging.playbooks.files import PublishedPlaybook
from services.messaging.policies.budgets import PressureBook
from services.messaging.policies.cooldowns import CooldownBook
from services.messaging.processing import repository as ledger
from services.messaging.processing.consumer import FencedConsumer
from services.messaging.processing.planning import (
    Plans,
    Policies,
    TaskPlan,
    plan_trigger,
    settled,
    settled_task,
)
from services.messaging.processing.received import ReceivedTrigger, decode_trigger
from shared.bus import ConsumedRecord
from shared.consuming.stream import Batch
from shared.contracts import Topic
from shared.observability.tracing import Tracing, trace_context

logger = logging.getLogger(__name__)

UnsubscribeLink = Callable[[Contact, str, datetime], str | None]
"""A contact's unsubscribe link for a category, at a moment (``None``: no link)."""
CatalogLoader = Callable[[AsyncSession], Awaitable[Mapping[str, tuple[PublishedPlaybook, ...]]]]


class Outbound(Protocol):
    """Where plans go: the delivery and task services, inside the worker's transaction."""

    async def deliver(self, session: AsyncSession, plans: Sequence[Message]) -> None:
        """Queue a batch's messages (all at once: one round trip per table, not per message)."""

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


class TriggerWorker(FencedConsumer[ReceivedTrigger]):
    """Consumes triggers until cancelled; see the module docstring. Each trigger is planned
    in a span continuing the trace its record carries, and its deliveries keep that span's
    context for the send."""

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
        tracing: Tracing | None = None,
        **consumer: Any,
    ) -> None:
        super().__init__(**consumer)
        self.tracing = tracing or Tracing.off()
        self.load_catalog = load_catalog
        self.outbound = outbound
        self.policies = policies
        self.unsubscribe_link = unsubscribe_link
        self.metrics = trigger_metrics
        self.catalog_refresh_seconds = catalog_refresh_seconds
        self.catalog: Mapping[str, tuple[PublishedPlaybook, ...]] = {}
        self.catalog_loaded_at = float("-inf")
        self.queued_at_once = False
        """Whether the batch being checkpointed queued a delivery due at once (checkpoints
        run one at a time)."""

    async def refresh(self) -> None:
        if time.monotonic() - self.catalog_loaded_at < self.catalog_refresh_seconds:
            return
        async with self.sessions() as session:
            self.catalog = await self.load_catalog(session)
        self.catalog_loaded_at = time.monotonic()

    def decode(self, record: ConsumedRecord) -> ReceivedTrigger:
        return decode_trigger(record)

    def acts_on(self, item: ReceivedTrigger) -> bool:
        """Only a trigger of a workspace with playbooks can reach anyone."""
        return bool(self.catalog.get(item.trigger.workspace_id))

    async def handle(
        self, items: Sequence[ReceivedTrigger], batch: Batch[list[ReceivedTrigger]]
    ) -> None:
        """Collect the triggers to plan; those of workspaces without playbooks are counted
        unmatched here."""
        planning = len(batch.effects)
        await super().handle(items, batch)
        unmatched = len(items) - (len(batch.effects) - planning)
        if unmatched:
            self.metrics.triggers.labels("unmatched").inc(unmatched)

    def plan(
        self,
        received: ReceivedTrigger,
        people: Mapping[tuple[str, str], list[Contact]],
        now: datetime,
    ) -> Plans:
        """The trigger's plans (pure but for the span), carrying the planning span's trace."""
        trigger = received.trigger
        with self.tracing.span(
            "messaging plan trigger",
            parent=received.trace,
            attributes={"trigger.id": trigger.trigger_id, "trigger.kind": trigger.kind.value},
        ) as carry:
            plans = plan_trigger(
                trigger,
                self.catalog.get(trigger.workspace_id, ()),
                people.get((trigger.workspace_id, trigger.account_id), []),
                policies=self.policies,
                now=now,
                unsubscribe_url=lambda contact, category: self.unsubscribe_link(
                    contact, category, now
                ),
            )
        if not carry:
            return plans
        trace = trace_context(carry)
        return Plans([replace(m, trace=trace) for m in plans.messages], plans.tasks)

    async def apply(
        self, session: AsyncSession, items: list[ReceivedTrigger], now: datetime
    ) -> None:
        """Plan every trigger of the batch, with the batch's contacts, ledger keys, budget
        counts and step cooldowns loaded in bulk, then hand the plans over in trigger
        order."""
        accounts = {(r.trigger.workspace_id, r.trigger.account_id) for r in items}
        people = await contacts.of_accounts(session, accounts)
        # Rendering takes up to the template time limit: off the event loop.
        batch = await asyncio.to_thread(
            lambda: [self.plan(received, people, now) for received in items]
        )
        books = await self.books(session, batch, accounts, now)
        task_plans: list[dict[str, Any]] = []
        finals: list[Message] = []
        for plans in batch:
            if not plans.messages and not plans.tasks:
                self.metrics.triggers.labels("unmatched").inc()
                continue
            for message in plans.messages:
                final = self.settle(message, books)
                if final is not None:
                    finals.append(final)
            for task in plans.tasks:
                if _task_key(task) in books.done:
                    continue
                books.done.add(_task_key(task))
                task = settled_task(task, books.cooldowns)
                task_plans.append(_task_plan(task))
                if task.suppressed is None:
                    await self.outbound.create_task(session, task)
                    self.metrics.tasks.inc()
            self.metrics.triggers.labels("planned").inc()
        await self.outbound.deliver(session, finals)
        await ledger.record_tasks(session, task_plans)
        self.queued_at_once = any(final.due_at_once for final in finals)

    def wakes(self, batch: Batch[list[ReceivedTrigger]]) -> bool:
        """Only a batch that queued a delivery due at once wakes the dispatcher (it finds
        the deferred ones when they are due); read once per committed batch."""
        woken, self.queued_at_once = self.queued_at_once, False
        return woken

    async def books(
        self,
        session: AsyncSession,
        batch: list[Plans],
        accounts: set[tuple[str, str]],
        now: datetime,
    ) -> Books:
        """What the batch's plans are checked against, loaded from the ledger (the
        deliveries and task plans) in bulk."""
        messages = [m for plans in batch for m in plans.messages]
        done = await ledger.planned_keys(
            session, [m.key for m in messages] + [_task_key(t) for p in batch for t in p.tasks]
        )
        window = self.policies.budgets.window
        pressure = PressureBook(
            await ledger.planned_in_window(
                session,
                contacts={(m.workspace_id, m.contact_id) for m in messages},
                accounts=accounts,
                since=min((m.not_before for m in messages), default=now) - window,
            )
            if messages
            else ()
        )
        cooling: dict[tuple[str, str, str], timedelta] = {}
        for plans in batch:
            made: list[Message | TaskPlan] = [*plans.messages, *plans.tasks]
            for plan in made:
                if plan.cooldown is not None:
                    cooling[(plan.workspace_id, plan.account_id, plan.step_id)] = plan.cooldown
        cooldowns = CooldownBook(
            await ledger.planned_steps(
                session, steps=cooling.keys(), since=now - max(cooling.values())
            )
            if cooling
            else ()
        )
        return Books(done, pressure, cooldowns)

    def settle(self, message: Message, books: Books) -> Message | None:
        """The message after its step's cooldown and the budgets, counted in the books;
        ``None`` when the ledger has it already."""
        if message.key in books.done:
            return None
        books.done.add(message.key)
        final = settled(message, books.pressure, books.cooldowns, self.policies.budgets)
        if final.status == "failed":
            logger.warning(
                "a message failed to render; it is recorded as failed and the "
                "trigger's other messages go on",
                extra={
                    "trigger_id": final.trigger_id,
                    "step_id": final.step_id,
                    "contact_id": final.contact_id,
                    "reason": final.reason,
                },
            )
        self.metrics.planned.labels(final.status).inc()
        return final


@dataclass(frozen=True, slots=True)
class Books:
    """A batch's checks: plan keys in the ledger, budget counts and step cooldowns (the
    last two grow as the batch plans, in trigger order)."""

    done: set[ledger.PlanKey]
    pressure: PressureBook
    cooldowns: CooldownBook


def _task_key(task: TaskPlan) -> ledger.PlanKey:
    return (task.trigger_id, _owner_id(task), task.step_id)


def _owner_id(task: TaskPlan) -> str:
    return task.owner.contact_id if task.owner else ""


def _task_plan(plan: TaskPlan) -> dict[str, Any]:
    return {
        "trigger_id": plan.trigger_id,
        "owner_id": _owner_id(plan),
        "step_id": plan.step_id,
        "workspace_id": plan.workspace_id,
        "account_id": plan.account_id,
        "priority": plan.priority,
        "status": ledger.TASK if plan.suppressed is None else "suppressed",
        "reason": plan.suppressed or plan.failure,
        "planned_at": plan.planned_at,
        "due_at": plan.due_at,
    }
