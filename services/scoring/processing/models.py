"""The scoring outbox. Applied offsets share ``engine_applied_offsets``, keyed by group."""

from __future__ import annotations

from shared.consuming.models import OutboxColumns
from shared.db.model_base import Base


class ScoringOutboxRow(OutboxColumns, Base):
    """A score event (or dead letter) that is durable but not yet acknowledged by the bus."""

    __tablename__ = "scoring_outbox"
