"""An outreach simulation as text, day by day, or as JSON. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.messaging.deliveries.message import Message
from services.messaging.policies.budgets import priority_of
from services.messaging.processing.planning import TaskPlan
from services.messaging.simulation.service import Outreach

BODY_LINES = 6
"""Lines of a rendered body shown in the text report (the JSON report has all of it)."""


def outreach_text(outreach: Sequence[Outreach], playbooks: Sequence[str]) -> str:
    """Each trigger that reaches someone, under its day (day 0: the first such trigger's):
    whom it reaches as which role on which channel with the rendered message, and what
    consent, timing and budgets decided. Triggers no step matches are only counted."""
    lines = [_summary(outreach), f"playbooks: {', '.join(playbooks) or '(none)'}"]
    reaching = [item for item in outreach if item.messages or item.tasks]
    if not reaching:
        return "\n".join([*lines, "no playbook step matches any trigger: nothing is sent", ""])
    first = reaching[0].trigger.occurred_at.date()
    day = None
    for item in reaching:
        at = item.trigger.occurred_at
        if at.date() != day:
            day = at.date()
            lines += ["", f"day {(day - first).days} · {day.isoformat()}"]
        lines += _trigger_lines(item)
    return "\n".join([*lines, ""])


def _summary(outreach: Sequence[Outreach]) -> str:
    statuses = Counter(m.status for item in outreach for m in item.messages)
    counts = ", ".join(f"{statuses[s]} {s}" for s in ("queued", "deferred", "suppressed", "failed"))
    messages = sum(statuses.values())
    tasks = sum(len(item.tasks) for item in outreach)
    unmatched = sum(1 for item in outreach if not item.messages and not item.tasks)
    return (
        f"Outreach: {len(outreach)} triggers ({unmatched} match no playbook step), "
        f"{messages} messages ({counts}), {tasks} tasks"
    )


def _trigger_lines(item: Outreach) -> list[str]:
    trigger = item.trigger
    where = trigger.stage + (f"/{trigger.node}" if trigger.node else "")
    lines = [
        f"  {trigger.occurred_at:%H:%M}  {trigger.account_id}  {trigger.kind.value} {where}"
        f"  ({trigger.reason})"
    ]
    lines += [line for message in item.messages for line in _message_lines(message)]
    lines += [_task_line(task) for task in item.tasks]
    return lines


def _message_lines(plan: Message) -> list[str]:
    address = plan.target.get("email") or plan.target.get("user_id") or plan.target.get("url")
    who = f"{plan.role} {plan.contact_id}" + (f" <{address}>" if address else "")
    outcome = plan.status + (f": {plan.reason}" if plan.reason else "")
    lines = [f"         -> {who} via {plan.channel or '-'} [{plan.step_id}] {outcome}"]
    if plan.subject:
        lines.append(f"            subject: {plan.subject}")
    body = plan.body.strip().splitlines()
    lines += [f"            | {line}" for line in body[:BODY_LINES]]
    if len(body) > BODY_LINES:
        lines.append(f"            | ... ({len(body) - BODY_LINES} more lines)")
    return lines


def _task_line(task: TaskPlan) -> str:
    owner = task.owner.contact_id if task.owner else "no account owner known"
    failure = f" ({task.failure})" if task.failure else ""
    outcome = f" suppressed: {task.suppressed}" if task.suppressed else ""
    return (
        f"         -> task for {owner} [{task.step_id}] {task.title!r}, "
        f"due {task.due_at:%Y-%m-%d}{failure}{outcome}"
    )


def outreach_json(outreach: Sequence[Outreach]) -> list[dict[str, Any]]:
    """One object a trigger, with its messages and tasks in full."""
    return [
        {
            "trigger": item.trigger.model_dump(mode="json"),
            "messages": [_message_json(m) for m in item.messages],
            "tasks": [_task_json(t) for t in item.tasks],
        }
        for item in outreach
    ]


def _message_json(plan: Message) -> dict[str, Any]:
    return {
        "step_id": plan.step_id,
        "contact_id": plan.contact_id,
        "role": plan.role,
        "channel": plan.channel,
        "target": dict(plan.target),
        "locale": plan.locale,
        "subject": plan.subject,
        "body": plan.body,
        "category": plan.category,
        "priority": priority_of(plan.priority),
        "status": plan.status,
        "reason": plan.reason,
        "not_before": _iso(plan.not_before),
    }


def _task_json(task: TaskPlan) -> dict[str, Any]:
    return {
        "step_id": task.step_id,
        "owner": task.owner.contact_id if task.owner else None,
        "title": task.title,
        "description": task.description,
        "priority": task.priority,
        "due_at": _iso(task.due_at),
        "escalate_at": _iso(task.escalate_at) if task.escalate_at else None,
        "failure": task.failure,
        "suppressed": task.suppressed,
    }


def _iso(at: datetime) -> str:
    return at.isoformat()
