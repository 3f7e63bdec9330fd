"""The plan ledger: one row per (trigger, contact, step), whatever became of it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class PlanRow(Base):
    """What the trigger worker decided for one contact and step of one trigger: queued,
    deferred, suppressed (with the reason), failed (a template error) or a task. Its key
    makes a replayed trigger plan nothing twice; queued and deferred rows are the
    contact-pressure budgets' count."""

    __tablename__ = "messaging_plans"
    __table_args__ = (
        Index("ix_messaging_plans_contact", "workspace_id", "contact_id", "not_before"),
        Index(
            "ix_messaging_plans_account_role", "workspace_id", "account_id", "role", "not_before"
        ),
    )

    trigger_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(130), primary_key=True, doc="playbook/step")
    workspace_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    planned_at: Mapped[datetime] = mapped_column(UtcDateTime())
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
