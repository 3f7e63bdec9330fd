"""What the trigger worker hands to the task service: one task for an account's owner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """A task for ``owner_contact_id`` (none: the account has no owner on file; the task is
    still stored, unassigned), due at ``due_at`` and escalated to ``escalate_to`` at
    ``escalate_at`` when not done by then. (``trigger_id``, ``step_id``) is its key."""

    workspace_id: str
    account_id: str
    trigger_id: str
    playbook_id: str | None
    playbook_version: int | None
    step_id: str
    owner_contact_id: str | None
    title: str
    description: str | None
    priority: int
    due_at: datetime
    escalate_at: datetime | None
    escalate_to: str | None
    planned_at: datetime
