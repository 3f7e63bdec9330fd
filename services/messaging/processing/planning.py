"""From a trigger to what should be sent to whom. Pure.

For each published playbook, each rule whose ``match`` takes the trigger, each step:

1. **recipients**: the account's contacts holding the step's roles (``target_roles``: the
   roles the trigger targets; ``account_owner``: the account's owner). When nobody holds a
   role, the step's ``fallback`` roles are tried in order (no admin -> decision maker). A
   contact reached through several roles gets the step once.
2. **channel**: the first of the step's channels the contact has an address on and has not
   bounced on (email bounced -> chat app); ``webhook`` posts to the step's ``url`` or the
   configured one. None: suppressed, "no reachable channel".
3. **consent**: a refused category suppresses the message with the reason.
4. **template**: rendered in the contact's locale (with fallback), with the contact's
   unsubscribe link for the category (an email's target carries it too, for its
   ``List-Unsubscribe`` header); an error fails this message with the reason, never the
   trigger.
5. **timing**: delay, send window and quiet hours in the contact's timezone defer it.

The step's cooldown per account and the budgets need the ledger, so the worker applies
them last, in trigger order (:func:`with_cooldown`, :func:`with_budget`). A task step plans
one task for the account owner with its due date and escalation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from services.messaging.contacts.directory import Contact
from services.messaging.deliveries.message import Message, MessageStatus
from services.messaging.errors import TemplateFailed
from services.messaging.playbooks.files import (
    TARGET_ROLES,
    Match,
    Priority,
    PublishedPlaybook,
    Rule,
    Step,
)
from services.messaging.policies.budgets import (
    PRIORITY_RANK,
    BudgetLimits,
    Planned,
    Pressure,
    PressureBook,
    budget_refusal,
    priority_of,
)
from services.messaging.policies.consent import consent_refusal
from services.messaging.policies.cooldowns import CooldownBook, StepPlanned
from services.messaging.policies.timing import QuietHours, earliest_send, zone
from services.messaging.templates.limits import TemplateLimits
from services.messaging.templates.rendering import render_message, render_text
from shared.contracts.triggers import Audience, TriggerKind, TriggerRecord

COUNTED: tuple[MessageStatus, ...] = ("queued", "deferred")
"""The statuses the budgets count: messages that are to go out."""
OWNER = Audience.ACCOUNT_OWNER.value


@dataclass(frozen=True, slots=True)
class Policies:
    """The policy settings the planner applies (from ``MessagingSettings``)."""

    opt_in_categories: frozenset[str]
    quiet: QuietHours | None
    default_timezone: str
    budgets: BudgetLimits
    template_limits: TemplateLimits = field(default_factory=TemplateLimits)


@dataclass(frozen=True, slots=True)
class Recipient:
    role: str
    contact: Contact
    fallback_from: str | None = None


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """A task for the account owner: due at ``due_at``, escalated at ``escalate_at``."""

    workspace_id: str
    account_id: str
    trigger_id: str
    playbook_id: str
    playbook_version: int
    step_id: str
    owner: Contact | None
    title: str
    description: str | None
    priority: Priority
    planned_at: datetime
    due_at: datetime
    escalate_at: datetime | None
    escalate_to: str
    failure: str | None = None
    """A template error in the title or description; the task is still created with the
    raw text."""
    cooldown: timedelta | None = None
    """The step's cooldown per account (none: every trigger may plan it)."""
    suppressed: str | None = None
    """Why no task is created (the step's cooldown); none: it is."""


@dataclass(frozen=True, slots=True)
class Plans:
    messages: list[Message] = field(default_factory=list)
    tasks: list[TaskPlan] = field(default_factory=list)


def trigger_tier(trigger: TriggerRecord) -> str | None:
    """The tier a trigger is about: the one entered, or the ``tier`` in its payload."""
    return _text(trigger.payload.get("to" if trigger.kind is TriggerKind.TIER_CHANGED else "tier"))


