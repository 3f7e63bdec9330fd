"""Deliveries and every attempt at them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class DeliveryRow(Base):
    """One message to one recipient on one channel, and where it stands.

    ``status``: ``queued`` or ``deferred`` (waiting for ``due_at``), ``retrying`` (a
    passing failure, due again at ``due_at``), ``sent``, ``failed`` (a permanent failure
    or the last retry: dead-lettered) or ``suppressed`` (never sent, with the reason).

    (``trigger_id``, ``contact_id``, ``step_id``) is a message's idempotency key, here and
    nowhere else: the trigger worker plans a message once because its delivery is here. A
    delivery with a ``role`` is a plan of the trigger worker (its attempt 0 holds the planned
    status and reason; the budgets and cooldowns count it); subscription deliveries, task
    pushes and a bounce's follow-up have none. ``channel`` is ``None`` when no channel
    reaches the contact (suppressed).
    ``due_at`` is ``None`` once nothing more will happen. A claim sets ``leased_until`` one
    lease ahead and counts the attempt, so a delivery whose process died mid-send is due
    again after the lease; recording the send clears it. A claim reads
    ``ix_messaging_deliveries_claim`` (the open deliveries only) in its order (priority,
    then due time): the first due rows, however long the backlog, with no sort. It changes
    no indexed column, so on PostgreSQL, with room left on the page (fill factor 80), it
    writes a heap-only tuple and no index entry.
    """

    __tablename__ = "messaging_deliveries"
    __table_args__ = (
        UniqueConstraint("trigger_id", "contact_id", "step_id", name="uq_messaging_deliveries_key"),
        Index("ix_messaging_deliveries_account", "workspace_id", "account_id", "planned_at"),
        Index("ix_messaging_deliveries_contact", "workspace_id", "contact_id", "planned_at"),
        Index("ix_messaging_deliveries_status", "workspace_id", "status", "planned_at"),
        Index("ix_messaging_deliveries_contact_window", "workspace_id", "contact_id", "not_before"),
        Index(
            "ix_messaging_deliveries_role_window",
            "workspace_id",
            "account_id",
            "role",
            "not_before",
        ),
        {"postgresql_with": {"fillfactor": 80}},
    )

    delivery_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(256))
    trigger_id: Mapped[str] = mapped_column(String(128))
    contact_id: Mapped[str] = mapped_column(String(256))
    step_id: Mapped[str] = mapped_column(String(200))
    playbook_id: Mapped[str | None] = mapped_column(String(64))
    playbook_version: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    provider_message_id: Mapped[str | None] = mapped_column(String(256))
    planned_at: Mapped[datetime] = mapped_column(UtcDateTime())
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    trace: Mapped[dict[str, str]] = mapped_column(
        JSON,
        default=dict,
        doc="The trace context of the trigger that planned it (``traceparent``, "
        "``tracestate``), continued by each send; empty when tracing is off.",
    )


OPEN = DeliveryRow.due_at.is_not(None)
"""The deliveries something will still happen to: the only ones the claim index holds."""
Index(
    "ix_messaging_deliveries_claim",
    DeliveryRow.priority.desc(),
    DeliveryRow.due_at,
    postgresql_where=OPEN,
    sqlite_where=OPEN,
)


class AttemptRow(Base):
    """One step in a delivery's history. Attempt 0 is its queueing (``queued``,
    ``deferred`` or ``suppressed``); attempts 1.. are sends (``sent`` or ``failed``, with
    the provider's message id or the reason, whether it will be retried and when)."""

    __tablename__ = "messaging_delivery_attempts"

    delivery_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(256))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    latency_ms: Mapped[float | None] = mapped_column(Float)
    retry_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
