"""The engine's trigger outbox; its applied offsets are kept by :mod:`shared.consuming`."""

from __future__ import annotations

from shared.consuming.models import PackedOutboxColumns
from shared.db.model_base import Base


class OutboxRow(PackedOutboxColumns, Base):
    """A checkpoint's triggers (and dead letters) of one input partition, durable but not
    yet acknowledged by the bus. A trigger's id is its transition's, made once (see the
    history's :func:`~services.node_engine.accounts.repository.append_transitions`); a dead
    letter's is its record's partition and offset, applied once."""

    __tablename__ = "engine_outbox"
