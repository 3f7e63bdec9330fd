"""Pending timers, indexed by the partition that owns the account and the time they fire."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base


class TimerRow(Base):
    __tablename__ = "engine_timers"
    __table_args__ = (Index("ix_engine_timers_due", "partition", "due_at"),)

    timer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[int] = mapped_column(BigInteger, doc="Seconds since the epoch, UTC.")
    workspace_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(256))
    path_id: Mapped[str] = mapped_column(String(64))
    path_version: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    node: Mapped[str | None] = mapped_column(String(64))
    visit: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, default=None, doc="A manual move's target, actor and note."
    )
