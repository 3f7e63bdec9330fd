"""The attribution stage's tables: memberships and its outbox. Its applied offsets and
event ids share ``engine_applied_offsets`` and ``consumer_seen_events``, keyed by group."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

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


class AttributionOutboxRow(Base):
    """An attributed event (or dead letter) that is durable but not yet acknowledged."""

    __tablename__ = "attribution_outbox"

    record_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, index=True, doc="The owning input partition.")
    sequence: Mapped[int] = mapped_column(Integer, doc="Its place in its checkpoint.")
    topic: Mapped[str] = mapped_column(String(249))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[list[list[str]]] = mapped_column(
        JSON, doc="The record's headers as [name, value] pairs, values decoded as Latin-1."
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
