"""What makes the engine's effects exactly-once: applied offsets and the trigger outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class AppliedOffsetRow(Base):
    """The next offset to apply per input partition, written in the same transaction as
    the state it produced: records below it are already in the state and are skipped."""

    __tablename__ = "engine_applied_offsets"

    consumer_group: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)


class OutboxRow(Base):
    """A trigger (or re-keyed event) that is durable but not yet acknowledged by the bus."""

    __tablename__ = "engine_outbox"

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, index=True, doc="The owning input partition.")
    topic: Mapped[str] = mapped_column(String(249))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[list[list[str]]] = mapped_column(
        JSON, doc="The record's headers as [name, value] pairs, values decoded as Latin-1."
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
