"""Subscriptions and the triggers their consumer has seen (the replay log)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class SubscriptionRow(Base):
    """A URL that receives the workspace's triggers matching its filters (an empty filter
    list matches everything), signed with its own ``secret``."""

    __tablename__ = "messaging_subscriptions"
    __table_args__ = (Index("ix_messaging_subscriptions_workspace", "workspace_id", "created_at"),)

    subscription_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(500))
    kinds: Mapped[list[str]] = mapped_column(JSON)
    paths: Mapped[list[str]] = mapped_column(JSON)
    nodes: Mapped[list[str]] = mapped_column(JSON)
    roles: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SeenTriggerRow(Base):
    """A trigger as the subscriptions consumer received it, kept for replays."""

    __tablename__ = "messaging_subscription_triggers"
    __table_args__ = (
        Index("ix_messaging_subscription_triggers_time", "workspace_id", "occurred_at"),
    )

    trigger_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(256))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    envelope: Mapped[str] = mapped_column(Text, doc="The trigger envelope as JSON.")
