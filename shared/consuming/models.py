"""The applied offsets every fenced consumer group keeps (one table, keyed by group)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base


class AppliedOffsetRow(Base):
    """The next offset to apply per input partition, written in the same transaction as
    the state it produced: records below it are already in the state and are skipped."""

    __tablename__ = "engine_applied_offsets"

    consumer_group: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
