"""The tasks API's bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.messaging.tasks.models import TaskRow


class TaskOut(BaseModel):
    task_id: str
    account_id: str
    trigger_id: str
    step_id: str
    playbook_id: str | None
    playbook_version: int | None
    owner_contact_id: str | None = Field(description="None: the account had no owner on file.")
    title: str
    description: str | None
    priority: int
    status: Literal["open", "done", "escalated", "cancelled"]
    version: int
    note: str | None
    due_at: datetime
    escalate_at: datetime | None
    escalate_to: str | None
    escalated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: TaskRow) -> TaskOut:
        return cls.model_validate(row, from_attributes=True)


class TaskPageOut(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["done", "cancelled"] | None = Field(
        default=None, description="Close the task (an open or escalated one)."
    )
    note: str | None = Field(default=None, max_length=4000, description="What was done.")