def trigger_risk(trigger: TriggerRecord) -> str | None:
    """The risk level a trigger is about: the one reached, or ``risk_level`` in its payload."""
    key = "to" if trigger.kind is TriggerKind.RISK_CHANGED else "risk_level"
    return _text(trigger.payload.get(key))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def matches(match: Match, trigger: TriggerRecord) -> bool:
    """Whether every non-empty list of ``match`` holds the trigger's value."""
    tests: Iterable[tuple[Sequence[str], str | None]] = (
        (match.kinds, trigger.kind.value),
        (match.paths, trigger.path_id),
        (match.stages, trigger.stage),
        (match.nodes, trigger.node),
        (match.tiers, trigger_tier(trigger)),
        (match.risk_levels, trigger_risk(trigger)),
        (match.actions, _text(trigger.payload.get("action"))),
    )
    return all(not wanted or value in wanted for wanted, value in tests)


def matching_steps(
    playbooks: Iterable[PublishedPlaybook], trigger: TriggerRecord
) -> list[tuple[PublishedPlaybook, Rule, Step]]:
    return [
        (published, rule, step)
        for published in playbooks
        for rule in published.playbook.rules
        if matches(rule.match, trigger)
        for step in rule.steps
    ]


def recipients(step: Step, trigger: TriggerRecord, contacts: Sequence[Contact]) -> list[Recipient]:
    """Who a message step reaches, with fallbacks (see the module docstring)."""
    roles: list[str] = []
    for wanted in step.to:
        expanded = (
            [r.value for r in trigger.target_roles] if wanted == TARGET_ROLES else [str(wanted)]
        )
        roles += [r for r in expanded if r not in roles]
    found: dict[str, Recipient] = {}
    for role in roles:
        reached, holders, fallback_from = role, _holders(role, contacts), None
        for alternative in step.fallback:
            if holders:
                break
            reached, holders, fallback_from = (
                alternative.value,
                _holders(alternative.value, contacts),
                role,
            )
        for contact in holders:
            found.setdefault(contact.contact_id, Recipient(reached, contact, fallback_from))
    return list(found.values())


def _holders(role: str, contacts: Sequence[Contact]) -> list[Contact]:
    if role == OWNER:
        return [c for c in contacts if c.is_account_owner]
    return [c for c in contacts if role in c.roles and not c.is_account_owner]


def reach(
    channels: Sequence[str], contact: Contact, *, url: str | None = None
) -> tuple[str, dict[str, str]] | None:
    """The first channel the contact has an address on and has not bounced on, with its
    target. ``webhook`` reaches everyone: its target is the step's ``url``, or ``{}`` for
    the configured default URL."""
    for channel in channels:
        if channel in contact.bounced:
            continue
        if channel == "email" and contact.email:
            return channel, {
                "email": contact.email,
                **({"name": contact.name} if contact.name else {}),
            }
        if channel == "webhook":
            return channel, {"url": url} if url else {}
        if channel == "in_app":
            return channel, {"user_id": contact.contact_id}
        address = contact.chat_app_ids.get(channel)
        if address:
            return channel, {"user_id": address}
    return None


def trigger_reasons(trigger: TriggerRecord) -> list[Mapping[str, Any]]:
    """Why a trigger fired, signal by signal: ``payload.reasons`` of a ``risk_changed``
    (each with ``signal``, ``severity``, ``sentence``, ``measure``, ``threshold`` and
    ``figures``); empty for other triggers."""
    reasons = trigger.payload.get("reasons")
    if not isinstance(reasons, list):
        return []
    return [reason for reason in reasons if isinstance(reason, Mapping)]


def context_for(
    trigger: TriggerRecord, recipient: Recipient | None, unsubscribe_url: str | None
) -> dict[str, Any]:
    """The names a template sees: ``account``, ``contact``, ``role``, ``trigger``,
    ``reasons`` and ``unsubscribe_url`` (see ``SAMPLE_CONTEXT`` in the templates module)."""
    contact = recipient.contact if recipient else None
    return {
        "account": {"id": trigger.account_id},
        "contact": {
            "id": contact.contact_id if contact else None,
            "name": contact.name if contact else None,
            "email": contact.email if contact else None,
            "roles": sorted(contact.roles) if contact else [],
            "locale": contact.locale if contact else None,
        },
        "role": recipient.role if recipient else None,
        "trigger": {
            "trigger_id": trigger.trigger_id,
            "kind": trigger.kind.value,
            "path_id": trigger.path_id,
            "path_version": trigger.path_version,
            "stage": trigger.stage,
            "node": trigger.node,
            "reason": trigger.reason,
            "occurred_at": trigger.occurred_at.isoformat(),
            "payload": trigger.payload,
        },
        "reasons": trigger_reasons(trigger),
        "unsubscribe_url": unsubscribe_url,
    }


