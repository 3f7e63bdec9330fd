"""The ledger of message ids already published, per workspace."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class PublishedMessage(Base):
    __tablename__ = "ingest_published_messages"
    __table_args__ = (Index("ix_ingest_published_messages_published_at", "published_at"),)

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime())
