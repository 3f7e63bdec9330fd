"""The engine's trigger outbox; its applied offsets are kept by :mod:`shared.consuming`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class OutboxRow(Base):
    """A trigger (or dead letter) that is durable but not yet acknowledged by the bus."""

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
