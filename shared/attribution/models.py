"""The attribution stage's tables: memberships and its outbox. Its applied offsets and
event ids share ``engine_applied_offsets`` and ``consumer_seen_events``, keyed by group."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.consuming.models import OutboxColumns
from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class MembershipRow(Base):
    """A user's account and roles, learned from group calls, identify traits and CRM contacts."""

    __tablename__ = "attribution_memberships"

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(256))
    roles: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AttributionOutboxRow(OutboxColumns, Base):
    """An attributed event (or dead letter) that is durable but not yet acknowledged."""

    __tablename__ = "attribution_outbox"
