"""Tasks for account owners."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class TaskRow(Base):
    """A task: ``open``, ``done``, ``escalated`` (open past ``escalate_at``) or
    ``cancelled``. (``trigger_id``, ``step_id``) makes a replayed trigger create it once;
    an account has at most one open task per kind (``step_id``)."""

    __tablename__ = "messaging_tasks"
    __table_args__ = (
        UniqueConstraint("trigger_id", "step_id", name="uq_messaging_tasks_key"),
        Index("ix_messaging_tasks_escalation", "status", "escalate_at"),
        Index("ix_messaging_tasks_account", "workspace_id", "account_id", "created_at"),
        Index("ix_messaging_tasks_owner", "workspace_id", "owner_contact_id", "created_at"),
        Index("ix_messaging_tasks_kind", "workspace_id", "account_id", "step_id", "status"),
    )

    task_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(256))
    trigger_id: Mapped[str] = mapped_column(String(128))
    step_id: Mapped[str] = mapped_column(String(200))
    playbook_id: Mapped[str | None] = mapped_column(String(64))
    playbook_version: Mapped[int | None] = mapped_column(Integer)
    owner_contact_id: Mapped[str | None] = mapped_column(String(256))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, doc="Counts changes; names each CRM push.")
    note: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    escalate_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    escalate_to: Mapped[str | None] = mapped_column(String(64))
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