def plan_trigger(
    trigger: TriggerRecord,
    playbooks: Iterable[PublishedPlaybook],
    contacts: Sequence[Contact],
    *,
    policies: Policies,
    now: datetime,
    unsubscribe_url: Callable[[Contact, str], str | None],
) -> Plans:
    """Every message and task ``trigger`` calls for, before budgets."""
    plans = Plans()
    for published, _rule, step in matching_steps(playbooks, trigger):
        step_id = f"{published.playbook_id}/{step.id}"
        if step.task is not None:
            plans.tasks.append(
                _task(trigger, published, step, step_id, contacts, now, policies.template_limits)
            )
            continue
        for recipient in recipients(step, trigger, contacts):
            plans.messages.append(
                _message(
                    trigger, published, step, step_id, recipient, policies, now, unsubscribe_url
                )
            )
    return plans


def _message(
    trigger: TriggerRecord,
    published: PublishedPlaybook,
    step: Step,
    step_id: str,
    recipient: Recipient,
    policies: Policies,
    now: datetime,
    unsubscribe_url: Callable[[Contact, str], str | None],
) -> Message:
    contact = recipient.contact
    reached = reach(step.channels, contact, url=step.url)
    plan = Message(
        workspace_id=trigger.workspace_id,
        account_id=trigger.account_id,
        trigger_id=trigger.trigger_id,
        playbook_id=published.playbook_id,
        playbook_version=published.version,
        step_id=step_id,
        contact_id=contact.contact_id,
        role=recipient.role,
        channel=reached[0] if reached else None,
        target=reached[1] if reached else {},
        locale=contact.locale,
        subject="",
        body="",
        category=step.category,
        priority=PRIORITY_RANK[step.priority],
        planned_at=now,
        not_before=now,
        cooldown=step.cooldown_delta,
    )
    if reached is None:
        tried = ", ".join(step.channels)
        return replace(plan, status="suppressed", reason=f"no reachable channel (tried {tried})")
    refusal = consent_refusal(contact, step.category, opt_in_categories=policies.opt_in_categories)
    if refusal is not None:
        return replace(plan, status="suppressed", reason=refusal)
    link = unsubscribe_url(contact, step.category)
    return _rendered(plan, trigger, published, step, recipient, policies, now, link)


def _rendered(
    plan: Message,
    trigger: TriggerRecord,
    published: PublishedPlaybook,
    step: Step,
    recipient: Recipient,
    policies: Policies,
    now: datetime,
    link: str | None,
) -> Message:
    """``plan`` rendered in the contact's locale with the unsubscribe ``link`` and timed
    (queued or deferred); failed with the reason on a template error."""
    contact = recipient.contact
    assert step.template is not None  # a message step has one (validated)
    template = published.playbook.templates[step.template]
    context = context_for(trigger, recipient, link)
    try:
        rendered = render_message(
            template.subject,
            template.body,
            context,
            locale=contact.locale,
            default_locale=published.playbook.default_locale,
            limits=policies.template_limits,
        )
    except TemplateFailed as exc:
        return replace(plan, status="failed", reason=f"template {step.template}: {exc}")
    timing = earliest_send(
        now,
        delay=step.delay_delta,
        timezone=zone(contact.timezone, policies.default_timezone),
        quiet=policies.quiet,
        window=step.send_window,
    )
    return replace(
        plan,
        # an email carries the link as its one-click List-Unsubscribe header too
        target={**plan.target, "unsubscribe_url": link}
        if link and plan.channel == "email"
        else plan.target,
        locale=rendered.locale,
        subject=rendered.subject,
        body=rendered.body,
        not_before=timing.not_before,
        status="queued" if timing.reason is None else "deferred",
        reason=timing.reason,
    )


