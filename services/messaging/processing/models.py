"""The task plans: what the trigger worker decided for each task step of a trigger.

A message's plan is its delivery (``messaging_deliveries``, the one store of a message's
key); see :mod:`services.messaging.processing.repository`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class TaskPlanRow(Base):
    """One task step of one trigger for the account's owner: ``task`` (handed to the task
    service, with the reason it could not be made, if any) or ``suppressed`` (its step's
    cooldown, with the reason). Its key makes a replayed trigger plan the task once; ``task``
    rows start the step's cooldown."""

    __tablename__ = "messaging_task_plans"
    __table_args__ = (
        Index(
            "ix_messaging_task_plans_step", "workspace_id", "account_id", "step_id", "planned_at"
        ),
    )

    trigger_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner_id: Mapped[str] = mapped_column(
        String(256), primary_key=True, doc="The account owner's contact id ('' if none)."
    )
    step_id: Mapped[str] = mapped_column(String(130), primary_key=True, doc="playbook/step")
    workspace_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(256))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    planned_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