def _task(
    trigger: TriggerRecord,
    published: PublishedPlaybook,
    step: Step,
    step_id: str,
    contacts: Sequence[Contact],
    now: datetime,
    limits: TemplateLimits,
) -> TaskPlan:
    task = step.task
    assert task is not None
    owners = _holders(OWNER, contacts)
    owner = owners[0] if owners else None
    context = context_for(trigger, Recipient(OWNER, owner) if owner else None, None)
    failure: str | None = None
    texts: list[str | None] = []
    for source in (task.title, task.description):
        try:
            texts.append(None if source is None else render_text(source, context, limits).strip())
        except TemplateFailed as exc:
            failure = f"task template: {exc}"
            texts.append(source)
    due_at = now + task.due_delta
    escalation = task.escalation_delta
    return TaskPlan(
        workspace_id=trigger.workspace_id,
        account_id=trigger.account_id,
        trigger_id=trigger.trigger_id,
        playbook_id=published.playbook_id,
        playbook_version=published.version,
        step_id=step_id,
        owner=owner,
        title=(texts[0] or task.title)[:500],
        description=texts[1],
        priority=step.priority,
        planned_at=now,
        due_at=due_at,
        escalate_at=None if escalation is None else due_at + escalation,
        escalate_to=task.escalate_to,
        failure=failure,
        cooldown=step.cooldown_delta,
    )


def with_budget(plan: Message, pressure: Pressure, limits: BudgetLimits) -> Message:
    """The plan, suppressed with the reason when it does not fit the budgets."""
    if plan.status not in ("queued", "deferred"):
        return plan
    refusal = budget_refusal(
        pressure, priority=priority_of(plan.priority), role=plan.role or "", limits=limits
    )
    return plan if refusal is None else replace(plan, status="suppressed", reason=refusal)


def budgeted(plan: Message, book: PressureBook, limits: BudgetLimits) -> Message:
    """The plan with the budgets applied against ``book``, which then counts it when it
    is still to go out."""
    counted = Planned(
        plan.workspace_id,
        plan.account_id,
        plan.contact_id,
        plan.role or "",
        plan.not_before,
        priority_of(plan.priority),
    )
    final = with_budget(plan, book.pressure(counted, limits.window), limits)
    if final.status in COUNTED:
        book.add(counted)
    return final


def step_planned(plan: Message | TaskPlan) -> StepPlanned:
    """What the cooldowns count of a plan: its account, step, trigger and time."""
    return StepPlanned(
        plan.workspace_id, plan.account_id, plan.step_id, plan.trigger_id, plan.planned_at
    )


def with_cooldown(plan: Message, book: CooldownBook) -> Message:
    """The plan, suppressed with the reason when its step is cooling down for the account."""
    if plan.status not in ("queued", "deferred"):
        return plan
    refusal = book.refusal(step_planned(plan), plan.cooldown)
    return plan if refusal is None else replace(plan, status="suppressed", reason=refusal)


def task_with_cooldown(plan: TaskPlan, book: CooldownBook) -> TaskPlan:
    """The task plan, suppressed with the reason when its step is cooling down."""
    refusal = book.refusal(step_planned(plan), plan.cooldown)
    return plan if refusal is None else replace(plan, suppressed=refusal)


def settled(
    plan: Message, pressure: PressureBook, cooldowns: CooldownBook, limits: BudgetLimits
) -> Message:
    """The message after its step's cooldown, then the budgets; counted in both books when
    it is still to go out."""
    final = budgeted(with_cooldown(plan, cooldowns), pressure, limits)
    if final.status in COUNTED:
        cooldowns.add(step_planned(final))
    return final


def settled_task(plan: TaskPlan, cooldowns: CooldownBook) -> TaskPlan:
    """The task after its step's cooldown; counted in the book when it is still made."""
    final = task_with_cooldown(plan, cooldowns)
    if final.suppressed is None:
        cooldowns.add(step_planned(final))
    return final
